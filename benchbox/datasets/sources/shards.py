"""WebDataset shards as a test set: `KEY.jpg` (or .jpeg/.png/.webp) with its label in `KEY.cls` or `KEY.json`.

Two conventions are in use and both are read:

- timm's (`imagenet-1k-wds` and the like): the label is the ImageNet-1k class index (sorted WNIDs).
- clip-benchmark's (`clip-benchmark/wds_imagenet1k`, `wds_imagenet-a`, ...): a `classnames.txt` beside the shards
  (or one folder up) lists the set's classes; for ImageNet-A/R/O the index is into the set's own 200 classes, in
  WNID order (they were written from the official folders by an ImageFolder, which sorts), and is mapped to the
  1000 classes through the set's synsets.

Samples are grouped as WebDataset groups them (consecutive members with the same key: the path up to the first
dot of the file name), in shard order and member order, so the order is the order `webdataset.WebDataset` yields.
The shards are read in place through the tar index (benchbox.datasets.sources.archives): random access, bounded
memory, no extraction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchbox.datasets.sources.archives import ArchiveIndex, open_archive, read_member
from benchbox.errors import UserError, printable
from benchbox.locator import Locator
from benchbox.records import SetKey

IMAGE_KINDS = ("jpg", "jpeg", "png", "webp")


def split_key(member: str) -> tuple[str, str] | None:
    """(key, extension) of a shard member: `a/b.c.d` -> (`a/b`, `c.d`); None for a name without an extension."""
    directory, _, name = member.rpartition("/")
    stem, dot, ext = name.partition(".")
    if not dot or not stem:
        return None
    return (f"{directory}/{stem}" if directory else stem), ext.lower()


def is_shard(index: ArchiveIndex) -> bool:
    """A tar whose members are WebDataset samples: files at the top level only, some of them labels."""
    if index.has_directories():
        return False
    for name, _, _ in index.files(""):
        parts = split_key(name)
        if parts is not None and parts[1] in ("cls", "json"):
            return True
    return False


def expand(pattern: str) -> list[str]:
    """A brace pattern (`val-{0000..0063}.tar`, `{a,b}.tar`) expanded in order, as WebDataset expands it."""
    from braceexpand import braceexpand

    return list(braceexpand(pattern))


@dataclass
class ShardSource:
    """A set stored as WebDataset shards (already listed, in order)."""

    shards: list[Path]
    where: str  # what the user gave: a pattern, a folder, a list file

    def __str__(self) -> str:
        return self.where

    @property
    def root(self) -> Path:
        return self.shards[0].parent

    def classnames(self) -> list[str] | None:
        for folder in (self.root, self.root.parent):
            path = folder / "classnames.txt"
            if path.is_file():
                return [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
        return None

    def read(self, spec, key: SetKey):
        """The SampleSet of these shards (labels mapped to the 1000 classes)."""
        from benchbox.datasets.readers import Sample, SampleSet

        missing = [s for s in self.shards if not s.is_file()]
        if missing:
            raise UserError(
                f"{len(missing)} of {len(self.shards)} shards of {self.where} do not exist "
                f"(e.g. {printable(missing[0])}).",
                "Check the brace pattern or the list file.",
            )
        rows: list[tuple[str, int | None, str]] = []
        problems: list[str] = []
        counts = {"no label": 0, "no image": 0}
        for shard in self.shards:
            index = open_archive(shard)
            for sample_key, image, label in _samples(index, counts):
                rows.append((sample_key, label, image))
        mapping, note = _label_mapping(spec, self.classnames(), {r[1] for r in rows if r[1] is not None})
        if note:
            problems.append(note)
        samples, out_of_range = [], 0
        for sample_key, label, image in rows:
            if label is None:
                continue
            mapped = mapping(label)
            if mapped is None:
                out_of_range += 1
                continue
            samples.append(Sample(image, mapped, sample_key))
        for what, count in (*counts.items(), ("a label outside the class list", out_of_range)):
            if count:
                problems.append(f"{count} samples with {what}; ignored")
        if not samples:
            raise UserError(f"No labelled images in the shards {self.where}.", _SHARD_LAYOUT)
        return SampleSet(key, self.root, samples, "webdataset", problems)


_SHARD_LAYOUT = (
    "Expected WebDataset shards: KEY.jpg (or .jpeg/.png/.webp) with KEY.cls (a class index) or KEY.json "
    '({"label": ...}), optionally classnames.txt beside the shards.'
)


def _samples(index: ArchiveIndex, counts: dict[str, int]):
    """(sample key, image locator, label) per WebDataset sample of one shard."""
    group_key, members = None, {}

    def finish():
        if group_key is None:
            return None
        image = next((members[k] for k in IMAGE_KINDS if k in members), None)
        label, name = _label(index, members)
        if image is None:
            counts["no image"] += 1
            return None
        if label is None:
            counts["no label"] += 1
        ext = next(k for k in IMAGE_KINDS if k in members)
        return (name or f"{group_key.rpartition('/')[2]}.{ext}"), image, label

    for name, offset, size in index.files(""):
        parts = split_key(name)
        if parts is None:
            continue
        sample_key, ext = parts
        if sample_key != group_key:
            done = finish()
            if done is not None:
                yield done
            group_key, members = sample_key, {}
        members[ext] = str(Locator("tar", offset, size, str(index.data_file), name))
    done = finish()
    if done is not None:
        yield done


def _label(index: ArchiveIndex, members: dict[str, str]) -> tuple[int | None, str | None]:
    """The label of one sample (from .cls, else .json) and the file name its .json records, if any."""
    from benchbox.locator import parse

    label, name = None, None
    if "json" in members:
        try:
            meta = json.loads(read_member(parse(members["json"]), 1 << 20))
        except (ValueError, OSError):
            meta = {}
        if isinstance(meta, dict):
            value = meta.get("label", meta.get("cls"))
            label = value if isinstance(value, int) and not isinstance(value, bool) else None
            filename = meta.get("filename") or meta.get("file_name")
            name = filename.rpartition("/")[2] if isinstance(filename, str) and filename else None
    if "cls" in members:
        try:
            label = int(read_member(parse(members["cls"]), 1 << 10).decode().strip())
        except (ValueError, OSError, UnicodeDecodeError):
            label = None
    return label, name


def _label_mapping(spec, classnames: list[str] | None, labels: set[int]):
    """How a shard label becomes a 1000-class index, and a note when it was inferred rather than stated."""
    from benchbox.datasets.catalog import subset_indices

    subset = subset_indices(spec.class_subset) if spec.class_subset else None

    def identity(label: int) -> int | None:
        return label if 0 <= label < 1000 else None

    def through_subset(label: int) -> int | None:
        return subset[label] if 0 <= label < len(subset) else None

    if classnames is not None:
        if len(classnames) == 1000:
            return identity, None
        if subset is not None and len(classnames) == len(subset):
            return through_subset, None
        expected = f"1000 or {spec.title}'s {len(subset)}" if subset is not None else "1000"
        raise UserError(
            f"classnames.txt beside the shards lists {len(classnames)} classes; expected {expected}.",
            "Use the classnames.txt that came with the shards.",
        )
    if subset is not None and labels and max(labels) < len(subset) and not labels <= set(subset):
        note = (
            f"labels read as indices into {spec.title}'s {len(subset)} classes in WNID order (all are below "
            f"{len(subset)} and most are not {spec.title} classes; no classnames.txt says which)"
        )
        return through_subset, note
    return identity, None
