"""ImageNet-C: error per corruption/severity (with calibration), CE per corruption normalised by AlexNet, mCE over
the 15 benchmark corruptions (extras reported, never averaged), relative mCE against val's clean error.

A non-finite output is a wrong answer on a corrupted image. Relative mCE measures the loss from clean to
corrupted, so its worst case for a non-finite output on a clean (val) image is a right one: an all-NaN model
gets the worst relative mCE there is, not (100 - 100) / x = 0, the perfect score it used to get.
"""

from __future__ import annotations

import numpy as np

from benchbox.evaluation.estimates import Clusters, Estimate, SetData, Sums
from benchbox.evaluation.scoring import ScoreContext, default_comparable
from benchbox.evaluation.scoring.classification import accuracy_records, unreadable_record
from benchbox.metrics.classification import correct_at_k
from benchbox.metrics.robustness import corruption_errors, mce
from benchbox.records import Record

comparable = default_comparable


def _errors(summary: np.ndarray) -> np.ndarray:
    """Per corrupted image: wrong (non-finite outputs included)."""
    return ~correct_at_k(summary["top5"], summary["label"].astype(np.int64), 1)


def clean_errors_for_relative(val_summary: np.ndarray) -> np.ndarray:
    """Per clean image, for relative mCE: wrong, with a non-finite output counted right (its worst case)."""
    return _errors(val_summary) & ~val_summary["nonfinite"].astype(bool)


def variant_records(ctx: ScoreContext) -> list[Record]:
    s = ctx.predictions.summary
    records = [unreadable_record(ctx)]
    if s.size == 0:
        return records
    error = float(_errors(s).mean())
    records.insert(0, ctx.record("error", 100.0 * error, int(s.size), error_fraction=error))
    calibration = accuracy_records(ctx, s, top5=False)
    return records + [r for r in calibration if r.metric in ("ece", "rms_calib", "nll", "nonfinite_outputs")]


def set_records(ctx: ScoreContext, variant_records: list[Record]) -> list[Record]:
    errors = {}
    nonfinite, scored = 0, 0
    for r in variant_records:
        if r.metric == "error" and r.value is not None:
            corruption, severity = r.cell.variant.split("/")
            errors[(corruption, int(severity))] = r.extra.get("error_fraction", r.value / 100.0)
        if r.metric == "nonfinite_outputs" and r.value is not None:
            nonfinite, scored = nonfinite + int(r.value), scored + int(r.n or 0)
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
        clean_error = float(clean_errors_for_relative(val[1].summary).mean())
    summary = mce(per_corruption, clean_error)
    n = summary["n_corruptions"]
    flags = [] if n == 15 else [f"only {n} of 15 corruptions"]
    partial = bool(flags)
    if any(not info["complete"] for info in per_corruption.values()):
        flags.append("partial-severities")
    value = summary["mce_partial"] if partial else summary["mce"]
    records.append(ctx.record("mce", value, n, flags=flags, unit="corruptions"))
    if clean_error is not None:
        rel = summary["relative_mce_partial"] if partial else summary["relative_mce"]
        records.append(ctx.record("relative_mce", rel, n, flags=flags, unit="corruptions"))
    records.append(ctx.record("nonfinite_outputs", float(nonfinite), scored))
    return records


def _extremes(keys: list[tuple[str, int]]) -> dict[str, tuple[float, float]]:
    """The range of one image's share of mCE and relative mCE: both are affine in the image's 0/1 errors (each
    corruption and severity, and clean), increasing in the corrupted ones and decreasing in the clean one, so
    the ends are all-right and all-wrong (with the clean error at its opposite end for relative mCE)."""
    out = {}
    for name, corrupted, clean in (("low", 0.0, 1.0), ("high", 1.0, 0.0)):
        figures = mce(corruption_errors(dict.fromkeys(keys, corrupted)), clean)
        plain = mce(corruption_errors(dict.fromkeys(keys, corrupted)), None)
        out[name] = {**figures, "mce": plain["mce"], "mce_partial": plain["mce_partial"]}
    return {k: (float(out["low"][k]), float(out["high"][k])) for k in out["low"] if k != "n_corruptions"}


def estimates(data: SetData, clusters: Clusters) -> list[Estimate]:
    """mCE, relative mCE and CE per corruption, resampled by image across every corruption and severity."""
    keys, error_sums, sums_of = [], [], []
    for variant in data.variants:
        if variant is None or "/" not in variant:
            continue
        s = data.summary(variant)
        if not s.size:
            continue
        corruption, severity = variant.split("/")
        sums = Sums(clusters, clusters.index(s["gid"]))
        keys.append((corruption, int(severity)))
        error_sums.append(sums.of(_errors(s)))
        sums_of.append(sums)
    if not keys:
        return []
    numerators = np.stack(error_sums, axis=1)  # clusters x variants: errors of each image in each variant
    counts = np.stack([s.counts for s in sums_of], axis=1)
    one_each = all(s.one_each for s in sums_of)
    clean = None
    val = data.needed.get("val")
    if val is not None:
        v = val.summary(None)
        if v.size:
            clean_sums = Sums(clusters, clusters.index(v["gid"]))
            clean = (clean_sums, clean_sums.of(clean_errors_for_relative(v)))

    def errors(weights) -> dict[tuple[str, int], float | np.ndarray]:
        if weights is None:
            rates = numerators.sum(axis=0) / counts.sum(axis=0)
        else:
            num = weights @ numerators.astype(np.float32)
            den = np.repeat(weights.sum(axis=1, keepdims=True), len(keys), axis=1) if one_each else weights @ counts
            with np.errstate(invalid="ignore", divide="ignore"):
                rates = num / den
        return {k: (float(rates[i]) if weights is None else rates[:, i]) for i, k in enumerate(keys)}

    cache: dict[int, dict] = {}

    def figures(weights) -> dict:
        """mce() of the resampled errors, computed once per weight block for every metric that reads it."""
        token = id(weights)
        if token not in cache:
            cache.clear()
            per_corruption = corruption_errors(errors(weights))
            clean_error = None if clean is None else clean[0].mean(clean[1], weights)
            cache[token] = {"per": per_corruption, "mce": mce(per_corruption, clean_error), "w": weights}
        return cache[token]

    n_images = int(counts.sum())
    partial = len({c for c, _ in keys}) < 15 or not all(i["complete"] for i in corruption_errors(errors(None)).values())
    mce_key = "mce_partial" if partial else "mce"
    extremes = _extremes(keys)
    out = [Estimate("mce", None, n_images, lambda w: figures(w)["mce"][mce_key], None, False, bounds=extremes[mce_key])]
    if clean is not None:
        rel_key = "relative_mce_partial" if partial else "relative_mce"
        bounds = extremes[rel_key]
        relative = Estimate("relative_mce", None, n_images, lambda w: figures(w)["mce"][rel_key], None, False)
        relative.bounds = bounds
        out.append(relative)
    for corruption in dict.fromkeys(c for c, _ in keys):
        out.append(
            Estimate("ce", corruption, n_images, lambda w, c=corruption: figures(w)["per"][c]["ce"], None, False)
        )
    return out
