"""Readers for every on-disk layout of the family, and layout detection under a data root.

Each reader returns a SampleSet: image (or video) paths with 1000-way labels (sorted-WNID index) plus the layout
problems it found. Readers never decode images; the loader does, and counts what it cannot read. Where the
sets are under a data root, and their variants, is benchbox.datasets.variants.

Long because it holds one reader per on-disk layout of the family (wnid folders, V2 index folders,
flat val with three label-file kinds, ImageNet-P videos).
"""

from __future__ import annotations

import csv
import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchbox.datasets.catalog import (
    TESTSETS,
    imagenet_wnids,
    wnid_to_index,
)
from benchbox.datasets.sources.tree import IMAGE_EXTENSIONS, TreePath, natural_key, sample_path
from benchbox.errors import UserError, printable
from benchbox.records import SetKey

WNID_RE = re.compile(r"^n\d{8}$")
VAL_NAME_RE = re.compile(r"ILSVRC2012_val_(\d{8})")
GENERATED_MARKER = "BENCHBOX_GENERATED"  # written beside generated images: their labels mean nothing
SYNTHESIZED_MARKER = "SYNTHESIZED.json"
# Bumped whenever a corruption or perturbation changes its output; records of older trees are flagged
# "synthesized-outdated". 2: fog, glass blur, motion blur, snow, frost, spatter and P's snow and motion blur
# follow the official generators (benchmarks/c_fidelity.py).
# Generator version of make-c / make-p, written into SYNTHESIZED_MARKER; a tree of a lower one is flagged.
# c 2: the fidelity fixes of generator version 2. p 3: skimage's six-sigma blur and the float32 zoom average.
GENERATOR_VERSIONS = {"c": 2, "p": 3}
GENERATOR_VERSION = max(GENERATOR_VERSIONS.values())


@dataclass
class Sample:
    path: str
    label: int
    key: str  # file name: ReaL keys by it


@dataclass
class SampleSet:
    """The images (or videos) of one set variant, in a fixed order."""

    key: SetKey
    root: Path
    samples: list[Sample]
    layout: str
    problems: list[str] = field(default_factory=list)
    synthesized: bool = False  # made by benchbox make-c/make-p, not the official release
    generated: bool = False  # generated images: labels are meaningless, only agreement is
    outdated_synthesis: bool = False  # synthesized by an older, less faithful benchbox generator

    @property
    def data_flags(self) -> tuple[str, ...]:
        """Flags every record scored on this set carries."""
        flags = (
            ("synthesized", self.synthesized),
            ("synthesized-outdated", self.outdated_synthesis),
            ("generated", self.generated),
        )
        return tuple(name for name, on in flags if on)

    @property
    def testset(self) -> str:
        return self.key.testset

    @property
    def variant(self) -> str | None:
        return self.key.variant

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.samples]

    @property
    def labels(self):
        import numpy as np

        return np.asarray([s.label for s in self.samples], dtype=np.int64)

    @functools.cached_property
    def group_ids(self):
        """Per sample, the id of its underlying image (label and file stem; evaluation.summaries.group_id)."""
        import numpy as np

        from benchbox.evaluation.summaries import group_id

        return np.asarray([group_id(s.label, s.key) for s in self.samples], dtype=np.uint64)

    @functools.cached_property
    def val_numbers(self):
        """Per sample, its ILSVRC2012 val file number (0 when its name carries none): ReaL's key."""
        import numpy as np

        return np.asarray([val_file_number(s.key) or 0 for s in self.samples], dtype=np.int32)


@dataclass(frozen=True)
class VariantSource:
    """A set variant found on disk, not yet read."""

    key: SetKey
    folder: Path
    read: Callable[[], SampleSet]


def _images_in(folder: Path, problems: list[str] | None = None, extensions=IMAGE_EXTENSIONS) -> tuple[list[Path], int]:
    """Image files of a folder (or of a folder in an archive) in natural order, and how many other files were
    skipped.

    Symlinks that lead nowhere (broken, or looping back on themselves) are listed in `problems`.
    """
    if isinstance(folder, TreePath):
        members = folder.members()
        files = [m for m in members if _extension(m.name) in extensions]
        skipped = sum(1 for m in members if _extension(m.name) not in extensions and m.name[0] != ".")
        return sorted(files, key=lambda m: natural_key(m.name)), skipped
    files, skipped, dangling = [], 0, []
    with os.scandir(folder) as entries:
        for entry in entries:
            if _is(entry, "file"):
                if _extension(entry.name) in extensions:
                    files.append(Path(entry.path))
                elif not entry.name.startswith("."):
                    skipped += 1
            elif entry.is_symlink() and not os.path.exists(entry.path):
                dangling.append(entry.path)
    if dangling and problems is not None:
        examples = ", ".join(printable(p) for p in dangling[:3])
        problems.append(f"{len(dangling)} broken or looping symlinks ignored in {printable(folder)} (e.g. {examples})")
    return sorted(files, key=lambda p: natural_key(p.name)), skipped


