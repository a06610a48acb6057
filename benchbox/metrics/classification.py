"""Top-k (exact tie order), accuracy with 95 % intervals, ReaL accuracy, agreement."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchbox.metrics.stats import wilson_interval


def topk_indices(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest logits per row, best first; ties go to the lower index (torch.topk, a stable sort).

    A partial sort finds the k candidates; only rows with a tie across the k-th place take a full stable sort,
    so the result equals `argsort(-logits, kind='stable')[:, :k]` exactly, at a fraction of the cost.
    """
    logits = np.asarray(logits)
    rows, classes = logits.shape
    k = min(k, classes)
    if rows == 0 or k == 0:
        return np.zeros((rows, k), np.int64)
    if classes <= 4 * k:
        return np.argsort(-logits, axis=1, kind="stable")[:, :k]
    candidates = np.sort(np.argpartition(-logits, k - 1, axis=1)[:, :k], axis=1)  # by index: stable ties
    values = np.take_along_axis(logits, candidates, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    top = np.take_along_axis(candidates, order, axis=1)
    kth = values.min(axis=1, keepdims=True)
    tied = (logits >= kth).sum(axis=1) != k  # another value equals the k-th: the partial sort may have picked it
    if tied.any():
        top[tied] = np.argsort(-logits[tied], axis=1, kind="stable")[:, :k]
    return top


def correct_at_k(topk: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean per sample: is the label among the first k of its top-k list (-1 entries never match)."""
    topk = np.asarray(topk)
    return np.any(topk[:, :k] == np.asarray(labels).reshape(-1, 1), axis=1)


def accuracy(correct: np.ndarray) -> dict[str, float]:
    """Accuracy in percent with its Wilson 95 % interval, plus n."""
    correct = np.asarray(correct, dtype=bool)
    n = int(correct.size)
    hits = int(correct.sum())
    lo, hi = wilson_interval(hits, n)
    return {
        "value": 100.0 * hits / n if n else float("nan"),
        "ci95": [100.0 * lo, 100.0 * hi],
        "n": n,
        "hits": hits,
    }


def real_correct(top1: np.ndarray, real_lists: Sequence[Sequence[int]]) -> np.ndarray:
    """ReaL: per image with a non-empty label list, is the top-1 prediction in it (empty lists are excluded)."""
    keep = [i for i, labels in enumerate(real_lists) if len(labels)]
    return np.asarray([int(top1[i]) in real_lists[i] for i in keep], dtype=bool)


def agreement_top1(top1_reference: np.ndarray, top1_other: np.ndarray) -> np.ndarray:
    """Boolean per image: do two engines/precisions predict the same top-1 class (-1, a NaN output, never agrees)."""
    reference, other = np.asarray(top1_reference), np.asarray(top1_other)
    return (reference == other) & (reference >= 0)
