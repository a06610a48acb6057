"""`benchbox datasets`: which sets are present under a data root, their counts and layout problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchbox.datasets.catalog import C_CORRUPTIONS, C_EXTRA_CORRUPTIONS, TESTSETS
from benchbox.datasets.readers import (
    c_corruption_dirs,
    expected_layout,
    locate,
    read_image_folder,
    read_p_tree,
    v2_variant_dirs,
)
from benchbox.errors import UserError


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
            "count": None,
            "official": spec.official_count,
            "problems": [],
        }
        try:
            _survey_one(name, located, data_root, overrides, row)
        except UserError as exc:
            row["problems"].append(exc.message)
        if not row["found"] and not row["problems"]:
            row["problems"].append(expected_layout(name))
        elif row["found"] and spec.official_count and row["count"] is not None and row["count"] < spec.official_count:
            row["problems"].append(f"partial: {row['count']} of {spec.official_count} images")
        rows.append(row)
    return rows


def _survey_one(name: str, located, data_root, overrides, row: dict[str, Any]) -> None:
    if name == "real":
        where = located["real"]
        row.update(found=True, where=str(where) if where else "timm's bundled copy of real.json", count=None)
        if located["val"] is None:
            row["problems"].append("needs val/ to score")
        return
    if name == "v2":
        variants = v2_variant_dirs(data_root, overrides.get("v2"))
        if not variants:
            return
        total = 0
        for variant, path in variants.items():
            sample_set = read_image_folder(path, "v2", variant)
            total += len(sample_set.samples)
            row["problems"].extend(f"{variant}: {p}" for p in sample_set.problems)
        row.update(
            found=True,
            where=", ".join(str(p) for p in variants.values()),
            count=total,
            official=10000 * len(variants),
        )
        return
    folder = located[name]
    if folder is None:
        return
    row.update(found=True, where=str(folder))
    if name == "c":
        dirs = c_corruption_dirs(folder)
        count = 0
        for corruption in (*C_CORRUPTIONS, *C_EXTRA_CORRUPTIONS):
            if corruption not in dirs:
                if corruption in C_CORRUPTIONS:
                    row["problems"].append(f"{corruption} missing")
                continue
            missing = [s for s in range(1, 6) if not (dirs[corruption] / str(s)).is_dir()]
            if missing:
                row["problems"].append(f"{corruption}: severities {missing} missing")
            for s in range(1, 6):
                if (dirs[corruption] / str(s)).is_dir():
                    count += sum(1 for p in (dirs[corruption] / str(s)).rglob("*") if p.is_file())
        row["count"] = count
        if (folder / "SYNTHESIZED.json").is_file():
            row["problems"].append("synthesized by benchbox make-c (not the official release)")
        return
    if name == "p":
        sets = read_p_tree(folder)
        row["count"] = sum(len(s.samples) for s in sets)
        row["problems"].extend(p for s in sets for p in s.problems)
        return
    sample_set = read_image_folder(folder, name)
    row["count"] = len(sample_set.samples)
    row["problems"].extend(sample_set.problems)
    if TESTSETS[name].class_subset:
        classes = {s.label for s in sample_set.samples}
        if len(classes) != 200:
            row["problems"].append(f"{len(classes)} class folders (expected 200)")