def _extension(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _is(entry: os.DirEntry, kind: str) -> bool:
    """DirEntry.is_file/is_dir, with a symlink loop counting as neither (they raise ELOOP)."""
    try:
        return entry.is_file() if kind == "file" else entry.is_dir()
    except OSError:
        return False


def subdirs(folder: Path) -> list[Path]:
    if isinstance(folder, TreePath):
        return sorted(folder / name for name, is_dir in folder.entries() if is_dir)
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if _is(e, "dir"))


def detect_layout(folder: Path) -> str:
    """'wnid-folders', 'numeric-folders', 'flat', 'empty' or 'unknown'."""
    if not folder.is_dir():
        return "unknown"
    names = [p.name for p in subdirs(folder)]
    if names and sum(bool(WNID_RE.match(d)) for d in names) >= max(1, len(names) // 2):
        return "wnid-folders"
    if names and all(d.isdigit() for d in names):
        return "numeric-folders"
    if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir()):
        return "flat"
    return "empty" if not any(folder.iterdir()) else "unknown"


def set_markers(folder: Path, tree_root: Path | None = None) -> tuple[bool, bool, bool]:
    """(synthesized, generated, outdated synthesis) for a folder, from the markers benchbox writes."""
    root = tree_root or folder
    synthesized = (root / SYNTHESIZED_MARKER).is_file()
    generated = (folder / GENERATED_MARKER).is_file() or (root / GENERATED_MARKER).is_file()
    return synthesized, generated, synthesized and _outdated_synthesis(root / SYNTHESIZED_MARKER)


def _outdated_synthesis(marker: Path) -> bool:
    """Whether a synthesized tree predates the current generator (an unreadable marker counts as outdated)."""
    import json

    try:
        data = json.loads(marker.read_text())
        version = data.get("generator_version", 0)
    except (OSError, ValueError, AttributeError):
        return True
    current = GENERATOR_VERSIONS.get(data.get("kind"), GENERATOR_VERSION)
    return not isinstance(version, int) or version < current


def read_wnid_folders(folder: Path, key: SetKey, tree_root: Path | None = None) -> SampleSet:
    """`folder/<wnid>/<image>`: label = position of wnid in the sorted 1000 (not among the folders present)."""
    index = wnid_to_index()
    samples, problems = [], []
    skipped = 0
    for sub in subdirs(folder):
        if sub.name not in index:
            problems.append(f"folder {printable(sub.name)!r} is not an ImageNet-1k WNID; ignored")
            continue
        files, n_skipped = _images_in(sub, problems)
        skipped += n_skipped
        if not files:
            problems.append(f"class folder {sub.name} has no images")
        samples.extend(Sample(sample_path(f), index[sub.name], f.name) for f in files)
    if skipped:
        problems.append(f"{skipped} non-image files ignored (extensions other than {', '.join(IMAGE_EXTENSIONS)})")
    synthesized, generated, outdated = set_markers(folder, tree_root)
    return SampleSet(key, folder, samples, "wnid-folders", problems, synthesized, generated, outdated)


def read_numeric_folders(folder: Path, key: SetKey) -> SampleSet:
    """ImageNetV2: `folder/<class index>/<image>`; the folder name IS the index (never a string sort)."""
    samples, problems = [], []
    names = [p.name for p in subdirs(folder)]
    bad = [n for n in names if not n.isdigit() or not 0 <= int(n) < 1000]
    if bad:
        problems.append(
            f"{len(bad)} folders are not class indices 0..999 (e.g. {[printable(b) for b in bad[:3]]}); ignored"
        )
    by_label: dict[int, list[str]] = {}
    for name in names:
        if name not in bad:
            by_label.setdefault(int(name), []).append(name)
    padded = [n for n in names if n not in bad and n != str(int(n))]
    if padded:
        problems.append(f"{len(padded)} folders have leading zeros (e.g. {padded[:3]}); read as their number")
    clashes = [ns for ns in by_label.values() if len(ns) > 1]
    if clashes:
        problems.append(f"class folders name the same index twice (e.g. {clashes[0]}); all of them are read")
    if len(by_label) != 1000:
        problems.append(f"{len(by_label)} of 1000 class folders present")
    for label in sorted(by_label):
        for name in by_label[label]:
            files, _ = _images_in(folder / name, problems)
            samples.extend(Sample(sample_path(f), label, f.name) for f in files)
    synthesized, generated, outdated = set_markers(folder)
    return SampleSet(key, folder, samples, "numeric-folders", problems, synthesized, generated, outdated)


