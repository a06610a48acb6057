"""Calibration: ECE (robustness_metrics: 15 equal-width bins), RMS calibration error (hendrycks), NLL; and the
per-row softmax quantities they are computed from."""

from __future__ import annotations

import math

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row softmax in float64 (stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confidence_and_label_logprob(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: max softmax probability, and the log-probability of the label (NaN where the label is -1).

    float64 throughout, so the metrics below are the same numbers as when computed from the logits directly.
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = e.sum(axis=1)
    confidence = e.max(axis=1) / total  # == max of e / total, as division is monotone and correctly rounded
    labels = np.asarray(labels, dtype=np.int64)
    rows = np.arange(z.shape[0])
    logprob = z[rows, np.maximum(labels, 0)] - np.log(total)
    return confidence, np.where(labels >= 0, logprob, np.nan)


def ece(
    confidence: np.ndarray,
    correct: np.ndarray,
    num_bins: int = 15,
    weights: np.ndarray | None = None,
    groups: np.ndarray | None = None,
):
    """Expected calibration error: sum over non-empty equal-width bins of (n_b / N) |acc_b - conf_b|.

    Bins follow tf.histogram_fixed_width_bins on [0, 1]: bin = floor(conf * num_bins), clipped to the last bin.
    `weights` (B, N) gives B weighted versions at once (a bootstrap: how often each row was drawn), an array of B;
    with `groups` (the group of each row) the weights are per group, (B, groups), and rows of a group share one.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    n = confidence.size
    if n == 0:
        return math.nan if weights is None else np.full(len(weights), np.nan)
    bins = np.clip(np.floor(confidence * num_bins).astype(np.int64), 0, num_bins - 1)
    if weights is None:
        total = 0.0
        for b in range(num_bins):
            member = bins == b
            count = int(member.sum())
            if count:
                total += count / n * abs(correct[member].mean() - confidence[member].mean())
        return float(total)
    w = np.asarray(weights, dtype=np.float64)
    return ece_from_bins(w, *ece_bins(confidence, correct, w.shape[1], groups, num_bins))


def ece_bins(confidence, correct, k: int, groups=None, num_bins: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Per group and bin: the count of rows and the sum of (correct - confidence), what weighted ECEs are made of
    (computed once when a bootstrap evaluates ECE many times)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    bins = np.clip(np.floor(confidence * num_bins).astype(np.int64), 0, num_bins - 1)
    rows = np.arange(confidence.size) if groups is None else np.asarray(groups, dtype=np.int64)
    flat = rows * num_bins + bins
    counts = np.bincount(flat, minlength=k * num_bins).reshape(k, num_bins)
    gaps = np.bincount(flat, weights=correct - confidence, minlength=k * num_bins).reshape(k, num_bins)
    return counts.astype(np.float64), gaps


def ece_from_bins(weights: np.ndarray, counts: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """ECE of each weight row from `ece_bins`: sum over bins of |weighted gap| / weighted rows."""
    return np.abs(weights @ gaps).sum(axis=1) / np.maximum((weights @ counts).sum(axis=1), 1e-300)


def rms_calibration_error(confidence: np.ndarray, correct: np.ndarray, beta: int = 100) -> float:
    """hendrycks `calib_err(p='2')`: adaptive bins of `beta` sorted examples, the last absorbing the rest.

    Reproduces the reference exactly, including its quirk of never visiting the last bin. Fewer than `beta`
    examples give NaN (the reference fails there).
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    n = confidence.size
    if n < beta:
        return math.nan
    order = np.argsort(confidence)
    confidence, correct = confidence[order], correct[order]
    bins = [[i * beta, (i + 1) * beta] for i in range(n // beta)]
    bins[-1][1] = n
    total = 0.0
    for start, stop in bins[:-1]:
        diff = abs(np.nanmean(confidence[start:stop]) - np.nanmean(correct[start:stop]))
        total += (stop - start) / n * diff * diff
    return float(math.sqrt(total))


def nll(label_logprob: np.ndarray, weights: np.ndarray | None = None, groups: np.ndarray | None = None):
    """Mean negative log-likelihood of the true class, from each row's log-probability of its label
    (`weights` (B, N): B weighted means at once; with `groups`, weights per group as in `ece`)."""
    logprob = np.asarray(label_logprob, dtype=np.float64)
    if weights is None:
        return float(np.mean(-logprob)) if logprob.size else math.nan
    w = np.asarray(weights, dtype=np.float64)
    if groups is None:
        return (w @ -logprob) / np.maximum(w.sum(axis=1), 1e-300)
    groups = np.asarray(groups, dtype=np.int64)
    totals = np.bincount(groups, weights=-logprob, minlength=w.shape[1])
    counts = np.bincount(groups, minlength=w.shape[1]).astype(np.float64)
    return (w @ totals) / np.maximum(w @ counts, 1e-300)
