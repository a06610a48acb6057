"""Top-k accuracy (with 95 % intervals), masked logits for 200-class subsets, ReaL accuracy, agreement."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchbox.metrics.stats import wilson_interval


def topk_indices(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest logits per row, best first (ties broken by lower index, like torch.topk)."""
    logits = np.asarray(logits)
    k = min(k, logits.shape[1])
    order = np.argsort(-logits, axis=1, kind="stable")
    return order[:, :k]


def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean per sample: is the label among the top-k predictions."""
    top = topk_indices(logits, k)
    return np.any(top == np.asarray(labels).reshape(-1, 1), axis=1)


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


def mask_logits(logits: np.ndarray, labels: np.ndarray, class_indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Restrict 1000-way logits to a class subset (A/R/O); labels become positions in the subset (-1 if absent)."""
    class_indices = np.asarray(class_indices, dtype=np.int64)
    position = np.full(int(max(class_indices.max() + 1, np.max(labels, initial=0) + 1)), -1, dtype=np.int64)
    position[class_indices] = np.arange(class_indices.size)
    labels = np.asarray(labels, dtype=np.int64)
    return np.asarray(logits)[:, class_indices], position[labels]


def real_correct(top1: np.ndarray, real_lists: Sequence[Sequence[int]]) -> np.ndarray:
    """ReaL: per image with a non-empty label list, is the top-1 prediction in it (empty lists are excluded)."""
    keep = [i for i, labels in enumerate(real_lists) if len(labels)]
    return np.asarray([int(top1[i]) in real_lists[i] for i in keep], dtype=bool)


def agreement_top1(top1_reference: np.ndarray, top1_other: np.ndarray) -> np.ndarray:
    """Boolean per image: do two engines/precisions predict the same top-1 class."""
    return np.asarray(top1_reference) == np.asarray(top1_other)
