"""Detect test images that were also used to calibrate an INT8 artifact (content-hash match)."""

from __future__ import annotations

from typing import Any

from benchbox.exporters.manifest import sha256_file


def calibration_hashes(artifact, precision: str) -> set[str]:
    """Content hashes of the calibration files of the artifact(s) behind a precision."""
    hashes: set[str] = set()
    names = ("int8", "int8-cpu") if precision == "int8" else (precision,)
    for name in names:
        entry: dict[str, Any] = artifact.manifest.get("files", {}).get(name, {})
        calib = entry.get("calibration") or {}
        hashes.update(item["sha256"] for item in calib.get("files", []))
    return hashes


def overlapping_samples(artifact, precision: str, sample_sets) -> dict[str, int]:
    """{set label: number of its images whose content is among the calibration files}."""
    hashes = calibration_hashes(artifact, precision)
    if not hashes:
        return {}
    found = {}
    for name, sets in sample_sets.items():
        for s in sets:
            if s.testset == "p":
                continue
            count = sum(1 for sample in s.samples if sha256_file(sample.path) in hashes)
            if count:
                found[f"{name}/{s.variant}" if s.variant else name] = count
    return found
