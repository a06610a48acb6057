"""ImageNet-P: flip probability (percent) and top-5 distance per perturbation, exactly as the reference test.py
(noise perturbations compare every frame with frame 0); mFR and mT5D over the 10 test perturbations, normalised by
a baseline the user gives (no AlexNet P values are invented)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchbox.datasets.catalog import P_PERTURBATIONS
from benchbox.errors import UserError
from benchbox.evaluation.scoring import ScoreContext
from benchbox.evaluation.summaries import videos
from benchbox.metrics.robustness import flip_probability, normalised_mean, top5_distance
from benchbox.records import Record


def comparable(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(video and frame ordinal, top-1, is it the video's label) per frame."""
    video = frames["video"].astype(np.int64)
    starts = np.r_[0, np.flatnonzero(video[1:] != video[:-1]) + 1] if video.size else np.zeros(0, np.int64)
    ordinal = np.arange(video.size) - np.repeat(starts, np.diff(np.r_[starts, video.size]))
    predicted = frames["top5"][:, 0].astype(np.int64)
    return video * (1 << 20) + ordinal, predicted, predicted == frames["label"]


def variant_records(ctx: ScoreContext) -> list[Record]:
    per_video = videos(ctx.predictions.summary)
    records = [ctx.record("unreadable_files", float(len(ctx.predictions.unreadable)), len(ctx.samples.samples))]
    if not per_video:
        return records
    noise = "noise" in ctx.cell.variant  # as test.py: noise frames are compared with frame 0 (also `_2`, `_3`)
    n = len(per_video)
    fp = 100.0 * flip_probability([v[:, 0] for v in per_video], noise)
    return [ctx.record("flip_prob", fp, n), ctx.record("top5_dist", top5_distance(per_video, noise), n), *records]


def load_baseline(options, store, engine: str) -> dict[str, dict[str, float]] | None:
    """The mFR/mT5D normaliser: a JSON file, or the fp32 ImageNet-P records of another model in the store."""
    source = options.p_baseline
    if not source:
        return None
    if Path(source).is_file():
        try:
            baseline = json.loads(Path(source).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"P baseline {source} is not valid JSON: {exc}") from exc
        if not isinstance(baseline, dict) or not all(isinstance(baseline.get(k), dict) for k in ("flip_prob",)):
            raise UserError(f"P baseline {source} must be {{'flip_prob': {{...}}, 'top5_dist': {{...}}}}.")
        return baseline
    baseline: dict[str, dict[str, float]] = {"flip_prob": {}, "top5_dist": {}}
    for record in store.records(model=source, testset="p", precision="fp32", engine=engine):
        if record.metric in baseline and record.cell.variant and record.value is not None:
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
    baseline = load_baseline(ctx.options, ctx.store, ctx.cell.engine)
    if not baseline:
        return []
    test = [p for p in P_PERTURBATIONS if p in fp]
    flags = () if len(test) == len(P_PERTURBATIONS) else (f"only {len(test)} of 10 perturbations",)
    records = []
    for metric, values, key in (("mfr", fp, "flip_prob"), ("mt5d", t5d, "top5_dist")):
        value = normalised_mean({p: values[p] for p in test}, baseline.get(key))
        records.append(ctx.record(metric, value, len(test), flags=flags))
    return records
