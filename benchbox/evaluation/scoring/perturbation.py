"""ImageNet-P: flip probability (percent) and top-5 distance per perturbation, exactly as the reference test.py
(noise perturbations compare every frame with frame 0); mFR and mT5D over the 10 test perturbations, normalised by
a baseline the user gives (no AlexNet P values are invented).

A frame with a non-finite output flips against every frame (itself included) and is the largest top-5 distance
(15) from any other: two NaN frames used to "agree", which made an all-NaN model the most stable one there is.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from benchbox.datasets.catalog import P_PERTURBATIONS
from benchbox.errors import UserError, printable
from benchbox.evaluation.estimates import Clusters, Estimate, SetData, Sums
from benchbox.evaluation.scoring import ScoreContext
from benchbox.evaluation.summaries import videos
from benchbox.metrics.robustness import normalised_mean, video_flip_rates, video_top5_distances
from benchbox.records import Record

BASELINE_METRICS = ("flip_prob", "top5_dist")


def comparable(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(video and frame ordinal, top-1, is it the video's label) per frame."""
    video = frames["video"].astype(np.int64)
    starts = np.r_[0, np.flatnonzero(video[1:] != video[:-1]) + 1] if video.size else np.zeros(0, np.int64)
    ordinal = np.arange(video.size) - np.repeat(starts, np.diff(np.r_[starts, video.size]))
    predicted = frames["top5"][:, 0].astype(np.int64)
    return video * (1 << 20) + ordinal, predicted, predicted == frames["label"]


def _is_noise(variant: str) -> bool:
    return "noise" in variant  # as test.py: noise frames are compared with frame 0 (also `_2`, `_3`)


def variant_records(ctx: ScoreContext) -> list[Record]:
    frames = ctx.predictions.summary
    per_video = videos(frames)
    records = [
        ctx.record("unreadable_files", float(len(ctx.predictions.unreadable)), len(ctx.samples.samples)),
        ctx.record("nonfinite_outputs", float((frames["top5"][:, 0] < 0).sum()), int(frames.size), unit="frames"),
    ]
    if not per_video:
        return records
    noise = _is_noise(ctx.cell.variant)
    n = len(per_video)
    fp = 100.0 * float(np.mean(video_flip_rates([v[:, 0] for v in per_video], noise)))
    t5d = float(np.mean(video_top5_distances(per_video, noise)))
    return [ctx.record("flip_prob", fp, n, unit="videos"), ctx.record("top5_dist", t5d, n, unit="videos"), *records]


def validate_baseline(baseline, where: str) -> dict[str, dict[str, float]]:
    """A P baseline as {metric: {perturbation: positive number}}, or a UserError naming the first bad entry."""
    hint = (
        "A P baseline is {'flip_prob': {'gaussian_noise': 9.1, ...}, 'top5_dist': {...}}: positive numbers (flip "
        "probability in percent, as benchbox records it), keyed by the 10 test perturbations."
    )
    if not isinstance(baseline, dict) or not isinstance(baseline.get("flip_prob"), dict):
        raise UserError(f"P baseline {where} must hold a 'flip_prob' table (and optionally 'top5_dist').", hint)
    for key in baseline:
        if key not in BASELINE_METRICS:
            raise UserError(f"P baseline {where}: unknown key {key!r}.", hint)
    known = set(P_PERTURBATIONS) | {"speckle_noise", "gaussian_blur", "spatter", "shear"}
    clean: dict[str, dict[str, float]] = {}
    for metric, table in baseline.items():
        if not isinstance(table, dict):
            raise UserError(f"P baseline {where}: {metric} must be a table of perturbation = number.", hint)
        clean[metric] = {}
        for name, value in table.items():
            if name not in known:
                raise UserError(f"P baseline {where}: {metric}.{name} is not an ImageNet-P perturbation.", hint)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UserError(f"P baseline {where}: {metric}.{name} = {value!r} is not a number.", hint)
            if value <= 0:
                raise UserError(f"P baseline {where}: {metric}.{name} = {value!r} must be greater than 0.", hint)
            clean[metric][name] = float(value)
    clean.setdefault("top5_dist", {})
    return clean


