"""Lower precision vs FP32 on the same engine (and later engines vs the first): top-1 agreement, the paired
top-1 difference with its 95 % interval, and the exact McNemar p. Only samples both cells scored are paired."""

from __future__ import annotations

from types import ModuleType

import numpy as np

from benchbox.evaluation.scoring import ScoreContext
from benchbox.metrics.classification import accuracy, agreement_top1
from benchbox.metrics.stats import mcnemar_exact, paired_difference
from benchbox.records import Record


def agreement_records(
    ctx: ScoreContext, scorer: ModuleType, reference: np.ndarray, other: np.ndarray, reference_name: str
) -> list[Record]:
    """Records for ctx.cell (the compared cell) against `reference_name` (e.g. 'ort/fp32')."""
    ref_keys, ref_top1, ref_correct = scorer.comparable(reference)
    keys, top1, correct = scorer.comparable(other)
    common, ref_rows, rows = np.intersect1d(ref_keys, keys, return_indices=True)
    if common.size == 0:
        return []
    agree = accuracy(agreement_top1(ref_top1[ref_rows], top1[rows]))
    paired = paired_difference(ref_correct[ref_rows], correct[rows])
    return [
        ctx.record("agreement_top1", agree["value"], agree["n"], agree["ci95"], reference=reference_name),
        ctx.record(
            "top1_delta",
            100.0 * paired["diff"],
            paired["n"],
            [100.0 * paired["lo"], 100.0 * paired["hi"]],
            reference=reference_name,
            n10=paired["n10"],
            n01=paired["n01"],
        ),
        ctx.record("mcnemar_p", mcnemar_exact(paired["n10"], paired["n01"]), paired["n"], reference=reference_name),
    ]
