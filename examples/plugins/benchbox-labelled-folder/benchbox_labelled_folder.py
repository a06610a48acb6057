"""A benchbox test set for your own labelled images (production traffic, a customer's photos): a folder with a
`labels.csv` of `file,label` rows, the label a WordNet id (n01440764) or an ImageNet class index (0..999), the
file relative to the CSV.

    benchbox eval ARTIFACT --sets labelled --path labelled=/data/my-images
    benchbox eval ARTIFACT --sets val,labelled --data-root /data      # finds /data/labelled/labels.csv

It is scored as ImageNet val is (top-1, top-5, calibration, non-finite outputs, paired comparisons across
precisions), through benchbox's own classification scorer: the plugin only says where the images are and what
they are.
"""

from __future__ import annotations

import csv
from pathlib import Path

from benchbox.datasets.catalog import CLASSIFICATION, TestSet, wnid_to_index
from benchbox.datasets.readers import Sample, SampleSet, VariantSource, set_markers
from benchbox.errors import UserError, printable
from benchbox.records import SetKey
from benchbox.vocabulary import Layout

NAME = "labelled"
LABELS = "labels.csv"


def read_labelled_folder(folder: Path) -> SampleSet:
    """The images `labels.csv` names, in its order, with their 1000-way labels; what is wrong with a row is a
    problem of the set (counted, named), never a crash and never a silently wrong label."""
    csv_path = folder / LABELS if folder.is_dir() else folder
    root = csv_path.parent
    if not csv_path.is_file():
        raise UserError(
            f"No {LABELS} in {printable(root)}.",
            f"A labelled folder holds {LABELS} with rows file,label (label: a WNID such as n01440764, or a class index "
            "0..999), files relative to the CSV.",
        )
    index = wnid_to_index()
    samples, problems, seen = [], [], set()
    missing, bad_labels, repeated = [], [], []
    try:
        with csv_path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"Cannot read {printable(csv_path)}: {exc}") from exc
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["file", "label"]:
        rows = rows[1:]  # a header row
    for number, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            bad_labels.append(f"line {number}: {','.join(row)!r}")
            continue
        name, label_text = row[0].strip(), row[1].strip()
        label = _label(label_text, index)
        if label is None:
            bad_labels.append(f"line {number}: {label_text!r}")
            continue
        path = (root / name).resolve()
        if not path.is_file():
            missing.append(name)
            continue
        if path in seen:
            repeated.append(name)
            continue
        seen.add(path)
        samples.append(Sample(str(path), label, path.name))
    if missing:
        problems.append(f"{len(missing)} files in {LABELS} do not exist (e.g. {', '.join(missing[:3])}); not scored")
    if bad_labels:
        problems.append(
            f"{len(bad_labels)} rows have no ImageNet label (a WNID or 0..999), e.g. {'; '.join(bad_labels[:3])}"
        )
    if repeated:
        problems.append(f"{len(repeated)} files are listed twice (e.g. {', '.join(repeated[:3])}); scored once")
    synthesized, generated, outdated = set_markers(root)
    return SampleSet(SetKey(NAME), root, samples, "labelled-csv", problems, synthesized, generated, outdated)


def _label(text: str, index: dict[str, int]) -> int | None:
    if text in index:
        return index[text]
    if text.isdigit() and 0 <= int(text) < 1000:
        return int(text)
    return None


def find_variants(folder: Path) -> list[VariantSource]:
    """One variant: the whole folder (benchbox reads it when the set is evaluated)."""
    return [VariantSource(SetKey(NAME), folder, lambda: read_labelled_folder(folder))]


LABELLED = TestSet(
    name=NAME,
    title="Labelled folder",
    dirs=("labelled",),
    official_count=None,
    metrics=CLASSIFICATION,
    layout=Layout.CUSTOM,
    scorer="classification",
    aliases=("labelled-folder", "custom"),
    locate=find_variants,
    report=("top1", "top5", "ece", "nll"),
    headline="top1",
    short="labelled",
    description="your own images, labelled in labels.csv (file,label)",
)