def load_baseline(options, store, engine: str) -> dict[str, dict[str, float]] | None:
    """The mFR/mT5D normaliser: a JSON file, or the fp32 ImageNet-P records of another model in the store."""
    source = options.p_baseline
    if not source:
        return None
    if Path(source).is_file():
        where = printable(source)
        try:
            baseline = json.loads(Path(source).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"P baseline {where} is not valid JSON: {exc}") from exc
        return validate_baseline(baseline, where)
    baseline: dict[str, dict[str, float]] = {"flip_prob": {}, "top5_dist": {}}
    for record in store.records(model=source, testset="p", precision="fp32", engine=engine):
        if record.metric in baseline and record.cell.variant and record.value is not None and record.value > 0:
            baseline[record.metric][record.cell.variant] = record.value
    if not baseline["flip_prob"]:
        raise UserError(
            f"No ImageNet-P baseline: {source!r} is neither a file nor a model with fp32 ImageNet-P results "
            "in this store.",
            "Pass --p-baseline FILE.json or evaluate the baseline model first.",
        )
    return baseline


def set_records(ctx: ScoreContext, variant_records: list[Record]) -> list[Record]:
    fp = {r.cell.variant: r.value for r in variant_records if r.metric == "flip_prob"}
    t5d = {r.cell.variant: r.value for r in variant_records if r.metric == "top5_dist"}
    bad = [r for r in variant_records if r.metric == "nonfinite_outputs" and r.value is not None]
    records = [
        ctx.record(
            "nonfinite_outputs", float(sum(r.value for r in bad)), sum(int(r.n or 0) for r in bad), unit="frames"
        )
    ]
    baseline = load_baseline(ctx.options, ctx.store, ctx.cell.engine)
    if not baseline:
        return records
    ctx.info["p_baseline"] = baseline  # the comparison recomputes mFR/mT5D with the same normaliser
    test = [p for p in P_PERTURBATIONS if p in fp]
    flags = () if len(test) == len(P_PERTURBATIONS) else (f"only {len(test)} of 10 perturbations",)
    for metric, values, key in (("mfr", fp, "flip_prob"), ("mt5d", t5d, "top5_dist")):
        value = normalised_mean({p: values[p] for p in test}, baseline.get(key))
        records.append(ctx.record(metric, value, len(test), flags=flags, unit="perturbations"))
    return records


def estimates(data: SetData, clusters: Clusters) -> list[Estimate]:
    """Per-perturbation flip probability and top-5 distance, and mFR/mT5D, resampled by video (a video's
    underlying image: the same cluster in every perturbation)."""
    rates: dict[str, tuple[Sums, np.ndarray, np.ndarray]] = {}
    for variant in data.variants:
        if not variant:
            continue
        frames = data.summary(variant)
        per_video = videos(frames)
        if not per_video:
            continue
        starts = np.r_[0, np.flatnonzero(frames["video"][1:] != frames["video"][:-1]) + 1]
        sums = Sums(clusters, clusters.index(frames["gid"][starts]))
        noise = _is_noise(variant)
        rates[variant] = (
            sums,
            sums.of(100.0 * video_flip_rates([v[:, 0] for v in per_video], noise)),
            sums.of(video_top5_distances(per_video, noise)),
        )
    out = []
    for variant, (sums, flips, distances) in rates.items():
        n = int(sums.counts.sum())
        out.append(Estimate("flip_prob", variant, n, lambda w, s=sums, f=flips: s.mean(f, w), None, False))
        out.append(Estimate("top5_dist", variant, n, lambda w, s=sums, d=distances: s.mean(d, w), None, False, ""))
    baseline = data.extra.get("p_baseline")
    test = [p for p in P_PERTURBATIONS if p in rates]
    if baseline and test:
        n = int(sum(rates[p][0].counts.sum() for p in test))
        for metric, position, key in (("mfr", 1, "flip_prob"), ("mt5d", 2, "top5_dist")):
            if not baseline.get(key):
                continue

            def normalised(w, position=position, key=key):
                return normalised_mean({p: rates[p][0].mean(rates[p][position], w) for p in test}, baseline[key])

            bounds = None
            if key == "flip_prob":  # a video's flip rate is a percentage: its share of mFR lies between these
                ends = [normalised_mean(dict.fromkeys(test, end), baseline[key]) for end in (0.0, 100.0)]
                bounds = (float(ends[0]), float(ends[1]))
            out.append(Estimate(metric, None, n, normalised, None, False, bounds=bounds))
    return out
