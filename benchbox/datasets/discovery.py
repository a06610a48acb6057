"""`benchbox datasets`: which sets are present under a data root, their counts and layout problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchbox.datasets.catalog import C_CORRUPTIONS, TESTSETS
from benchbox.datasets.readers import SYNTHESIZED_MARKER, expected_layout
from benchbox.datasets.variants import c_corruption_dirs, c_layout_problems, locate, set_variants
from benchbox.errors import UserError, printable


def survey(data_root: Path | None, overrides: dict[str, Path] | None = None) -> list[dict[str, Any]]:
    """One row per set: found, where, image count, official count, problems (partial sets are flagged)."""
    overrides = overrides or {}
    located = locate(data_root, overrides)
    rows = []
    for name, spec in TESTSETS.items():
        row: dict[str, Any] = {
            "set": name,
            "title": spec.title,
            "found": False,
            "where": None,
            "format": None,
            "count": None,
            "official": spec.official_count,
            "problems": [],
        }
        try:
            _survey_one(spec, located, data_root, overrides, row)
        except UserError as exc:
            row["problems"].append(exc.message)
        if not row["found"] and not row["problems"]:
            row["problems"].append(expected_layout(name))
        elif row["found"] and row["official"] and row["count"] is not None and row["count"] < row["official"]:
            row["problems"].append(f"partial: {row['count']} of {row['official']} images")
        rows.append(row)
    return rows


def _survey_one(spec, located, data_root, overrides, row: dict[str, Any]) -> None:
    variants = set_variants(spec, located, data_root, overrides)
    if variants is None:
        return
    if spec.layout == "val-labels":
        where = located["real"]
        row.update(found=True, where=printable(where) if where else "timm's bundled copy of real.json")
        return
    from benchbox.datasets.sources import describe

    source = located.get(spec.name) if spec.layout != "v2" else None
    row["format"] = describe(source) if source is not None else "folder"
    row.update(
        found=True,
        where=", ".join(
            sorted({printable(v.folder if spec.layout != "c" else v.folder.parent.parent) for v in variants})
        ),
    )
    if spec.layout == "c":
        root = located["c"]
        dirs = c_corruption_dirs(root)
        for corruption in C_CORRUPTIONS:
            if corruption not in dirs:
                row["problems"].append(f"{corruption} missing")
        for corruption, folder in dirs.items():
            missing = [s for s in range(1, 6) if not (folder / str(s)).is_dir()]
            if missing and corruption in C_CORRUPTIONS:
                row["problems"].append(f"{corruption}: severities {missing} missing")
        row["where"] = printable(root)
        row["problems"] += c_layout_problems(root)
        if (root / SYNTHESIZED_MARKER).is_file():
            row["problems"].append("synthesized by benchbox make-c (not the official release)")
    count = 0
    classes: set[int] = set()
    for variant in variants:
        sample_set = variant.read()
        count += len(sample_set.samples)
        classes |= {s.label for s in sample_set.samples}
        prefix = f"{variant.key.variant}: " if variant.key.variant and spec.layout != "c" else ""
        row["problems"].extend(prefix + p for p in sample_set.problems if prefix + p not in row["problems"])
    row["count"] = count
    if spec.layout == "v2":
        row["official"] = 10000 * len(variants)
    if spec.class_subset and len(classes) != 200:
        row["problems"].append(f"{len(classes)} classes (expected 200)")
