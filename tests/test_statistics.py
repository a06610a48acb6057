"""The intervals the verdict rests on, checked by simulation with fixed seeds: each covers the true difference about
95 % of the time (as an interval must), including where a plain Wald interval fails (no disagreement at all)."""

from __future__ import annotations

import numpy as np
import pytest

from benchbox.evaluation.estimates import Clusters, Sums, proportion
from benchbox.metrics.robustness import corruption_errors, mce
from benchbox.metrics.stats import bootstrap_weights, paired_interval, percentile_interval
from benchbox.reports.comparison import clustered_wilson


def _paired_coverage(n: int, p10: float, p01: float, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, [p10, p01, 1 - p10 - p01], size=reps)
    truth = p01 - p10
    hits = 0
    for n10, n01, _ in counts:
        lo, hi = paired_interval(int(n10), int(n01), n)
        hits += lo <= truth <= hi
    return hits / reps


@pytest.mark.parametrize(
    ("n", "p10", "p01"),
    [(300, 0.001, 0.001), (300, 0.02, 0.01), (1000, 0.01, 0.003), (5000, 0.005, 0.005), (100, 0.1, 0.05)],
)
def test_paired_top1_interval_covers_the_true_difference(n, p10, p01):
    """FP16 disagrees with FP32 on ~0.1 % of images and INT8 on ~1 %: the interval must hold in both regimes."""
    coverage = _paired_coverage(n, p10, p01, reps=4000, seed=n)
    assert coverage >= 0.935, coverage
    if n * (p10 + p01) >= 10:  # with a handful of expected disagreements the interval is cautious by design
        assert coverage <= 0.99, coverage


def test_paired_interval_is_not_degenerate_without_disagreement():
    """The plain Wald interval is [0, 0] when the two agree everywhere, so 10 images could 'prove' a 1-point limit."""
    lo, hi = paired_interval(0, 0, 10)
    assert hi - lo > 0.3  # ten images show little
    lo, hi = paired_interval(0, 0, 5000)
    assert hi < 0.0015  # 5,000 images without a disagreement do show a lot


def _c_like(rng, n_images: int, rates: np.ndarray, extra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image and variant errors of a baseline, and of a lower precision that flips `extra` of its rights."""
    base = rng.uniform(size=(n_images, rates.size)) < rates
    flips = rng.uniform(size=base.shape) < extra
    return base, base | flips


def test_mce_bootstrap_interval_covers_the_population_difference():
    """The paired bootstrap by image over every corruption and severity, as the cost table computes it."""
    corruptions, severities = ("fog", "snow", "frost"), range(1, 6)
    keys = [(c, s) for c in corruptions for s in severities]
    rates = np.array([0.2 + 0.08 * s for _, s in keys])
    extra = np.full(rates.size, 0.03)
    expected_a = {k: r for k, r in zip(keys, rates)}
    expected_b = {k: r + (1 - r) * e for k, r, e in zip(keys, rates, extra)}
    truth = mce(corruption_errors(expected_b))["mce_partial"] - mce(corruption_errors(expected_a))["mce_partial"]
    rng = np.random.default_rng(7)
    n, reps, covered = 200, 200, 0
    for rep in range(reps):
        a, b = _c_like(rng, n, rates, extra)
        clusters = Clusters(np.arange(n, dtype=np.uint64))
        sums = Sums(clusters, np.arange(n))
        num_a, num_b = (
            np.stack([sums.of(a[:, v]) for v in range(len(keys))], 1),
            np.stack([sums.of(b[:, v]) for v in range(len(keys))], 1),
        )
        draws = []
        for w in bootstrap_weights(n, 400, seed=rep):
            ea = (w @ num_a) / w.sum(1, keepdims=True)
            eb = (w @ num_b) / w.sum(1, keepdims=True)
            ma = mce(corruption_errors({k: ea[:, i] for i, k in enumerate(keys)}))["mce_partial"]
            mb = mce(corruption_errors({k: eb[:, i] for i, k in enumerate(keys)}))["mce_partial"]
            draws.append(mb - ma)
        lo, hi = percentile_interval(np.concatenate(draws))
        covered += lo <= truth <= hi
    assert 0.90 <= covered / reps <= 0.99, covered / reps


def test_pooled_agreement_interval_accounts_for_clusters():
    """Agreement pooled over an image's many corruptions: the images, not the predictions, are the sample."""
    rng = np.random.default_rng(11)
    n_images, per_image, reps, covered = 60, 20, 300, 0
    true_rate = 0.95
    for rep in range(reps):
        # images differ in how fragile they are: agreement is correlated within an image
        fragile = rng.beta(2, 38, size=n_images)  # mean 0.05 disagreement
        hits = (rng.uniform(size=(n_images, per_image)) > fragile[:, None]).ravel()
        clusters = Clusters(np.arange(n_images, dtype=np.uint64))
        sums = Sums(clusters, np.repeat(np.arange(n_images), per_image))
        estimate = proportion("agreement_top1", None, hits, sums)
        draws = np.concatenate([estimate.value(w) for w in bootstrap_weights(n_images, 400, seed=rep)])
        lo, hi = clustered_wilson(hits, draws, n_images)
        covered += lo <= 100 * true_rate <= hi
    assert 0.90 <= covered / reps <= 0.99, covered / reps