def _flat_val_labels(folder: Path) -> tuple[dict[str, int], str]:
    """Labels for a flat val folder from a label file next to it (or one level up)."""
    index = wnid_to_index()
    for base in (folder, folder.parent, *_devkit_data(folder.parent)):
        loc = base / "LOC_val_solution.csv"
        if loc.is_file():
            labels = {}
            try:
                with loc.open(newline="") as handle:
                    for row in csv.DictReader(handle):
                        tokens = (row.get("PredictionString") or "").split()
                        if tokens and tokens[0] in index and row.get("ImageId"):
                            labels[Path(row["ImageId"]).stem] = index[tokens[0]]
            except (csv.Error, UnicodeDecodeError) as exc:
                raise UserError(f"Cannot parse {loc}: {exc}.", "Expected the Kaggle LOC_val_solution.csv.") from exc
            return labels, "flat+LOC_val_solution.csv"
        for name in ("synset_labels.txt", "imagenet_2012_validation_synset_labels.txt"):
            synsets = base / name
            if synsets.is_file():
                wnids = synsets.read_text(errors="replace").split()
                unknown = [w for w in wnids if w not in index]
                if unknown:
                    raise UserError(f"{synsets} names {len(unknown)} unknown WNIDs (e.g. {unknown[:3]}).")
                return {f"ILSVRC2012_val_{i + 1:08d}": index[w] for i, w in enumerate(wnids)}, f"flat+{name}"
        truth = base / "ILSVRC2012_validation_ground_truth.txt"
        if truth.is_file():
            return _ground_truth_labels(truth), "flat+ILSVRC2012_validation_ground_truth.txt"
    raise UserError(
        f"{printable(folder)} holds images directly but no label file was found.",
        "Put LOC_val_solution.csv, or ILSVRC2012_validation_ground_truth.txt with the devkit's meta.mat, next to "
        "the images, or arrange them as val/<wnid>/<file>.",
    )


def _devkit_data(folder: Path) -> list:
    """The devkit's data/ folder beside a flat val (extracted, or the ILSVRC2012_devkit_t12.tar.gz itself)."""
    found = []
    extracted = folder / "ILSVRC2012_devkit_t12" / "data"
    if extracted.is_dir():
        found.append(extracted)
    for name in ("ILSVRC2012_devkit_t12.tar.gz", "ILSVRC2012_devkit_t12.tar"):
        archive = folder / name
        if isinstance(archive, Path) and archive.is_file():
            from benchbox.datasets.sources.archives import open_archive
            from benchbox.datasets.sources.tree import archive_tree

            tree = archive_tree([open_archive(archive)], None, folder, lambda name: name == "data")
            if (tree / "data").is_dir():
                found.append(tree / "data")
    return found


def _ground_truth_labels(truth: Path) -> dict[str, int]:
    """Devkit ground truth: ILSVRC2012_IDs (devkit order, not sorted order) mapped through meta.mat."""
    lines = truth.read_text(errors="replace").split()
    if not lines or not all(line.isdigit() for line in lines):
        raise UserError(f"Cannot parse {truth}.", "Expected one ILSVRC2012_ID per line.")
    meta = next((p for p in (truth.parent / "meta.mat", truth.parent.parent / "meta.mat") if p.is_file()), None)
    if meta is None:
        raise UserError(
            f"{truth} holds devkit ILSVRC2012_IDs, which are not sorted-WNID class indices.",
            "Put the devkit's data/meta.mat next to it so the IDs can be mapped to WNIDs.",
        )
    id_to_wnid = _devkit_ids(meta)
    index = wnid_to_index()
    try:
        return {f"ILSVRC2012_val_{i + 1:08d}": index[id_to_wnid[int(v)]] for i, v in enumerate(lines)}
    except KeyError as exc:
        raise UserError(f"{truth} has an ID that {meta} does not list: {exc}.") from exc


def _devkit_ids(meta: Path) -> dict[int, str]:
    from scipy.io import loadmat

    try:
        source = meta.open("rb") if isinstance(meta, TreePath) else str(meta)
        synsets = loadmat(source, squeeze_me=True)["synsets"]
        return {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets if int(s["num_children"]) == 0}
    except Exception as exc:
        raise UserError(
            f"Cannot read the devkit's {meta}: {exc}.", "Use the meta.mat of ILSVRC2012_devkit_t12."
        ) from exc


