"""ImageNet-C: error per corruption/severity (with calibration), CE per corruption normalised by AlexNet, mCE over
the 15 benchmark corruptions (extras reported, never averaged), relative mCE against val's clean error."""

from __future__ import annotations

import numpy as np

from benchbox.evaluation.scoring import ScoreContext, default_comparable
from benchbox.evaluation.scoring.classification import accuracy_records, unreadable_record
from benchbox.metrics.classification import correct_at_k
from benchbox.metrics.robustness import corruption_errors, mce
from benchbox.records import Record

comparable = default_comparable


def variant_records(ctx: ScoreContext) -> list[Record]:
    s = ctx.predictions.summary
    records = [unreadable_record(ctx)]
    if s.size == 0:
        return records
    labels = s["label"].astype(np.int64)
    error = 1.0 - float(correct_at_k(s["top5"], labels, 1).mean())
    records.insert(0, ctx.record("error", 100.0 * error, int(s.size), error_fraction=error))
    calibration = accuracy_records(ctx, s["top5"], labels, s["conf"], s["logp"], s["nonfinite"], top5=False)
    return records + [r for r in calibration if r.metric in ("ece", "rms_calib", "nll")]


def set_records(ctx: ScoreContext, variant_records: list[Record]) -> list[Record]:
    errors = {}
    for r in variant_records:
        if r.metric == "error" and r.value is not None:
            corruption, severity = r.cell.variant.split("/")
            errors[(corruption, int(severity))] = r.extra.get("error_fraction", r.value / 100.0)
    if not errors:
        return []
    per_corruption = corruption_errors(errors)
    records = []
    for corruption, info in per_corruption.items():
        flags = () if info["complete"] else ("partial-severities",)
        records.append(
            ctx.record(
                "ce", info["ce"], None, cell=ctx.cell.at_variant(corruption), mean_error=info["error"], flags=flags
            )
        )
    clean_error = None
    val = ctx.needed("val")
    if val is not None and val[1].summary.size:
        summary = val[1].summary
        clean_error = 1.0 - float(correct_at_k(summary["top5"], summary["label"].astype(np.int64), 1).mean())
    summary = mce(per_corruption, clean_error)
    flags = [] if summary["n_corruptions"] == 15 else [f"only {summary['n_corruptions']} of 15 corruptions"]
    partial = bool(flags)
    if any(not info["complete"] for info in per_corruption.values()):
        flags.append("partial-severities")
    value = summary["mce_partial"] if partial else summary["mce"]
    records.append(ctx.record("mce", value, summary["n_corruptions"], flags=flags))
    if clean_error is not None:
        rel = summary["relative_mce_partial"] if partial else summary["relative_mce"]
        records.append(ctx.record("relative_mce", rel, summary["n_corruptions"], flags=flags))
    return records
