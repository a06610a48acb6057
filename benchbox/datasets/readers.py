"""Readers for every on-disk layout of the family, and layout detection under a data root.

Each reader returns SampleSets: image paths with 1000-way labels (sorted-WNID index), plus the layout
problems it found. Readers never decode images; the loader does, and counts what it cannot read.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from benchbox.datasets.catalog import (
    C_CATEGORIES,
    C_CORRUPTIONS,
    C_EXTRA_CORRUPTIONS,
    P_EXTRA_PERTURBATIONS,
    P_PERTURBATIONS,
    TESTSETS,
    V2_VARIANTS,
    imagenet_wnids,
    wnid_to_index,
)
from benchbox.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")  # timm's list, compared lowercased
WNID_RE = re.compile(r"^n\d{8}$")
VAL_NAME_RE = re.compile(r"ILSVRC2012_val_(\d{8})")


@dataclass
class Sample:
    path: str
    label: int
    key: str  # file name: ReaL keys by it, calibration overlap hashes by content


@dataclass
class SampleSet:
    """The images of one (test set, variant), in a fixed order."""

    testset: str
    root: Path
    samples: list[Sample]
    layout: str
    variant: str | None = None
    problems: list[str] = field(default_factory=list)
    synthesized: bool = False

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.samples]

    @property
    def labels(self):
        import numpy as np

        return np.asarray([s.label for s in self.samples], dtype=np.int64)


def natural_key(text: str) -> list:
    """timm's natural sort: digit runs compare as integers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _images_in(folder: Path) -> tuple[list[Path], int]:
    files, skipped = [], 0
    for path in folder.iterdir():
        if path.is_file():
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(path)
            elif not path.name.startswith("."):
                skipped += 1
    return sorted(files, key=lambda p: natural_key(p.name)), skipped


