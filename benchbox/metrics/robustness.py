"""ImageNet-C (CE, mCE, relative mCE) and ImageNet-P (flip probability, top-5 distance, mFR, mT5D).

C follows google-research/augmix `compute_mce` and robustness_metrics' relative mCE; P follows
hendrycks/robustness `ImageNet-P/test.py` (noise perturbations compare every frame with frame 0).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from benchbox.datasets.catalog import C_CORRUPTIONS


@functools.cache
def alexnet_c_baseline() -> dict:
    """AlexNet ImageNet-C errors per corruption and severity, and its clean error (fractions)."""
    return json.loads((Path(__file__).parents[1] / "datasets" / "_info" / "alexnet_c_errors.json").read_text())


def corruption_errors(errors: Mapping[tuple[str, int], float]) -> dict[str, dict]:
    """Per corruption: mean error over the severities present, CE vs AlexNet (same severities), in percent.

    errors: {(corruption, severity): error fraction}. CE_c = sum_s E_s,c / sum_s E^AlexNet_s,c.
    """
    base = alexnet_c_baseline()["severity"]
    by_corruption: dict[str, dict[int, float]] = {}
    for (corruption, severity), err in errors.items():
        by_corruption.setdefault(corruption, {})[int(severity)] = float(err)
    out = {}
    for corruption, per_severity in by_corruption.items():
        severities = sorted(per_severity)
        mean_err = float(np.mean([per_severity[s] for s in severities]))
        ce = math.nan
        if corruption in base:
            alex = [base[corruption][s - 1] for s in severities]
            ce = 100.0 * sum(per_severity[s] for s in severities) / sum(alex)
        out[corruption] = {
            "error": 100.0 * mean_err,
            "ce": ce,
            "severities": severities,
            "complete": severities == [1, 2, 3, 4, 5],
        }
        out[corruption]["error_fraction"] = mean_err
        out[corruption]["alexnet_error_fraction"] = float(np.mean(alex)) if corruption in base else math.nan
    return out


def mce(per_corruption: Mapping[str, dict], clean_error: float | None = None) -> dict[str, float]:
    """mCE over the 15 benchmark corruptions (extras excluded), and relative mCE when the clean error is known.

    relative CE_c = (E_c - E_clean) / (E^AlexNet_c - E^AlexNet_clean); clean_error is a fraction.
    Returns NaN for a value when any of the 15 is missing; `n_corruptions` says how many were averaged.
    """
    clean_alex = alexnet_c_baseline()["clean_error"]
    present = [c for c in C_CORRUPTIONS if c in per_corruption]
    ces = [per_corruption[c]["ce"] for c in present]
    result = {
        "mce": float(np.mean(ces)) if len(present) == len(C_CORRUPTIONS) else math.nan,
        "mce_partial": float(np.mean(ces)) if ces else math.nan,
        "n_corruptions": len(present),
    }
    if clean_error is not None:
        rel = [
            100.0
            * (per_corruption[c]["error_fraction"] - clean_error)
            / (per_corruption[c]["alexnet_error_fraction"] - clean_alex)
            for c in present
        ]
        result["relative_mce"] = float(np.mean(rel)) if len(present) == len(C_CORRUPTIONS) else math.nan
        result["relative_mce_partial"] = float(np.mean(rel)) if rel else math.nan
    return result


def _pairs(num_frames: int, noise: bool, difficulty: int = 1) -> list[tuple[int, int]]:
    """(reference frame, frame) pairs as test.py walks them."""
    step = 1 if noise else difficulty
    pairs = []
    for offset in range(step):
        frames = list(range(offset, num_frames, step))
        prev = frames[0]
        for frame in frames[1:]:
            pairs.append((prev, frame))
            if not noise:
                prev = frame
    return pairs


def flip_probability(predictions: Sequence[np.ndarray], noise: bool, difficulty: int = 1) -> float:
    """Mean over videos of the share of frame pairs whose top-1 prediction differs (test.py `flip_prob`)."""
    per_video = []
    for preds in predictions:
        pairs = _pairs(len(preds), noise, difficulty)
        per_video.append(np.mean([preds[a] != preds[b] for a, b in pairs]))
    return float(np.mean(per_video)) if per_video else math.nan


def top5_distance_pair(top5_ref: np.ndarray, top5_other: np.ndarray) -> int:
    """sum_{k<5} |k - min(sigma_k - 1, 5)|, sigma_k = rank in the other frame of the ref frame's k-th class.

    Only the top-5 lists are needed: a class outside the other frame's top 5 has sigma_k - 1 >= 5, capped at 5.
    """
    position = {int(c): j for j, c in enumerate(np.asarray(top5_other)[:5])}
    return int(sum(abs(k - position.get(int(c), 5)) for k, c in enumerate(np.asarray(top5_ref)[:5])))


def top5_distance(top5_per_video: Sequence[np.ndarray], noise: bool, difficulty: int = 1) -> float:
    """Mean over videos of the mean top-5 distance over frame pairs (test.py `ranking_dist(mode='top5')`).

    Each video is a (frames, 5) array of its frames' top-5 classes, best first.
    """
    per_video = []
    for frames in top5_per_video:
        pairs = _pairs(len(frames), noise, difficulty)
        per_video.append(np.mean([top5_distance_pair(frames[a], frames[b]) for a, b in pairs]))
    return float(np.mean(per_video)) if per_video else math.nan


def normalised_mean(values: Mapping[str, float], baseline: Mapping[str, float] | None) -> float:
    """mFR / mT5D: mean over perturbations of value / baseline value (percent); NaN without a baseline."""
    if not baseline:
        return math.nan
    keys = [k for k in values if k in baseline and baseline[k]]
    if not keys:
        return math.nan
    return float(100.0 * np.mean([values[k] / baseline[k] for k in keys]))
