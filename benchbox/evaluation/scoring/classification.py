"""val, V2, Sketch: top-1/top-5 with Wilson intervals, calibration (ece, rms_calib, nll), non-finite outputs."""

from __future__ import annotations

import math

import numpy as np

from benchbox.evaluation.scoring import ScoreContext, default_comparable
from benchbox.metrics.calibration import ece, nll, rms_calibration_error
from benchbox.metrics.classification import accuracy, correct_at_k
from benchbox.records import Record

comparable = default_comparable


def accuracy_records(
    ctx: ScoreContext,
    top: np.ndarray,
    labels: np.ndarray,
    conf: np.ndarray,
    logp: np.ndarray,
    nonfinite: np.ndarray,
    top5: bool = True,
    calibration: bool = True,
) -> list[Record]:
    """top1 (and top5) with 95 % intervals, calibration over the finite rows, and the non-finite count."""
    n = int(labels.size)
    if n == 0:
        return [ctx.record("top1", math.nan, 0)]
    correct1 = correct_at_k(top, labels, 1)
    acc = accuracy(correct1)
    records = [ctx.record("top1", acc["value"], n, acc["ci95"])]
    if top5:
        acc5 = accuracy(correct_at_k(top, labels, 5))
        records.append(ctx.record("top5", acc5["value"], n, acc5["ci95"]))
    finite = ~nonfinite.astype(bool)
    if calibration and finite.any():
        count = int(finite.sum())
        records.append(ctx.record("ece", 100.0 * ece(conf[finite], correct1[finite]), count))
        records.append(ctx.record("rms_calib", 100.0 * rms_calibration_error(conf[finite], correct1[finite]), count))
        records.append(ctx.record("nll", nll(logp[finite]), count))
    records.append(ctx.record("nonfinite_outputs", float(nonfinite.sum()), n))
    return records


def unreadable_record(ctx: ScoreContext) -> Record:
    return ctx.record("unreadable_files", float(len(ctx.predictions.unreadable)), len(ctx.samples.samples))


def variant_records(ctx: ScoreContext) -> list[Record]:
    s = ctx.predictions.summary
    records = accuracy_records(ctx, s["top5"], s["label"].astype(np.int64), s["conf"], s["logp"], s["nonfinite"])
    return [*records, unreadable_record(ctx)]
