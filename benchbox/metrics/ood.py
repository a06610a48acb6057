"""Out-of-distribution detection (ImageNet-O): AUPR, AUROC and FPR at 95 % recall, anomalies positive."""

from __future__ import annotations

import math

import numpy as np


def _binary(scores_pos: np.ndarray, scores_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.concatenate([np.asarray(scores_pos, np.float64).ravel(), np.asarray(scores_neg, np.float64).ravel()])
    labels = np.concatenate([np.ones(np.size(scores_pos), bool), np.zeros(np.size(scores_neg), bool)])
    return scores, labels


def _distinct_threshold_counts(scores: np.ndarray, labels: np.ndarray):
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores, labels = scores[order], labels[order]
    distinct = np.where(np.diff(scores))[0]
    thresholds = np.r_[distinct, labels.size - 1]
    tps = np.cumsum(labels)[thresholds]
    fps = 1 + thresholds - tps
    return tps, fps, labels


def aupr(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """Average precision (sklearn's definition): sum over thresholds of (R_n - R_{n-1}) * P_n."""
    scores, labels = _binary(scores_pos, scores_neg)
    if not labels.any() or labels.all():
        return math.nan
    tps, fps, _ = _distinct_threshold_counts(scores, labels)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    recall_steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_steps * precision))


def auroc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """Area under the ROC curve: P(score_pos > score_neg) + 0.5 P(tie)."""
    scores, labels = _binary(scores_pos, scores_neg)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    starts = np.r_[0, np.where(np.diff(sorted_scores))[0] + 1]
    ends = np.r_[starts[1:], scores.size]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def fpr_at_recall(scores_pos: np.ndarray, scores_neg: np.ndarray, recall_level: float = 0.95) -> float:
    """hendrycks `fpr_and_fdr_at_recall`: FPR at the threshold whose recall is closest to `recall_level`."""
    scores, labels = _binary(scores_pos, scores_neg)
    if not labels.any() or labels.all():
        return math.nan
    tps, fps, sorted_labels = _distinct_threshold_counts(scores, labels)
    recall = tps / tps[-1]
    last = tps.searchsorted(tps[-1])
    recall = np.r_[recall[last::-1], 1]
    fps = np.r_[fps[last::-1], 0]
    cutoff = np.argmin(np.abs(recall - recall_level))
    return float(fps[cutoff] / np.sum(~sorted_labels))
