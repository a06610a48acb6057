"""val, V2, Sketch: top-1/top-5 with Wilson intervals, calibration (ece, rms_calib, nll), non-finite outputs.

A non-finite output is a miss for top-1 and top-5 and the worst case for calibration: confidence 1 on a wrong
answer (ECE, RMS), the lowest label probability float32 can express (NLL). So emitting NaN never helps a metric.
"""

from __future__ import annotations

import math

import numpy as np

from benchbox.evaluation.estimates import Clusters, Estimate, SetData, Sums, proportion
from benchbox.evaluation.scoring import ScoreContext, default_comparable
from benchbox.evaluation.summaries import calibration_inputs
from benchbox.metrics.calibration import ece, ece_bins, ece_from_bins, nll, rms_calibration_error
from benchbox.metrics.classification import accuracy, correct_at_k
from benchbox.records import Record

comparable = default_comparable


def accuracy_records(
    ctx: ScoreContext,
    summary: np.ndarray,
    prefix: str = "",
    top5: bool = True,
    calibration: bool = True,
) -> list[Record]:
    """top1 (and top5) with 95 % intervals, calibration (worst case for non-finite rows), the non-finite count.

    `prefix` names a masked group (A/R: their 200-class top-1, confidence and label log-probability)."""
    n = int(summary.size)
    if n == 0:
        return [ctx.record("top1", math.nan, 0)]
    conf, correct1, logp = calibration_inputs(summary, prefix)
    acc = accuracy(correct1)
    records = [ctx.record("top1", acc["value"], n, acc["ci95"])]
    if top5:
        acc5 = accuracy(correct_at_k(summary["top5"], summary["label"], 5))
        records.append(ctx.record("top5", acc5["value"], n, acc5["ci95"]))
    if calibration:
        records.append(ctx.record("ece", 100.0 * ece(conf, correct1), n))
        records.append(ctx.record("rms_calib", 100.0 * rms_calibration_error(conf, correct1), n))
        records.append(ctx.record("nll", nll(logp), n))
    records.append(ctx.record("nonfinite_outputs", float(summary["nonfinite"].sum()), n))
    return records


def unreadable_record(ctx: ScoreContext) -> Record:
    return ctx.record("unreadable_files", float(len(ctx.predictions.unreadable)), len(ctx.samples.samples))


def variant_records(ctx: ScoreContext) -> list[Record]:
    return [*accuracy_records(ctx, ctx.predictions.summary), unreadable_record(ctx)]


def accuracy_estimates(
    variant: str | None,
    summary: np.ndarray,
    clusters: Clusters,
    prefix: str = "",
    top5: bool = True,
    calibration: bool = True,
) -> list[Estimate]:
    """The paired-comparison view of `accuracy_records`: the same numbers, as functions of cluster weights."""
    sums = Sums(clusters, clusters.index(summary["gid"]))
    conf, correct1, logp = calibration_inputs(summary, prefix)
    out = [proportion("top1", variant, correct1, sums)]
    if top5:
        out.append(proportion("top5", variant, correct_at_k(summary["top5"], summary["label"], 5), sums))
    if calibration and summary.size:
        bins = ece_bins(conf, correct1, sums.k, sums.positions)  # once: every resample reuses them

        def calibration_error(weights, conf=conf, correct=correct1):
            if weights is None:
                return 100.0 * ece(conf, correct)
            return 100.0 * ece_from_bins(np.asarray(weights, dtype=np.float64), *bins)

        def log_loss(weights, logp=logp):
            return nll(logp, weights=weights, groups=sums.positions)

        out.append(Estimate("ece", variant, int(summary.size), calibration_error, None, False))
        out.append(Estimate("nll", variant, int(summary.size), log_loss, None, False, " nats"))
    return out


def estimates(data: SetData, clusters: Clusters) -> list[Estimate]:
    out: list[Estimate] = []
    for variant in data.variants:
        out += accuracy_estimates(variant, data.summary(variant), clusters)
    return out
