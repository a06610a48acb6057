"""Confidence intervals, paired tests and the paired bootstrap.

- `wilson_interval`: a binomial proportion (accuracy, agreement).
- `paired_difference`: the difference of two accuracies on the same images, with Bonett and Price's adjusted
  Wald interval for paired proportions (Bonett & Price 2012, "Adjusted Wald confidence interval for a difference
  of binomial proportions based on paired data", J. Educ. Behav. Stat. 37(4)). Unlike the plain Wald interval
  it does not collapse to [0, 0] when the two agree on every image: 300 images without a disagreement still
  leave about +-0.9 points, which is what deciding a 1-point limit on 300 images honestly takes.
- `mcnemar_exact`: the exact two-sided McNemar p-value.
- `bootstrap_weights` / `percentile_interval`: the paired (cluster) bootstrap every other metric uses: the same
  resampled clusters (images, or videos) for both cells, the same fixed seed every time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 1000  # percentile intervals: Efron and Tibshirani's minimum; a fixed seed makes them exact
BOOTSTRAP_SEED = 20261203
BLOCK = 200  # resamples drawn at once (bounded memory: 200 x clusters float32)


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion, as fractions in [0, 1] (n may be an effective size)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact ends: no 1e-15 from rounding
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return (lo, hi)


def paired_interval(n10: int, n01: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Bonett-Price adjusted Wald interval for b - a on n paired samples (fractions), clipped to [-1, 1].

    n10: a right and b wrong; n01: a wrong and b right. Adds one to each discordant cell and two to n."""
    if n <= 0:
        return (math.nan, math.nan)
    p10, p01 = (n10 + 1) / (n + 2), (n01 + 1) / (n + 2)
    centre = p01 - p10
    half = z * math.sqrt(max((p10 + p01) - centre * centre, 0.0) / (n + 2))
    return (max(-1.0, centre - half), min(1.0, centre + half))


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, z: float = Z95) -> dict[str, float]:
    """Accuracy difference b - a on the same images (fractions): (n01 - n10) / n with the Bonett-Price interval.

    With discordant counts n10 (a right, b wrong) and n01 (a wrong, b right)."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    n = int(a.size)
    n10 = int(np.sum(a & ~b))
    n01 = int(np.sum(~a & b))
    if n == 0:
        return {"diff": math.nan, "lo": math.nan, "hi": math.nan, "n10": 0, "n01": 0, "n": 0}
    lo, hi = paired_interval(n10, n01, n, z)
    return {"diff": (n01 - n10) / n, "lo": lo, "hi": hi, "n10": n10, "n01": n01, "n": n}


def mcnemar_exact(n10: int, n01: int) -> float:
    """Two-sided exact McNemar p-value: 2 * P(X <= min(n10, n01)), X ~ Binomial(n10 + n01, 1/2), capped at 1."""
    m = n10 + n01
    if m == 0:
        return 1.0
    k = min(n10, n01)
    if m <= 2000:  # exact integers
        term, tail = 1, 1
        for i in range(k):
            term = term * (m - i) // (i + 1)
            tail += term
        return min(1.0, 2 * tail / 2**m)
    # log space for large counts: log C(m, i) via lgamma, summed with log-sum-exp
    logs = [math.lgamma(m + 1) - math.lgamma(i + 1) - math.lgamma(m - i + 1) for i in range(k + 1)]
    top = max(logs)
    log_tail = top + math.log(sum(math.exp(v - top) for v in logs))
    return min(1.0, math.exp(math.log(2.0) + log_tail - m * math.log(2.0)))


def bootstrap_weights(
    clusters: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED, block: int = BLOCK
) -> Iterator[np.ndarray]:
    """Blocks of bootstrap weights, each (b, clusters) float32: how often each cluster is drawn in a resample of
    `clusters` draws with replacement (rows sum to `clusters`). The same seed gives the same resamples, so a
    paired comparison, a report and a check all see the same intervals."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        draws = rng.integers(0, clusters, size=(b, clusters), dtype=np.int64)
        draws += (np.arange(b, dtype=np.int64) * clusters)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * clusters).reshape(b, clusters)
        done += b
        yield counts.astype(np.float32)


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central `level` interval of bootstrap values (NaN resamples, e.g. an empty bin set, are dropped)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def bootstrap_p_value(values: np.ndarray, null: float = 0.0) -> float:
    """Two-sided bootstrap p-value of `null` for a difference: twice the smaller tail share, capped at 1."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    below, above = np.mean(values <= null), np.mean(values >= null)
    return float(min(1.0, 2.0 * min(below, above)))


def samples_to_decide(estimate: float, lo: float, hi: float, limit: float, n: int) -> int | None:
    """About how many images would make an interval of [lo, hi] (width ~ 1/sqrt(n)) clear `limit` on the side of
    its estimate; None when the estimate sits on the limit (no sample size decides it)."""
    if not all(math.isfinite(v) for v in (estimate, lo, hi, limit)) or n <= 0:
        return None
    margin = abs(limit - estimate)
    half = max(hi - estimate, estimate - lo)
    if margin == 0 or half <= 0:
        return None
    return int(math.ceil(n * (half / margin) ** 2))