def detect_layout(folder: Path) -> str:
    """'wnid-folders', 'numeric-folders', 'flat', 'empty' or 'unknown'."""
    subdirs = [p.name for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    if subdirs and sum(bool(WNID_RE.match(d)) for d in subdirs) >= max(1, len(subdirs) // 2):
        return "wnid-folders"
    if subdirs and all(d.isdigit() for d in subdirs):
        return "numeric-folders"
    if folder.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir()):
        return "flat"
    return "empty" if folder.is_dir() and not any(folder.iterdir()) else "unknown"


def read_wnid_folders(folder: Path, testset: str, variant: str | None = None) -> SampleSet:
    """`folder/<wnid>/<image>`: label = position of wnid in the sorted 1000 (not among the folders present)."""
    index = wnid_to_index()
    samples, problems = [], []
    skipped = 0
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if sub.name not in index:
            problems.append(f"folder {sub.name!r} is not an ImageNet-1k WNID; ignored")
            continue
        files, n_skipped = _images_in(sub)
        skipped += n_skipped
        if not files:
            problems.append(f"class folder {sub.name} has no images")
        samples.extend(Sample(str(f), index[sub.name], f.name) for f in files)
    if skipped:
        problems.append(f"{skipped} non-image files ignored (extensions other than {', '.join(IMAGE_EXTENSIONS)})")
    return SampleSet(testset, folder, samples, "wnid-folders", variant, problems)


def read_numeric_folders(folder: Path, testset: str, variant: str | None = None) -> SampleSet:
    """ImageNetV2: `folder/<class index>/<image>`; the folder name IS the index (never a string sort)."""
    samples, problems = [], []
    names = [p.name for p in folder.iterdir() if p.is_dir()]
    bad = [n for n in names if not n.isdigit() or not 0 <= int(n) < 1000]
    if bad:
        problems.append(f"{len(bad)} folders are not class indices 0..999 (e.g. {bad[:3]}); ignored")
    valid = sorted(int(n) for n in names if n not in bad)
    if len(valid) != 1000:
        problems.append(f"{len(valid)} of 1000 class folders present")
    for label in valid:
        files, _ = _images_in(folder / str(label))
        samples.extend(Sample(str(f), label, f.name) for f in files)
    return SampleSet(testset, folder, samples, "numeric-folders", variant, problems)


def _flat_val_labels(folder: Path) -> tuple[dict[str, int], str]:
    """Labels for a flat val folder from a label file next to it (or one level up)."""
    index = wnid_to_index()
    for base in (folder, folder.parent):
        loc = base / "LOC_val_solution.csv"
        if loc.is_file():
            labels = {}
            with loc.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    tokens = row["PredictionString"].split()
                    if tokens and tokens[0] in index:
                        labels[Path(row["ImageId"]).stem] = index[tokens[0]]
            return labels, "flat+LOC_val_solution.csv"
        for name in ("synset_labels.txt", "imagenet_2012_validation_synset_labels.txt"):
            synsets = base / name
            if synsets.is_file():
                wnids = synsets.read_text().split()
                return {f"ILSVRC2012_val_{i + 1:08d}": index[w] for i, w in enumerate(wnids)}, f"flat+{name}"
        truth = base / "ILSVRC2012_validation_ground_truth.txt"
        if truth.is_file():
            return _ground_truth_labels(truth), "flat+ILSVRC2012_validation_ground_truth.txt"
    raise UserError(
        f"{folder} holds images directly but no label file was found.",
        "Put LOC_val_solution.csv, or ILSVRC2012_validation_ground_truth.txt with the devkit's meta.mat, next to "
        "the images, or arrange them as val/<wnid>/<file>.",
    )


def _ground_truth_labels(truth: Path) -> dict[str, int]:
    """Devkit ground truth: ILSVRC2012_IDs (devkit order, not sorted order) mapped through meta.mat."""
    lines = truth.read_text().split()
    if len(lines) and all(len(line.split()) == 1 for line in lines[:5]):
        meta = next((p for p in (truth.parent / "meta.mat", truth.parent.parent / "meta.mat") if p.is_file()), None)
        if meta is None:
            raise UserError(
                f"{truth} holds devkit ILSVRC2012_IDs, which are not sorted-WNID class indices.",
                "Put the devkit's data/meta.mat next to it so the IDs can be mapped to WNIDs.",
            )
        id_to_wnid = _devkit_ids(meta)
        index = wnid_to_index()
        return {f"ILSVRC2012_val_{i + 1:08d}": index[id_to_wnid[int(v)]] for i, v in enumerate(lines)}
    raise UserError(f"Cannot parse {truth}.", "Expected one ILSVRC2012_ID per line.")


def _devkit_ids(meta: Path) -> dict[int, str]:
    from scipy.io import loadmat

    synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
    return {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets if int(s["num_children"]) == 0}


def read_flat_val(folder: Path, testset: str = "val") -> SampleSet:
    labels, layout = _flat_val_labels(folder)
    files, _ = _images_in(folder)
    samples, missing = [], 0
    for f in files:
        label = labels.get(f.stem)
        if label is None:
            missing += 1
            continue
        samples.append(Sample(str(f), label, f.name))
    problems = [f"{missing} images have no label in the label file; ignored"] if missing else []
    return SampleSet(testset, folder, samples, layout, None, problems)


def read_image_folder(folder: Path, testset: str, variant: str | None = None) -> SampleSet:
    """Detect the layout of a folder of images and read it; a wrong layout is a UserError naming the fix."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder.", expected_layout(testset))
    if testset == "v2":  # always class-index folders: never guess, a string sort mislabels 990 classes
        return read_numeric_folders(folder, testset, variant)
    layout = detect_layout(folder)
    if layout == "wnid-folders":
        return read_wnid_folders(folder, testset, variant)
    if layout == "numeric-folders":
        return read_numeric_folders(folder, testset, variant)
    if layout == "flat" and testset == "val":
        return read_flat_val(folder, testset)
    raise UserError(
        f"{folder} does not look like a {TESTSETS[testset].title} folder ({layout}).",
        expected_layout(testset),
    )


def read_c_tree(root: Path, corruptions: tuple[str, ...] | None = None) -> list[SampleSet]:
    """`imagenet-c/<corruption>/<severity>/<wnid>/` (a `<category>/` level above is accepted too)."""
    sets = []
    for corruption, folder in c_corruption_dirs(root).items():
        if corruptions is not None and corruption not in corruptions:
            continue
        for severity in range(1, 6):
            sev_dir = folder / str(severity)
            if sev_dir.is_dir():
                sample_set = read_wnid_folders(sev_dir, "c", f"{corruption}/{severity}")
                sample_set.synthesized = (root / "SYNTHESIZED.json").is_file()
                sets.append(sample_set)
    return sets


def c_corruption_dirs(root: Path) -> dict[str, Path]:
    known = (*C_CORRUPTIONS, *C_EXTRA_CORRUPTIONS)
    found = {}
    for name in known:
        for candidate in (root / name, *(root / cat / name for cat in C_CATEGORIES)):
            if candidate.is_dir():
                found[name] = candidate
                break
    return found


def read_p_tree(root: Path, perturbations: tuple[str, ...] | None = None) -> list[SampleSet]:
    """`imagenet-p/<perturbation>/<wnid>/<name>.mp4`, one SampleSet (of videos) per perturbation."""
    index = wnid_to_index()
    sets = []
    noise_levels = [f"{n}_{d}" for n in (*P_PERTURBATIONS, *P_EXTRA_PERTURBATIONS) if "noise" in n for d in (2, 3)]
    for name in (*P_PERTURBATIONS, *P_EXTRA_PERTURBATIONS, *noise_levels):  # `_2`/`_3`: harder noise, reported only
        folder = root / name
        if not folder.is_dir() or (perturbations is not None and name not in perturbations):
            continue
        samples, problems = [], []
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            if sub.name not in index:
                problems.append(f"folder {sub.name!r} is not an ImageNet-1k WNID; ignored")
                continue
            videos = sorted(sub.glob("*.mp4"), key=lambda p: natural_key(p.name))
            samples.extend(Sample(str(v), index[sub.name], v.name) for v in videos)
        sets.append(
            SampleSet(
                "p", folder, samples, "p-videos", name, problems, synthesized=(root / "SYNTHESIZED.json").is_file()
            )
        )
    return sets


def locate(data_root: Path | None, overrides: dict[str, Path] | None = None) -> dict[str, Path | None]:
    """Where each set lives: `--path SET=DIR` first, then the standard names under the data root."""
    overrides = overrides or {}
    found: dict[str, Path | None] = {}
    for name, spec in TESTSETS.items():
        if name in overrides:
            found[name] = Path(overrides[name])
            continue
        found[name] = None
        if data_root is None:
            continue
        if name == "real":
            candidate = data_root / "real.json"
            found[name] = candidate if candidate.is_file() else None
            continue
        for rel in spec.dirs:
            if (data_root / rel).is_dir():
                found[name] = data_root / rel
                break
    return found


def v2_variant_dirs(data_root: Path | None, override: Path | None) -> dict[str, Path]:
    """ImageNetV2 variants present: all three under a data root, or the one folder given with --path."""
    if override is not None:
        name = next((v for v, dirs in V2_VARIANTS.items() if override.name in dirs), "matched-frequency")
        return {name: override}
    found = {}
    for variant, dirs in V2_VARIANTS.items():
        for rel in dirs:
            if data_root is not None and (data_root / rel).is_dir():
                found[variant] = data_root / rel
                break
    return found


def expected_layout(testset: str) -> str:
    """The layout a set must have, printed when it is missing or wrong."""
    layouts = {
        "val": "DATA_ROOT/val/<wnid>/<image>.JPEG (or flat images + LOC_val_solution.csv)",
        "real": "DATA_ROOT/real.json (else --real-labels FILE, else timm's copy), plus val/",
        "v2": "DATA_ROOT/imagenetv2-matched-frequency-format-val/<0..999>/<image>.jpeg",
        "sketch": "DATA_ROOT/sketch/<wnid>/<image>.JPEG",
        "a": "DATA_ROOT/imagenet-a/<wnid>/<image>.jpg (200 folders)",
        "r": "DATA_ROOT/imagenet-r/<wnid>/<image>.jpg (200 folders)",
        "o": "DATA_ROOT/imagenet-o/<wnid>/<image>.jpg (200 folders) plus val/",
        "c": "DATA_ROOT/imagenet-c/<corruption>/<1..5>/<wnid>/<image>.JPEG (or: benchbox make-c VAL_DIR OUT)",
        "p": "DATA_ROOT/imagenet-p/<perturbation>/<wnid>/<name>.mp4 (or: benchbox make-p VAL_DIR OUT)",
    }
    return f"Expected layout: {layouts[testset]}"


def val_file_number(key: str) -> int | None:
    """1-based number of an ILSVRC2012_val_XXXXXXXX file name, or None for other names."""
    match = VAL_NAME_RE.search(key)
    return int(match.group(1)) if match else None


__all__ = ["Sample", "SampleSet", "imagenet_wnids", "locate", "read_image_folder"]
