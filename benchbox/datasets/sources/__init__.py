"""Where a set's images come from: a folder, an archive, WebDataset shards, parquet files or the Hugging Face cache.

`--path SET=SOURCE` and the names under `--data-root` are read by what they are, not by a flag per format:

- a folder: the set's folder layout (as always);
- a folder holding .tar/.zip files that are not shards: one tree of the folder and the archives (ImageNet-C's
  group tars);
- `x.tar`, `x.tar.gz`, `x.tgz`, `x.zip`: the folder layout inside the archive, read in place;
- a folder of shards, `x-{0000..0063}.tar`, a list file: WebDataset shards (labels in .cls or .json);
- a folder with parquet files, `*.parquet`, `hf:ORG/NAME[:SPLIT]`: Hugging Face parquet (image and label).

Whatever the source, a sample is a string (a path or a benchbox.locator), so everything after the reader is the
same code: the same decode, the same preprocessed-image cache (keyed by content), the same identity (content and
label), the same numbers.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from benchbox.datasets.sources.archives import archive_kind, open_archive
from benchbox.datasets.sources.tree import IMAGE_EXTENSIONS, TreePath, archive_tree, natural_key, sample_path
from benchbox.errors import UserError
from benchbox.locator import display, is_locator, parse

__all__ = ["TreePath", "open_source", "read_bytes", "sample_path", "fingerprint", "source_exists", "display"]


def _kept_folder(name: str) -> bool:
    """Folder names the layouts read themselves: never entered as an archive's wrapper folder."""
    from benchbox.datasets.catalog import (
        C_CATEGORIES,
        C_CORRUPTIONS,
        C_EXTRA_CORRUPTIONS,
        P_EXTRA_PERTURBATIONS,
        P_PERTURBATIONS,
        wnid_to_index,
    )

    return (
        name.isdigit()
        or name in wnid_to_index()
        or name in (*C_CORRUPTIONS, *C_EXTRA_CORRUPTIONS, *C_CATEGORIES)
        or name.removesuffix("_2").removesuffix("_3") in (*P_PERTURBATIONS, *P_EXTRA_PERTURBATIONS)
    )


def _archives_in(folder: Path) -> list[Path]:
    try:
        found = [p for p in folder.iterdir() if p.is_file() and archive_kind(p) and not p.name.startswith(".")]
    except OSError:
        return []
    return sorted(found, key=lambda p: natural_key(p.name))


def open_source(path: Path | str) -> Any:
    """What a set's SOURCE is: a Path (a plain folder, or something missing: the readers say what is expected),
    a TreePath (archives), a ShardSource (WebDataset) or a ParquetSource (Hugging Face)."""
    from benchbox.datasets.sources.parquet import ParquetSource, hub_source, parquet_files
    from benchbox.datasets.sources.shards import ShardSource, expand, is_shard

    text = str(path)
    if text.startswith("hf:"):
        return hub_source(text)
    if "{" in text and "}" in text:
        shards = [Path(p) for p in expand(text)]
        return ShardSource(shards, text)
    if any(c in Path(text).name for c in "*?["):
        matches = sorted(Path(p) for p in glob.glob(text))
        if not matches:
            raise UserError(f"No files match {text}.")
        if all(p.suffix == ".parquet" for p in matches):
            return ParquetSource(matches, text)
        if all(archive_kind(p) == "tar" for p in matches):
            return ShardSource(matches, text)
        raise UserError(f"{text} matches files that are neither all parquet nor all .tar shards.")
    path = Path(text)
    if path.is_file():
        if path.suffix == ".parquet":
            return ParquetSource([path], text)
        if archive_kind(path):
            index = open_archive(path, _say)
            if is_shard(index):
                return ShardSource([path], text)
            return archive_tree([index], None, path.parent, _kept_folder)
        if path.suffix in (".txt", ".shards"):
            lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
            shards = [Path(s) if Path(s).is_absolute() else path.parent / s for s in lines if s and s[0] != "#"]
            return ShardSource(shards, text)
        return path
    if not path.is_dir():
        return path
    shallow = [*path.glob("*.parquet"), *path.glob("*/*.parquet")]  # a hub folder: data/*.parquet, SPLIT/*.parquet
    parquet = parquet_files(path) if shallow else []
    if parquet and not _has_images(path):
        return ParquetSource(parquet, text)
    archives = _archives_in(path)
    if not archives:
        return path
    first = open_archive(archives[0], _say)
    if is_shard(first):
        return ShardSource([a for a in archives if archive_kind(a) == "tar"], text)
    indexes = [open_archive(a, _say) for a in archives]
    return archive_tree(indexes, path, path.parent, _kept_folder)


def _has_images(folder: Path) -> bool:
    try:
        return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())
    except OSError:
        return False


def _say(text: str) -> None:
    import sys

    print(text, file=sys.stderr, flush=True)


def read_bytes(locator_text: str, max_bytes: int) -> bytes:
    """The bytes of a sample that lives in an archive or a parquet file (OSError / ValueError as a file read)."""
    from benchbox.datasets.sources.archives import read_member

    locator = parse(locator_text)
    if locator is None:
        raise OSError(f"not a sample locator: {locator_text[:80]}")
    if locator.scheme == "parquet":
        from benchbox.datasets.sources.parquet import read_row

        data = read_row(locator)
        if len(data) > max_bytes:
            raise ValueError(f"{len(data) / 2**20:.0f} MB")
        return data
    return read_member(locator, max_bytes)


def fingerprint(path: str, by_content: bool, stats: dict[str, str]) -> tuple[str, str]:
    """(resolved name, what changes when the sample changes) for a cell's content key: a file's size and time; an
    archive member's archive size and time (`stats` caches them per archive); with `by_content` a hash of the bytes."""
    from benchbox.datasets.cache import content_digest

    locator = parse(path) if is_locator(path) else None
    try:
        if locator is not None:
            name = f"{locator.scheme}:{locator.first}:{locator.second}:{os.path.realpath(locator.container)}"
            if by_content:
                return name, content_digest(read_bytes(path, 1 << 40))
            if locator.container not in stats:
                stat = os.stat(locator.container)
                stats[locator.container] = f"{stat.st_size}:{stat.st_mtime_ns}"
            return name, stats[locator.container]
        name = os.path.realpath(path)
        if by_content:
            with open(name, "rb") as handle:
                return name, content_digest(handle.read())
        stat = os.stat(name)
        return name, f"{stat.st_size}:{stat.st_mtime_ns}"
    except (OSError, ValueError):
        return path if locator is not None else os.path.realpath(path), "missing"


def source_exists(path: str | Path) -> bool:
    """Whether a sample, or a SOURCE given to --path, is there (hf: sources are checked when read)."""
    text = str(path)
    if text.startswith("hf:"):
        return True
    locator = parse(text) if is_locator(text) else None
    if locator is not None:
        return os.path.exists(locator.container)
    if "{" in text and "}" in text:
        from benchbox.datasets.sources.shards import expand

        return all(os.path.exists(p) for p in expand(text))
    if any(c in Path(text).name for c in "*?["):
        return bool(glob.glob(text))
    return os.path.exists(text)


def describe(source: Any) -> str:
    """The format of a located source, for `benchbox datasets`."""
    from benchbox.datasets.sources.parquet import ParquetSource
    from benchbox.datasets.sources.shards import ShardSource

    if isinstance(source, ShardSource):
        return f"WebDataset, {len(source.shards)} shard(s)"
    if isinstance(source, ParquetSource):
        return f"parquet, {len(source.files)} file(s)"
    if isinstance(source, TreePath):
        return "archive (read in place)"
    return "folder"
