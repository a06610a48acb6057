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


def overlapping_samples(artifact, precisions: list[str], sample_sets) -> dict[str, dict[str, int]]:
    """{precision: {set label: images whose content is among that precision's calibration files}}.

    Each scored file is hashed at most once, and only when some precision has calibration files at all.
    """
    wanted = {p: calibration_hashes(artifact, p) for p in precisions}
    found: dict[str, dict[str, int]] = {p: {} for p in precisions}
    if not any(wanted.values()):
        return found
    for name, sets in sample_sets.items():
        for s in sets:
            if s.testset == "p":
                continue
            digests = [sha256_file(sample.path) for sample in s.samples]
            label = f"{name}/{s.variant}" if s.variant else name
            for precision, hashes in wanted.items():
                count = sum(1 for d in digests if d in hashes)
                if count:
                    found[precision][label] = count
    return found
