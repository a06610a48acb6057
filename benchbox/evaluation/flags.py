"""Flags on records: synthesized or generated data, and scored images that were calibration images (by content)
of the INT8 file a cell runs, which makes its numbers optimistic.

The overlap is found by content id (64 bits of each file's BLAKE2 hash): the scored images' ids come with their
predictions (the loader hashes every file it reads anyway), the calibration images' are in the artifact's
manifest (from this version on) or hashed once from the files it names, so no scored file is ever read again for
this check.
"""

from __future__ import annotations

import numpy as np

from benchbox.artifact import Artifact, artifact_file_for
from benchbox.datasets.readers import SampleSet
from benchbox.errors import UnsupportedPrecision
from benchbox.records import Record


def calibration_ids(artifact: Artifact, engines: list[str], precisions: list[str], device: str) -> dict:
    """{precision: content ids of the calibration images of the file it runs} (INT8 only)."""
    ids: dict[str, set[int]] = {}
    for engine in engines:
        for precision in precisions:
            try:
                name = artifact_file_for(engine, device, precision)
            except UnsupportedPrecision:
                continue
            if name is None or name not in artifact.manifest["files"]:
                continue
            calib = artifact.entry(name).get("calibration") or {}
            found = {int(x, 16) for x in calib.get("content_ids", [])} or _hash_once(calib.get("files", []))
            if found:
                ids.setdefault(precision, set()).update(found)
    return ids


def _hash_once(files: list[dict]) -> set[int]:
    """Content ids of an older manifest's calibration files (the ones still readable)."""
    from benchbox.datasets.cache import content_digest
    from benchbox.datasets.loader import content_id

    found = set()
    for item in files:
        try:
            with open(item["path"], "rb") as handle:
                found.add(content_id(content_digest(handle.read())))
        except OSError:
            continue
    return found


def calibration_overlap(samples: SampleSet, ids: dict[str, set[int]], summary: np.ndarray | None) -> dict[str, int]:
    """{precision: scored images of this variant (their content ids in `summary`) that were calibration images}."""
    if not ids or summary is None or samples.layout == "p-videos" or not summary.size:
        return {}
    scored = summary["sid"].astype(np.uint64)
    found = {}
    for precision, known in ids.items():
        count = int(np.isin(scored, np.fromiter(known, dtype=np.uint64, count=len(known))).sum())
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
