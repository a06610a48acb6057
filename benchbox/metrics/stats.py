"""Confidence intervals and paired tests for accuracy-type numbers."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion, as fractions in [0, 1]."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired_difference(correct_a: np.ndarray, correct_b: np.ndarray, z: float = Z95) -> dict[str, float]:
    """Accuracy difference b - a on the same images with a paired (Wald) 95 % interval, in fractions.

    With discordant counts n10 (a right, b wrong) and n01 (a wrong, b right):
    diff = (n01 - n10) / n and var = ((n01 + n10) - (n01 - n10)^2 / n) / n^2.
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    n = int(a.size)
    n10 = int(np.sum(a & ~b))
    n01 = int(np.sum(~a & b))
    if n == 0:
        return {"diff": math.nan, "lo": math.nan, "hi": math.nan, "n10": 0, "n01": 0, "n": 0}
    diff = (n01 - n10) / n
    var = ((n01 + n10) - (n01 - n10) ** 2 / n) / (n * n)
    half = z * math.sqrt(max(var, 0.0))
    return {"diff": diff, "lo": diff - half, "hi": diff + half, "n10": n10, "n01": n01, "n": n}


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
