"""The evaluation core v2 changed no number: records on a family built from the shared sample equal the ones
version 1 wrote (tests/data/frozen_sample_records.json, frozen before the refactor by tests/frozen_run.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import frozen_run
import pytest

FROZEN = Path(__file__).parent / "data" / "frozen_sample_records.json"
# Deliberate changes, each explained in the v2 notes:
# - the A/R clean baseline is metric `clean_top1` (reference val-200-clean) instead of variant "val-200-clean";
# - A/R agreement and paired deltas pair the 200-class (masked) predictions that their top-1 reports, where v1
#   paired the 1000-way ones.
# - comparisons are made by the cost table from the store (same values); the paired top-1 interval is now
#   Bonett-Price's, not Wald's (it does not collapse to [0, 0] without disagreements);
# - ImageNet-O and each ImageNet-C variant no longer get a paired top-1 difference: O's top-1 on out-of-
#   distribution images means nothing, and C is compared by CE/mCE resampled by image over all its variants.
CHANGED_INTERVALS = {"top1_delta"}
NO_LONGER_COMPARED = {("o", "top1_delta"), ("o", "mcnemar_p"), ("c", "top1_delta"), ("c", "mcnemar_p")}
CHANGED_AGREEMENT = {
    ("a", "agreement_top1"),
    ("a", "top1_delta"),
    ("a", "mcnemar_p"),
    ("r", "agreement_top1"),
    ("r", "top1_delta"),
    ("r", "mcnemar_p"),
}


def key(record: dict) -> tuple:
    testset, variant, metric = record["testset"], record["variant"], record["metric"]
    reference = record.get("reference")
    if variant == "val-200-clean":
        variant, metric, reference = None, "clean_top1", "val-200-clean"
    return (record["engine"], record["precision"], testset, variant, metric, reference)


def close(a, b, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=rel)


# PyTorch's CPU kernels differ in the last bits between instruction sets (the freeze ran on AVX-512; a machine
# without it gets logits ~1e-7 apart): torch records are compared to 1e-6 there, ONNX Runtime's stay at 1e-9.
TORCH_REL = 1e-6


def _engine_view(current: dict, k: tuple):
    """v2 compared a later engine with the first given (torch against ort); v3 compares every engine with PyTorch,
    the source model. The same pair seen from the other side: agreement and McNemar p are symmetric, Δ flips."""
    engine, precision, testset, variant, metric, reference = k
    if not reference or "/" not in reference:
        return None
    other_engine, other_precision = reference.split("/")
    mirrored = current.get((other_engine, other_precision, testset, variant, metric, f"{engine}/{precision}"))
    if mirrored is None:
        return None
    value = -mirrored["value"] if metric == "top1_delta" and mirrored["value"] is not None else mirrored["value"]
    return {**mirrored, "value": value}


@pytest.mark.slow
def test_records_equal_version_1(sample_root, tmp_path):
    from benchbox.environment import cpu_has_vnni

    frozen = json.loads(FROZEN.read_text())
    current = {key(r): r for r in frozen_run.run(sample_root, tmp_path)}
    compared = 0
    mismatches = []
    for old in frozen:
        k = key(old)
        if (k[2], k[4]) in CHANGED_AGREEMENT and old.get("reference"):
            continue
        if (k[2], k[4]) in NO_LONGER_COMPARED:
            continue
        if k[1] == "int8" and not cpu_has_vnni():
            continue  # frozen on a VNNI CPU: the int8-cpu flavour quantizes weights to 7 bits without VNNI
        new = current.get(k) or _engine_view(current, k)
        if new is None:
            mismatches.append(("lost", k))
            continue
        rel = TORCH_REL if k[0] == "torch" and not cpu_has_vnni() else 1e-9
        if not close(old["value"], new["value"], rel) or old["n"] != new["n"]:
            mismatches.append((k, old["value"], new["value"], old["n"], new["n"]))
            continue
        same_interval = all(close(x, y, rel) for x, y in zip(old.get("ci95") or (), new.get("ci95") or ()))
        if old["metric"] not in CHANGED_INTERVALS and not same_interval:
            mismatches.append((k, "ci95", old["ci95"], new["ci95"]))
            continue
        compared += 1
    assert not mismatches, mismatches
    assert compared >= (240 if cpu_has_vnni() else 150)
