"""Flags on records: synthesized or generated data, and scored images that were calibration images (content
hash) of the INT8 file a cell runs, which makes its numbers optimistic."""

from __future__ import annotations

from benchbox.artifact import Artifact, artifact_file_for, sha256_file
from benchbox.datasets.readers import SampleSet
from benchbox.errors import UnsupportedPrecision
from benchbox.records import Record


def calibration_hashes(artifact: Artifact, engines: list[str], precisions: list[str], device: str) -> dict:
    """{precision: content hashes of the calibration images of the file it runs} (INT8 only)."""
    hashes: dict[str, set[str]] = {}
    for engine in engines:
        for precision in precisions:
            try:
                name = artifact_file_for(engine, device, precision)
            except UnsupportedPrecision:
                continue
            if name is None or name not in artifact.manifest["files"]:
                continue
            calib = artifact.entry(name).get("calibration") or {}
            found = {item["sha256"] for item in calib.get("files", [])}
            if found:
                hashes.setdefault(precision, set()).update(found)
    return hashes


def calibration_overlap(samples: SampleSet, hashes: dict[str, set[str]]) -> dict[str, int]:
    """{precision: scored images of this variant whose content is a calibration image of that precision}."""
    if not hashes or samples.layout == "p-videos":
        return {}
    digests = []
    for s in samples.samples:
        try:
            digests.append(sha256_file(s.path))
        except OSError:
            continue
    found = {}
    for precision, known in hashes.items():
        count = sum(1 for d in digests if d in known)
        if count:
            found[precision] = count
    return found


def overlap_warning(precision: str, count: int, samples: SampleSet) -> str:
    return (
        f"{precision}: {count} images of {samples.key.label} were calibration images of this artifact: its "
        "numbers there are optimistic (calibrating on the test set)."
    )


def flag(records: list[Record], samples: SampleSet, overlap: dict[str, int]) -> list[Record]:
    """The records of a variant with its data flags, and calibration-overlap on the precisions it concerns."""
    flagged = []
    for record in records:
        extra = list(samples.data_flags)
        if record.cell.precision in overlap:
            extra.append("calibration-overlap")
        flagged.append(record.with_flags(*extra) if extra else record)
    return flagged
