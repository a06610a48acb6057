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


def corruption_errors(errors: Mapping[tuple[str, int], float | np.ndarray]) -> dict[str, dict]:
    """Per corruption: mean error over the severities present, CE vs AlexNet (same severities), in percent.

    errors: {(corruption, severity): error fraction}, each a number or an array of B resampled values (a paired
    bootstrap: the figures below are then arrays of B). CE_c = sum_s E_s,c / sum_s E^AlexNet_s,c.
    """
    base = alexnet_c_baseline()["severity"]
    by_corruption: dict[str, dict[int, float | np.ndarray]] = {}
    for (corruption, severity), err in errors.items():
        by_corruption.setdefault(corruption, {})[int(severity)] = err
    out = {}
    for corruption, per_severity in by_corruption.items():
        severities = sorted(per_severity)
        values = [np.asarray(per_severity[s], dtype=np.float64) for s in severities]
        mean_err = _plain(sum(values) / len(values))
        ce: float | np.ndarray = math.nan
        if corruption in base:
            alex = [base[corruption][s - 1] for s in severities]
            ce = _plain(100.0 * sum(values) / sum(alex))
        out[corruption] = {
            "error": _plain(100.0 * np.asarray(mean_err)),
            "ce": ce,
            "severities": severities,
            "complete": severities == [1, 2, 3, 4, 5],
        }
        out[corruption]["error_fraction"] = mean_err
        out[corruption]["alexnet_error_fraction"] = float(np.mean(alex)) if corruption in base else math.nan
    return out


def _plain(value: np.ndarray) -> float | np.ndarray:
    """A 0-d result as a Python float, a resampled one as its array."""
    value = np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else value


def mce(per_corruption: Mapping[str, dict], clean_error: float | np.ndarray | None = None) -> dict[str, float]:
    """mCE over the 15 benchmark corruptions (extras excluded), and relative mCE when the clean error is known.

    relative CE_c = (E_c - E_clean) / (E^AlexNet_c - E^AlexNet_clean); clean_error is a fraction.
    Returns NaN for a value when any of the 15 is missing; `n_corruptions` says how many were averaged.
    Works on resampled (array) figures as on plain numbers.
    """
    clean_alex = alexnet_c_baseline()["clean_error"]
    present = [c for c in C_CORRUPTIONS if c in per_corruption]
    ces = [np.asarray(per_corruption[c]["ce"], dtype=np.float64) for c in present]
    complete = len(present) == len(C_CORRUPTIONS)
    mean_ce = _plain(sum(ces) / len(ces)) if ces else math.nan
    result = {
        "mce": mean_ce if complete else math.nan,
        "mce_partial": mean_ce,
        "n_corruptions": len(present),
    }
    if clean_error is not None:
        rel = [
            100.0
            * (np.asarray(per_corruption[c]["error_fraction"]) - clean_error)
            / (per_corruption[c]["alexnet_error_fraction"] - clean_alex)
            for c in present
        ]
        mean_rel = _plain(sum(rel) / len(rel)) if rel else math.nan
        result["relative_mce"] = mean_rel if complete else math.nan
        result["relative_mce_partial"] = mean_rel
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


def video_flip_rates(predictions: Sequence[np.ndarray], noise: bool, difficulty: int = 1) -> np.ndarray:
    """Per video, the share of frame pairs whose top-1 differs (test.py `flip_prob` before its mean). A pair with
    a non-finite frame (class -1) is a flip: NaN never agrees with anything, itself included."""
    rates = []
    for preds in predictions:
        preds = np.asarray(preds)
        pairs = np.asarray(_pairs(len(preds), noise, difficulty), dtype=np.int64).reshape(-1, 2)
        a, b = preds[pairs[:, 0]], preds[pairs[:, 1]]
        rates.append(np.mean((a != b) | (a < 0) | (b < 0)) if len(pairs) else np.nan)
    return np.asarray(rates, dtype=np.float64)


def flip_probability(predictions: Sequence[np.ndarray], noise: bool, difficulty: int = 1) -> float:
    """Mean over videos of the share of frame pairs whose top-1 prediction differs (test.py `flip_prob`)."""
    rates = video_flip_rates(predictions, noise, difficulty)
    return float(np.mean(rates)) if rates.size else math.nan


def top5_distance_pair(top5_ref: np.ndarray, top5_other: np.ndarray) -> int:
    """sum_{k<5} |k - min(sigma_k - 1, 5)|, sigma_k = rank in the other frame of the ref frame's k-th class.

    Only the top-5 lists are needed: a class outside the other frame's top 5 has sigma_k - 1 >= 5, capped at 5.
    A non-finite frame (classes -1) is the largest distance, 15: none of its classes is in the other's top 5.
    """
    ref, other = np.asarray(top5_ref)[:5], np.asarray(top5_other)[:5]
    if (ref < 0).any() or (other < 0).any():
        return 15
    position = {int(c): j for j, c in enumerate(other)}
    return int(sum(abs(k - position.get(int(c), 5)) for k, c in enumerate(ref)))


def video_top5_distances(top5_per_video: Sequence[np.ndarray], noise: bool, difficulty: int = 1) -> np.ndarray:
    """Per video, the mean top-5 distance over its frame pairs (test.py `ranking_dist(mode='top5')`)."""
    out = []
    for frames in top5_per_video:
        pairs = _pairs(len(frames), noise, difficulty)
        out.append(np.mean([top5_distance_pair(frames[a], frames[b]) for a, b in pairs]) if pairs else np.nan)
    return np.asarray(out, dtype=np.float64)


def top5_distance(top5_per_video: Sequence[np.ndarray], noise: bool, difficulty: int = 1) -> float:
    """Mean over videos of the mean top-5 distance over frame pairs (test.py `ranking_dist(mode='top5')`).

    Each video is a (frames, 5) array of its frames' top-5 classes, best first.
    """
    per_video = video_top5_distances(top5_per_video, noise, difficulty)
    return float(np.mean(per_video)) if per_video.size else math.nan


def normalised_mean(values: Mapping[str, float | np.ndarray], baseline: Mapping[str, float] | None):
    """mFR / mT5D: mean over perturbations of value / baseline value (percent); NaN without a baseline."""
    if not baseline:
        return math.nan
    keys = [k for k in values if k in baseline and baseline[k]]
    if not keys:
        return math.nan
    return _plain(100.0 * sum(np.asarray(values[k], dtype=np.float64) / baseline[k] for k in keys) / len(keys))
