"""Metrics as functions of resampling weights: what a paired comparison of two cells needs from a set's scorer.

A scorer's `estimates(data, clusters)` returns one `Estimate` per (variant, metric) of a cell. `Estimate.value()`
is the metric on the stored per-sample summaries (the number the eval recorded); `Estimate.value(W)` with W a
(B, K) matrix of bootstrap weights over the K clusters gives B resampled values. Clusters are what a paired
bootstrap resamples: an image (val, V2, Sketch, A, R, O), an image with all its corruptions and severities
(ImageNet-C: images x corruptions x severities resampled by image), a video with all its perturbations
(ImageNet-P). Both cells of a comparison use the same clusters and the same weights, so their difference is
paired on the same images. Plain accuracies also carry their per-sample hits for the exact paired test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchbox.records import Cell


class Clusters:
    """The resampling units of a comparison: the sorted distinct group ids of the baseline's samples."""

    def __init__(self, gids: np.ndarray) -> None:
        self.ids = np.unique(np.asarray(gids, dtype=np.uint64))
        self._seen: dict[bytes, np.ndarray] = {}  # the variants of a set, and its cells, repeat the same gids

    def __len__(self) -> int:
        return int(self.ids.size)

    def index(self, gids: np.ndarray) -> np.ndarray:
        """Cluster position of each gid (every gid of the comparison is one of the ids)."""
        import hashlib

        gids = np.ascontiguousarray(gids, dtype=np.uint64)
        token = hashlib.blake2b(gids.tobytes(), digest_size=16).digest()
        if token in self._seen:
            return self._seen[token]
        positions = np.searchsorted(self.ids, gids)
        if positions.size and (positions.max() >= self.ids.size or (self.ids[positions] != gids).any()):
            raise KeyError("a sample outside the comparison's clusters")
        self._seen[token] = positions.astype(np.int64)
        return self._seen[token]


@dataclass
class SetData:
    """One cell's stored per-sample summaries on one set: a loader per variant (None for sets without variants),
    the same for the sets it needs (val for ReaL, A/R, O, C), and what else its scorer recorded (the ReaL hits,
    a P baseline normaliser)."""

    cell: Cell
    loaders: dict[str | None, Callable[[], np.ndarray]]
    needed: dict[str, SetData] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def variants(self) -> list[str | None]:
        return list(self.loaders)

    def summary(self, variant: str | None = None) -> np.ndarray:
        return self.loaders[variant]()


@dataclass
class Estimate:
    """One metric of one cell, as a function of cluster weights (None: the plain value)."""

    metric: str
    variant: str | None
    n: int
    evaluate: Callable[[np.ndarray | None], Any]
    hits: np.ndarray | None = None  # per-sample 0/1 of a plain accuracy, in the pair's aligned order
    higher_is_better: bool = True
    unit: str = "%"
    bounds: tuple[float, float] | None = None  # range of one cluster's contribution, where the metric is a mean

    def value(self, weights: np.ndarray | None = None):
        return self.evaluate(weights)


def contributions(estimate: Estimate, clusters: int, block: int = 256) -> np.ndarray | None:
    """Per cluster, its share x_k of the metric when the metric is their plain mean (value(W) = W.x / W.1 for
    every weight row W), else None. What a confidence sequence observes one image (or video) at a time: x_k is
    the metric evaluated with all weight on cluster k, and the mean form is verified on random weights, so a
    metric that is not a mean over clusters (ECE, AUPR, a cluster missing from a variant) is never treated as one."""
    if estimate.bounds is None or clusters == 0:
        return None
    out = np.empty(clusters, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        for start in range(0, clusters, block):
            stop = min(start + block, clusters)
            weights = np.zeros((stop - start, clusters), dtype=np.float32)
            weights[np.arange(stop - start), np.arange(start, stop)] = 1.0
            out[start:stop] = np.asarray(estimate.value(weights), dtype=np.float64)
        if not np.isfinite(out).all():
            return None
        check = np.random.default_rng(clusters).random((2, clusters)).astype(np.float32)
        expected = check @ out / check.sum(axis=1)
        actual = np.asarray(estimate.value(check), dtype=np.float64)
    scale = max(1.0, float(np.abs(out).max()))
    if not np.allclose(actual, expected, rtol=1e-4, atol=1e-4 * scale):
        return None
    lo, hi = estimate.bounds
    return np.clip(out, lo, hi)


class Sums:
    """Per-cluster sums of per-sample quantities, so a weighted mean over samples is two dot products.

    When every cluster holds exactly one sample of the set (most sets), the denominator is the weight row sum."""

    def __init__(self, clusters: Clusters, sample_clusters: np.ndarray) -> None:
        self.k = len(clusters)
        self.positions = sample_clusters
        counts = np.bincount(sample_clusters, minlength=self.k)
        self.counts = counts.astype(np.float32)
        self.one_each = bool(counts.size) and bool((counts == 1).all())

    def of(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.positions, weights=np.asarray(values, dtype=np.float64), minlength=self.k)

    def mean(self, per_cluster: np.ndarray, weights: np.ndarray | None):
        """Weighted mean of the samples (per_cluster: this set's per-cluster sums of the quantity)."""
        if weights is None:
            return float(per_cluster.sum() / max(self.counts.sum(), 1e-300))
        num = weights @ per_cluster.astype(np.float32 if _exact(per_cluster) else np.float64)
        den = weights.sum(axis=1) if self.one_each else weights @ self.counts
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / den

    def expand(self, weights: np.ndarray | None) -> np.ndarray | None:
        """Cluster weights as per-sample weights (for metrics that are not means: ECE, AUPR)."""
        return None if weights is None else weights[:, self.positions]


def _exact(values: np.ndarray) -> bool:
    """Counts small enough for float32 sums to be exact (0/1 hits and the like)."""
    return bool(np.all(values == np.round(values))) and float(np.abs(values).max(initial=0)) < 2**20


def proportion(
    metric: str, variant: str | None, hits: np.ndarray, sums: Sums, higher_is_better: bool = True
) -> Estimate:
    """A percentage of samples (top-1, top-5, agreement): 100 x weighted mean of 0/1 hits."""
    hits = np.asarray(hits, dtype=bool)
    per_cluster = sums.of(hits)

    def evaluate(weights):
        if weights is None:
            return 100.0 * float(hits.sum()) / hits.size if hits.size else float("nan")
        return 100.0 * sums.mean(per_cluster, weights)

    return Estimate(metric, variant, int(hits.size), evaluate, hits, higher_is_better, bounds=(0.0, 100.0))


def mean_of(
    metric: str,
    variant: str | None,
    values: np.ndarray,
    sums: Sums,
    scale: float = 1.0,
    unit: str = "",
    higher_is_better: bool = False,
) -> Estimate:
    """A mean over samples (NLL): scale x weighted mean."""
    values = np.asarray(values, dtype=np.float64)
    per_cluster = sums.of(values)

    def evaluate(weights):
        if weights is None:
            return scale * float(np.mean(values)) if values.size else float("nan")
        return scale * sums.mean(per_cluster, weights)

    return Estimate(metric, variant, int(values.size), evaluate, None, higher_is_better, unit)
