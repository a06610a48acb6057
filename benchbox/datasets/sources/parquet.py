"""Hugging Face datasets as a test set: parquet files with an `image` column (`{bytes, path}`) and a `label`.

A dataset folder in the hub's layout (`data/<split>-00000-of-00014.parquet`, or `<split>/*.parquet`), a glob of
parquet files, or `hf:ORG/NAME[:SPLIT]` resolved in the local Hugging Face cache (offline: nothing is downloaded
unless asked with `benchbox datasets fetch hf:ORG/NAME`). Labels are ImageNet-1k class indices unless the file's
own features say otherwise (class names that are WNIDs, or the 200 classes of ImageNet-A/R/O).

Listing reads only the `label` and `image.path` columns; images are read a row group at a time (a few hundred
rows: the hub writes image datasets in small row groups) and the last few groups are kept, so the loader's threads
walking one group read it once. Requires pyarrow (`pip install -e ".[hf]"`).
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from benchbox.errors import UserError, printable
from benchbox.locator import Locator
from benchbox.records import SetKey

SPLIT_RE = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}\.parquet$")
PREFERRED_SPLITS = {"val": ("validation", "val", "valid")}
DEFAULT_SPLITS = ("test", "validation", "val", "train")
HF_EXTRA = 'pip install -e ".[hf]"'


def _pyarrow():
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise UserError("Reading parquet files needs pyarrow.", f"Install it: {HF_EXTRA}") from exc
    return pq


def split_of(path: Path) -> str:
    """`data/validation-00000-of-00014.parquet` -> validation; `validation/0000.parquet` -> validation."""
    match = SPLIT_RE.match(path.name)
    if match:
        return match.group("split")
    return path.parent.name if path.parent.name not in ("data", "") else path.stem


def parquet_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.parquet") if p.is_file() and not any(x.startswith(".") for x in p.parts))


@dataclass
class ParquetSource:
    """A set stored as parquet files; `split` picks among a folder's splits (None: chosen by the set)."""

    files: list[Path]
    where: str
    split: str | None = None

    def __str__(self) -> str:
        return self.where

    @property
    def root(self) -> Path:
        return self.files[0].parent

    def chosen(self, testset: str) -> list[Path]:
        """The files of the split this set reads."""
        by_split: dict[str, list[Path]] = {}
        for path in self.files:
            by_split.setdefault(split_of(path), []).append(path)
        if self.split is not None:
            if self.split not in by_split:
                raise UserError(
                    f"{self.where} has no split {self.split!r}.", f"Its splits: {', '.join(sorted(by_split))}"
                )
            return by_split[self.split]
        if len(by_split) == 1:
            return next(iter(by_split.values()))
        for name in PREFERRED_SPLITS.get(testset, DEFAULT_SPLITS):
            if name in by_split:
                return by_split[name]
        raise UserError(
            f"{self.where} has the splits {', '.join(sorted(by_split))}; which one is {testset}?",
            "Name it: hf:ORG/NAME:SPLIT, or give the split's files (a glob such as DIR/data/test-*.parquet).",
        )

    def read(self, spec, key: SetKey):
        from benchbox.datasets.readers import Sample, SampleSet

        pq = _pyarrow()
        samples, problems, unlabelled, outside = [], [], 0, 0
        files = self.chosen(spec.name)
        mapping, note = _label_mapping(spec, files[0], pq)
        if note:
            problems.append(note)
        for path in files:
            try:
                handle = pq.ParquetFile(path)
                columns = set(handle.schema_arrow.names)
                if not {"image", "label"} <= columns:
                    raise UserError(
                        f"{printable(path)} has the columns {', '.join(sorted(columns))}; expected image and label.",
                        "benchbox reads the Hugging Face image-classification layout (image: {bytes, path}, label).",
                    )
                for group in range(handle.metadata.num_row_groups):
                    table = handle.read_row_group(group, columns=["label", "image.path"])
                    labels = table.column("label").to_pylist()
                    names = table.column("image").combine_chunks().field("path").to_pylist()
                    for row, (label, name) in enumerate(zip(labels, names, strict=True)):
                        if label is None or label < 0:
                            unlabelled += 1
                            continue
                        mapped = mapping(int(label))
                        if mapped is None:
                            outside += 1
                            continue
                        sample_key = (name or "").rpartition("/")[2] or f"{path.stem}-{group}-{row}.jpg"
                        locator = str(Locator("parquet", group, row, str(path.resolve()), sample_key))
                        samples.append(Sample(locator, mapped, sample_key))
            except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                raise UserError(f"{printable(path)} is not a readable parquet file: {exc}.") from exc
        for what, count in (("no label", unlabelled), ("a label outside the class list", outside)):
            if count:
                problems.append(f"{count} rows with {what}; ignored")
        if not samples:
            raise UserError(f"No labelled images in {self.where}.")
        return SampleSet(key, self.root, samples, "parquet", problems)


