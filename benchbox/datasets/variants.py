"""Where each set lives under a data root, and its variants, found without reading them.

`set_variants` lists a set's variants (ImageNet-C has 95 folders of 50,000 images: each is read only when it is
evaluated, so memory does not grow with the set); a variant's `read()` returns its SampleSet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchbox.datasets.catalog import (
    C_CATEGORIES,
    C_CORRUPTIONS,
    C_EXTRA_CORRUPTIONS,
    P_EXTRA_PERTURBATIONS,
    P_PERTURBATIONS,
    TESTSETS,
    V2_VARIANTS,
    TestSet,
)
from benchbox.datasets.readers import (
    VariantSource,
    expected_layout,
    read_image_folder,
    read_numeric_folders,
    read_p_folder,
    read_wnid_folders,
)
from benchbox.datasets.sources import open_source
from benchbox.datasets.sources.archives import ARCHIVE_SUFFIXES
from benchbox.datasets.sources.parquet import ParquetSource
from benchbox.datasets.sources.shards import ShardSource
from benchbox.errors import UserError, printable
from benchbox.records import SetKey
from benchbox.vocabulary import Layout


def c_corruption_dirs(root: Path) -> dict[str, Path]:
    known = (*C_CORRUPTIONS, *C_EXTRA_CORRUPTIONS)
    found = {}
    for name in known:
        for candidate in (root / name, *(root / cat / name for cat in C_CATEGORIES)):
            if candidate.is_dir():
                found[name] = candidate
                break
    return found


def _image_variants(spec: TestSet, folder: Path) -> list[VariantSource]:
    return [VariantSource(SetKey(spec.name), folder, lambda: read_image_folder(folder, spec.name))]


def _v2_variants(spec: TestSet, folder, data_root: Path | None, override: Any) -> list[VariantSource]:
    variants = []
    for variant, source in v2_variant_dirs(data_root, override).items():
        key = SetKey("v2", variant)
        if isinstance(source, (ShardSource, ParquetSource)):
            variants.append(VariantSource(key, Path(str(source)), lambda s=source, k=key: s.read(spec, k)))
        else:
            variants.append(VariantSource(key, source, lambda p=source, k=key: read_numeric_folders(p, k)))
    return variants


def _sample_source_variants(spec: TestSet, source) -> list[VariantSource]:
    """A set given as WebDataset shards or parquet: one variant (ImageNet-C and -P come as folders or tars)."""
    if spec.layout in (Layout.C, Layout.P) or spec.locate is not None:
        raise UserError(
            f"{spec.title} is read from its folder layout (extracted, or its tars read in place), not from "
            f"{str(source)!r}.",
            expected_layout(spec.name),
        )
    key = SetKey(spec.name)
    return [VariantSource(key, Path(str(source)), lambda: source.read(spec, key))]


def _c_variants(spec: TestSet, root: Path) -> list[VariantSource]:
    """`imagenet-c/<corruption>/<severity>/<wnid>/` (a `<category>/` level above is accepted too)."""
    variants = []
    for corruption, folder in c_corruption_dirs(root).items():
        for severity in range(1, 6):
            sev_dir = folder / str(severity)
            if sev_dir.is_dir():
                key = SetKey("c", f"{corruption}/{severity}")
                variants.append(VariantSource(key, sev_dir, lambda d=sev_dir, k=key: read_wnid_folders(d, k, root)))
    if not variants:
        raise UserError(f"No corruption folders under {printable(root)}.", expected_layout("c"))
    return variants


def c_layout_problems(root: Path) -> list[str]:
    """What an ImageNet-C tree holds that is not read: unknown corruption folders, severity folders outside 1..5."""
    known = {*C_CORRUPTIONS, *C_EXTRA_CORRUPTIONS}
    problems = []
    for entry in _subfolders(root):
        if entry.name in C_CATEGORIES:
            problems += [f"{entry.name}/{p}" for p in _unknown_in(entry, known)]
        elif entry.name not in known:
            problems.append(f"folder {printable(entry.name)!r} is not an ImageNet-C corruption; ignored")
    for corruption, folder in c_corruption_dirs(root).items():
        for entry in _subfolders(folder):
            if entry.name not in {"1", "2", "3", "4", "5"}:
                problems.append(f"{corruption}/{printable(entry.name)}: not a severity 1..5; ignored")
    return problems


def _unknown_in(folder: Path, known: set[str]) -> list[str]:
    return [
        f"folder {printable(e.name)!r} is not an ImageNet-C corruption; ignored"
        for e in _subfolders(folder)
        if e.name not in known
    ]


def _subfolders(folder) -> list:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []


def p_names() -> list[str]:
    """Perturbation folder names: the 10 + 4, then the harder noise levels `_2`/`_3` (reported only)."""
    levels = [f"{n}_{d}" for n in (*P_PERTURBATIONS, *P_EXTRA_PERTURBATIONS) if "noise" in n for d in (2, 3)]
    return [*P_PERTURBATIONS, *P_EXTRA_PERTURBATIONS, *levels]


def _p_variants(spec: TestSet, root: Path) -> list[VariantSource]:
    variants = []
    for name in p_names():
        folder = root / name
        if folder.is_dir():
            key = SetKey("p", name)
            variants.append(VariantSource(key, folder, lambda f=folder, k=key: read_p_folder(f, k, root)))
    return variants


def set_variants(
    spec: TestSet, located: dict[str, Path | None], data_root: Path | None, overrides: dict[str, Path]
) -> list[VariantSource] | None:
    """The variants of a set found on disk (not read yet), or None when the set is absent."""
    if spec.scored_from_needed:  # ReaL: scored from val's predictions
        return [] if all(located.get(n) is not None for n in spec.needs) else None
    if spec.layout == "v2":
        override = located.get("v2") if "v2" in overrides else None
        return _v2_variants(spec, None, data_root, override) or None
    folder = located.get(spec.name)
    if folder is None:
        return None
    if isinstance(folder, (ShardSource, ParquetSource)):
        return _sample_source_variants(spec, folder)
    if not folder.is_dir():
        raise UserError(f"{spec.title}: {printable(folder)} is not a folder.", expected_layout(spec.name))
    if spec.locate is not None:  # a plugin's own layout
        return spec.locate(Path(folder)) or None
    if spec.layout == "c":
        return _c_variants(spec, folder)
    if spec.layout == "p":
        return _p_variants(spec, folder) or None
    return _image_variants(spec, folder)


def locate(data_root: Path | None, overrides: dict[str, Path] | None = None) -> dict[str, Any]:
    """Where each set lives: `--path SET=SOURCE` first, then the standard names under the data root, as folders
    or as archives of those names (`imagenet-a.tar`, `ILSVRC2012_img_val.tar`, `ImageNet-Sketch.zip`). Values are
    what benchbox.datasets.sources.open_source makes of them (a folder, an archive tree, shards, parquet)."""
    overrides = overrides or {}
    found: dict[str, Any] = {}
    for name, spec in TESTSETS.items():
        if name in overrides:
            found[name] = Path(overrides[name]) if name == "real" else open_source(overrides[name])
            continue
        found[name] = None
        if data_root is None:
            continue
        if name == "real":
            candidate = data_root / "real.json"
            found[name] = candidate if candidate.is_file() else None
            continue
        candidate = _under_root(data_root, spec.dirs)
        if candidate is not None:
            found[name] = open_source(candidate)
    return found


def _under_root(data_root: Path, names: tuple[str, ...]) -> Path | None:
    """The first of a set's names under a data root, as a folder or as an archive of that name."""
    for rel in names:
        if (data_root / rel).is_dir():
            return data_root / rel
    for rel in names:
        # imagenet-a.tar, imagenetv2-matched-frequency.tar.gz, ImageNet-Sketch.zip (which holds sketch/)
        for stem in dict.fromkeys((rel, rel.removesuffix("-format-val"), rel.split("/")[0])):
            for suffix in ARCHIVE_SUFFIXES:
                if (data_root / f"{stem}{suffix}").is_file():
                    return data_root / f"{stem}{suffix}"
    return None


def v2_variant_dirs(data_root: Path | None, override: Any) -> dict[str, Any]:
    """ImageNetV2 variants present: all three under a data root, or the one folder given with --path."""
    if override is not None:
        shown = str(override)
        name = next(
            (v for v, dirs in V2_VARIANTS.items() if any(d.removesuffix("-format-val") in shown for d in dirs)),
            "matched-frequency",
        )
        return {name: override}
    found = {}
    for variant, dirs in V2_VARIANTS.items():
        candidate = _under_root(data_root, dirs) if data_root is not None else None
        if candidate is not None:
            found[variant] = open_source(candidate)
    return found