def read_flat_val(folder: Path, key: SetKey) -> SampleSet:
    labels, layout = _flat_val_labels(folder)
    problems: list[str] = []
    files, _ = _images_in(folder, problems)
    samples, missing = [], 0
    for f in files:
        label = labels.get(f.stem)
        if label is None:
            missing += 1
            continue
        samples.append(Sample(sample_path(f), label, f.name))
    if missing:
        problems.append(f"{missing} images have no label in the label file; ignored")
    synthesized, generated, outdated = set_markers(folder)
    return SampleSet(key, folder, samples, layout, problems, synthesized, generated, outdated)


def read_image_folder(folder: Path, testset: str, variant: str | None = None) -> SampleSet:
    """Detect the layout of a folder of images and read it; a wrong layout is a UserError naming the fix."""
    if not folder.is_dir():
        raise UserError(f"{printable(folder)} is not a folder.", expected_layout(testset))
    key = SetKey(testset, variant)
    if testset == "v2":  # always class-index folders: never guess, a string sort mislabels 990 classes
        return read_numeric_folders(folder, key)
    layout = detect_layout(folder)
    if layout == "wnid-folders":
        sample_set = read_wnid_folders(folder, key)
    elif layout == "flat" and testset == "val":
        sample_set = read_flat_val(folder, key)
    else:
        raise UserError(
            f"{printable(folder)} does not look like a {TESTSETS[testset].title} folder ({layout}).",
            expected_layout(testset),
        )
    if not sample_set.samples:
        raise UserError(f"No images found in {printable(folder)}.", expected_layout(testset))
    return sample_set


def read_p_folder(folder: Path, key: SetKey, root: Path) -> SampleSet:
    """`<perturbation>/<wnid>/<name>.mp4`: one SampleSet of videos."""
    index = wnid_to_index()
    samples, problems = [], []
    for sub in subdirs(folder):
        if sub.name not in index:
            problems.append(f"folder {printable(sub.name)!r} is not an ImageNet-1k WNID; ignored")
            continue
        videos, _ = _images_in(sub, extensions=(".mp4",))
        samples.extend(Sample(sample_path(v), index[sub.name], v.name) for v in videos)
    synthesized, generated, outdated = set_markers(folder, root)
    return SampleSet(key, folder, samples, "p-videos", problems, synthesized, generated, outdated)


def expected_layout(testset: str) -> str:
    """The layout a set must have, printed when it is missing or wrong (a plugin's: its description)."""
    layouts = {
        "val": "DATA_ROOT/val/<wnid>/<image>.JPEG (or flat images + LOC_val_solution.csv, or "
        "ILSVRC2012_img_val.tar + ILSVRC2012_devkit_t12.tar.gz)",
        "real": "DATA_ROOT/real.json (else --real-labels FILE, else timm's copy), plus val/",
        "v2": "DATA_ROOT/imagenetv2-matched-frequency-format-val/<0..999>/<image>.jpeg",
        "sketch": "DATA_ROOT/sketch/<wnid>/<image>.JPEG",
        "a": "DATA_ROOT/imagenet-a/<wnid>/<image>.jpg (200 folders)",
        "r": "DATA_ROOT/imagenet-r/<wnid>/<image>.jpg (200 folders)",
        "o": "DATA_ROOT/imagenet-o/<wnid>/<image>.jpg (200 folders) plus val/",
        "c": "DATA_ROOT/imagenet-c/<corruption>/<1..5>/<wnid>/<image>.JPEG (or: benchbox make-c VAL_DIR OUT)",
        "p": "DATA_ROOT/imagenet-p/<perturbation>/<wnid>/<name>.mp4 (or: benchbox make-p VAL_DIR OUT)",
    }
    if testset not in layouts:
        spec = TESTSETS.get(testset)
        where = f"DATA_ROOT/{spec.dirs[0]}/" if spec is not None and spec.dirs else "a folder"
        detail = spec.description if spec is not None and spec.description else "see the plugin's documentation"
        return f"Expected: {where} ({detail}), or --path {testset}=DIR"
    return (
        f"Expected layout: {layouts[testset]}, extracted or as its archive (.tar, .tar.gz, .zip, read in place); "
        f"or --path {testset}=SOURCE (archive, WebDataset shards, parquet, hf:ORG/NAME)"
    )


def val_file_number(key: str) -> int | None:
    """1-based number of an ILSVRC2012_val_XXXXXXXX file name, or None for other names."""
    match = VAL_NAME_RE.search(key)
    return int(match.group(1)) if match else None


__all__ = ["Sample", "SampleSet", "VariantSource", "imagenet_wnids", "read_image_folder"]