def _label_mapping(spec, first: Path, pq):
    """Label -> 1000-class index, from the dataset's own ClassLabel names when it has them."""
    from benchbox.datasets.catalog import subset_indices, wnid_to_index

    names = None
    try:
        metadata = pq.read_schema(first).metadata or {}
        info = json.loads(metadata.get(b"huggingface", b"{}"))
        names = info.get("info", {}).get("features", {}).get("label", {}).get("names")
    except (OSError, ValueError, AttributeError):
        names = None
    subset = subset_indices(spec.class_subset) if spec.class_subset else None
    index = wnid_to_index()
    if isinstance(names, list) and names and all(n in index for n in names):
        table = [index[n] for n in names]
        return (lambda label: table[label] if label < len(table) else None), None
    if isinstance(names, list) and subset is not None and len(names) == len(subset):
        note = (
            f"labels read as indices into {spec.title}'s {len(subset)} classes in WNID order (its features list "
            f"{len(names)} names)"
        )
        return (lambda label: subset[label] if label < len(subset) else None), note
    return (lambda label: label if label < 1000 else None), None


class _RowGroups:
    """The image bytes of recently read row groups, shared by the loader's threads."""

    def __init__(self, keep: int = 4) -> None:
        self._keep = keep
        self._groups: OrderedDict[tuple[str, int], list] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str, group: int) -> list:
        with self._lock:
            key = (path, group)
            if key in self._groups:
                self._groups.move_to_end(key)
                return self._groups[key]
            pq = _pyarrow()
            table = pq.ParquetFile(path).read_row_group(group, columns=["image.bytes"])
            images = table.column("image").combine_chunks().field("bytes").to_pylist()
            self._groups[key] = images
            while len(self._groups) > self._keep:
                self._groups.popitem(last=False)
            return images


_ROW_GROUPS = _RowGroups()


def read_row(locator: Locator) -> bytes:
    """The image bytes of one row (OSError when the file cannot be read)."""
    try:
        images = _ROW_GROUPS.get(locator.container, locator.first)
        data = images[locator.second]
    except (IndexError, ValueError) as exc:  # a file replaced since it was listed, or damaged
        raise OSError(f"row {locator.second} of row group {locator.first}: {exc}") from exc
    if data is None:
        raise OSError("the row has no image bytes")
    return data


def hub_source(spec_text: str) -> ParquetSource:
    """`hf:ORG/NAME[:SPLIT]` from the local Hugging Face cache (offline)."""
    repo, _, split = spec_text.removeprefix("hf:").partition(":")
    if repo.count("/") != 1:
        raise UserError(f"{spec_text!r} is not hf:ORG/NAME[:SPLIT].", "Example: hf:ILSVRC/imagenet-1k:validation")
    folder = cached_dataset(repo)
    files = parquet_files(folder)
    if not files:
        raise UserError(f"The cached copy of {repo} at {printable(folder)} has no parquet files.")
    return ParquetSource(files, spec_text, split or None)


def cached_dataset(repo: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo, repo_type="dataset", local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError) as exc:
        raise UserError(
            f"The Hugging Face dataset {repo} is not in the local cache.",
            f"Download it once: benchbox datasets fetch hf:{repo} (or huggingface-cli download --repo-type dataset "
            f"{repo}); gated datasets need `huggingface-cli login` first.",
        ) from exc


def download_dataset(repo: str, split: str | None) -> Path:
    """Download a hub dataset's parquet files into the Hugging Face cache (with the hub's progress bars)."""
    from huggingface_hub import snapshot_download

    patterns = [f"*{split}*.parquet", f"*/{split}/*.parquet"] if split else ["*.parquet"]
    patterns += ["README.md", "*.json"]
    try:
        return Path(snapshot_download(repo, repo_type="dataset", allow_patterns=patterns))
    except Exception as exc:  # the hub client raises many kinds; each is one line for the user
        raise UserError(f"Downloading {repo} from the Hugging Face hub failed: {exc}") from exc
