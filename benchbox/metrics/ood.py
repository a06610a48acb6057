"""Out-of-distribution detection (ImageNet-O): AUPR, AUROC and FPR at 95 % recall, anomalies positive.

Each takes optional `weights` over the samples (positives first, then negatives): a 1-D vector gives one weighted
value, a (B, N) matrix B values (a paired bootstrap: how often each sample was drawn). Non-finite scores are the
caller's to replace by a worst case (evaluation.summaries.anomaly_scores) before they get here.
"""

from __future__ import annotations

import math

import numpy as np


def _binary(scores_pos: np.ndarray, scores_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.concatenate([np.asarray(scores_pos, np.float64).ravel(), np.asarray(scores_neg, np.float64).ravel()])
    labels = np.concatenate([np.ones(np.size(scores_pos), bool), np.zeros(np.size(scores_neg), bool)])
    return scores, labels


def _descending(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray):
    """Sorted by descending score: the labels, the weights, and the last index of each run of equal scores."""
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores, labels, weights = scores[order], labels[order], weights[..., order]
    # distinct thresholds; np.diff(inf, inf) is nan, so runs of equal scores are found by comparison instead
    distinct = np.flatnonzero(scores[1:] != scores[:-1])
    thresholds = np.r_[distinct, labels.size - 1]
    return labels, weights, thresholds


def _rows(weights: np.ndarray | None, n: int) -> tuple[np.ndarray, bool]:
    if weights is None:
        return np.ones((1, n)), True
    w = np.asarray(weights, dtype=np.float64)
    return (w[None, :], True) if w.ndim == 1 else (w, False)


def _counts(scores_pos: np.ndarray, scores_neg: np.ndarray, weights: np.ndarray | None):
    """Weighted (true, false) positive counts at each distinct threshold, highest score first, one row per weight
    vector; None for the counts when one class is empty (every metric is then NaN). Also: single, number of rows."""
    scores, labels = _binary(scores_pos, scores_neg)
    w, single = _rows(weights, labels.size)
    if not labels.any() or labels.all():
        return None, single, len(w)
    labels, w, thresholds = _descending(scores, labels, w)
    tps = np.cumsum(w * labels, axis=1)[:, thresholds]
    fps = np.cumsum(w * ~labels, axis=1)[:, thresholds]
    return (tps, fps), single, len(w)


def _undefined(single: bool, rows: int):
    return math.nan if single else np.full(rows, np.nan)


def aupr(scores_pos: np.ndarray, scores_neg: np.ndarray, weights: np.ndarray | None = None):
    """Average precision (sklearn's definition): sum over thresholds of (R_n - R_{n-1}) * P_n."""
    counts, single, rows = _counts(scores_pos, scores_neg, weights)
    if counts is None:
        return _undefined(single, rows)
    tps, fps = counts
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tps + fps > 0, tps / (tps + fps), 0.0)
        recall = tps / tps[:, -1:]
    steps = np.diff(np.c_[np.zeros(rows), recall], axis=1)
    out = np.sum(steps * precision, axis=1)
    return float(out[0]) if single else out


def auroc(scores_pos: np.ndarray, scores_neg: np.ndarray, weights: np.ndarray | None = None):
    """Area under the ROC curve: P(score_pos > score_neg) + 0.5 P(tie)."""
    counts, single, rows = _counts(scores_pos, scores_neg, weights)
    if counts is None:
        return _undefined(single, rows)
    pos, neg = counts
    pos_run = np.diff(np.c_[np.zeros(rows), pos], axis=1)  # positives of each tie run (highest score first)
    neg_run = np.diff(np.c_[np.zeros(rows), neg], axis=1)
    neg_below = neg[:, -1:] - neg  # negatives scoring below each run
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sum(pos_run * (neg_below + 0.5 * neg_run), axis=1) / (pos[:, -1] * neg[:, -1])
    return float(out[0]) if single else out


def fpr_at_recall(
    scores_pos: np.ndarray, scores_neg: np.ndarray, recall_level: float = 0.95, weights: np.ndarray | None = None
):
    """hendrycks `fpr_and_fdr_at_recall`: FPR at the threshold whose recall is closest to `recall_level`."""
    counts, single, rows = _counts(scores_pos, scores_neg, weights)
    if counts is None:
        return _undefined(single, rows)
    tps_all, fps_all = counts
    out = np.empty(rows)
    for row, (tps, fps) in enumerate(zip(tps_all, fps_all)):
        if tps[-1] <= 0 or fps[-1] <= 0:
            out[row] = np.nan
            continue
        recall = tps / tps[-1]
        last = tps.searchsorted(tps[-1])
        recall = np.r_[recall[last::-1], 1]
        fps = np.r_[fps[last::-1], 0]
        cutoff = np.argmin(np.abs(recall - recall_level))
        out[row] = fps[cutoff] / fps_all[row, -1]
    return float(out[0]) if single else out
