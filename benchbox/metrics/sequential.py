"""Anytime-valid confidence sequences for the mean of bounded observations (`--until-decided`).

A fixed-n 95 % interval checked after every batch is wrong more than 5 % of the time: the more often one looks,
the likelier some look strays beyond the limit. A confidence sequence (CS) is a sequence of intervals that covers
the true mean at every time at once with probability >= 1 - alpha, so a run may stop at whatever round its gates
are decided and the interval it stops with is still a valid (1 - alpha) statement.

The one used is the hedged betting CS of Waudby-Smith & Ramdas, "Estimating means of bounded random variables by
betting" (J. R. Stat. Soc. B 86(1), 2024), in its sampling-without-replacement form (their section 6): the images
of a test set are a finite population of N visited in a uniformly random order, and the mean over all N (the
full-pass figure) is what the CS covers. For each candidate mean m, two gamblers bet that the next observation
lies above or below its conditional mean under m, with the predictable plug-in bet sizes of the paper (they
shrink with the running variance, so two precisions that agree on 99.9 % of images are told apart quickly); m
leaves the CS once their hedged wealth reaches 1/alpha (Ville's inequality), and never returns (the running
intersection). Assumptions: observations in [0, 1] after scaling by known bounds; the order is a uniformly random
permutation of the population (benchbox.evaluation.planning.visit_order); nothing else (no normality). Candidate
means are a grid (dense around the running mean); the interval returned spans the grid points not rejected and
one grid step beyond on each side, so rounding can only widen it.
"""

from __future__ import annotations

import math

import numpy as np

BET_CAP = 0.75  # the paper's c: a gambler stakes at most c / (its distance to the edge) of its wealth
BLOCK = 1024  # observations processed at once (memory: grid x BLOCK)


def confidence_sequence(x: np.ndarray, alpha: float, population: int | None = None) -> tuple[float, float]:
    """(low, high) of the (1 - alpha) CS for the mean of `x` in [0, 1], observed in this order, after all of x.

    `population`: N, the size of the finite set the observations are drawn from without replacement (None: an
    infinite population, i.e. i.i.d. draws)."""
    x = np.asarray(x, dtype=np.float64)
    t = x.size
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha}")
    if t == 0:
        return (0.0, 1.0)
    if x.min() < 0 or x.max() > 1:
        raise ValueError("observations must lie in [0, 1]")
    if population is not None and population < t:
        raise ValueError(f"{t} observations from a population of {population}")
    return confidence_path(x, alpha, population, [t])[0]


def confidence_path(x: np.ndarray, alpha: float, population: int | None, times: list[int]) -> list[tuple[float, float]]:
    """The CS after each of `times` observations of `x` (one pass: how a run checking after every round sees it)."""
    x = np.asarray(x, dtype=np.float64)
    grid = _grid(float(x.mean()) if x.size else 0.5)
    first = _first_rejections(x, alpha, population, grid)
    out = []
    for t in times:
        kept = first > t
        if t <= 0:
            out.append((0.0, 1.0))
            continue
        if not kept.any():  # cannot happen for a valid population; widen rather than claim an empty interval
            out.append((0.0, 1.0))
            continue
        lo, hi = np.flatnonzero(kept)[[0, -1]]
        low = grid[lo - 1] if lo > 0 else 0.0
        high = grid[hi + 1] if hi + 1 < grid.size else 1.0
        out.append((float(low), float(high)))
    return out


def _grid(centre: float) -> np.ndarray:
    """Candidate means: every 1/1000 of [0, 1], and every 1/25000 within 0.03 of the mean."""
    coarse = np.linspace(0.0, 1.0, 1001)
    fine = np.linspace(max(0.0, centre - 0.03), min(1.0, centre + 0.03), 1501)
    return np.unique(np.concatenate([coarse, fine]))


def _bet_sizes(x: np.ndarray, alpha: float) -> np.ndarray:
    """The predictable plug-in bet size of each observation (from the ones before it only)."""
    i = np.arange(1, x.size + 1, dtype=np.float64)
    mean = (0.5 + np.cumsum(x)) / (i + 1)
    variance = (0.25 + np.cumsum((x - mean) ** 2)) / (i + 1)
    variance_before = np.r_[0.25, variance[:-1]]
    return np.sqrt(2.0 * math.log(2.0 / alpha) / (variance_before * i * np.log1p(i)))


def _first_rejections(x: np.ndarray, alpha: float, population: int | None, grid: np.ndarray) -> np.ndarray:
    """Per candidate mean, the first time (1-based) its hedged wealth reached 1/alpha; len(x) + 1 if never."""
    lam = _bet_sizes(x, alpha)
    threshold = math.log(1.0 / alpha)
    m = grid[:, None]
    log_up = np.zeros(grid.size)
    log_down = np.zeros(grid.size)
    first = np.full(grid.size, x.size + 1, dtype=np.int64)
    before = 0.0  # sum of the observations before the block
    for start in range(0, x.size, BLOCK):
        xs, ls = x[start : start + BLOCK], lam[start : start + BLOCK]
        i = np.arange(start + 1, start + 1 + xs.size, dtype=np.float64)
        if population is None:
            mu = np.broadcast_to(m, (grid.size, xs.size))
        else:  # the mean of what is left, were the population's mean m
            previous = before + np.cumsum(xs) - xs
            mu = (population * m - previous) / (population - i + 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            impossible = (mu < 0.0) | (mu > 1.0)
            inside = np.clip(mu, 1e-12, 1.0 - 1e-12)
            step_up = np.log1p(np.minimum(ls, BET_CAP / inside) * (xs - inside))
            step_down = np.log1p(-np.minimum(ls, BET_CAP / (1.0 - inside)) * (xs - inside))
        path_up = log_up[:, None] + np.cumsum(step_up, axis=1)
        path_down = log_down[:, None] + np.cumsum(step_down, axis=1)
        hedged = np.logaddexp(path_up, path_down) + math.log(0.5)
        out = (hedged >= threshold) | impossible
        hit = out.any(axis=1)
        when = start + 1 + np.argmax(out, axis=1)
        first = np.where(hit & (first > x.size), when, first)
        log_up, log_down = path_up[:, -1], path_down[:, -1]
        before += float(xs.sum())
    return first


def difference_sequence(
    differences: np.ndarray, bound: float, alpha: float, population: int | None = None
) -> tuple[float, float]:
    """(low, high) of the CS for the mean of paired differences known to lie in [-bound, bound]."""
    if bound <= 0 or not math.isfinite(bound):
        raise ValueError(f"a positive finite bound is needed, not {bound}")
    d = np.asarray(differences, dtype=np.float64)
    scaled = np.clip((d + bound) / (2.0 * bound), 0.0, 1.0)
    low, high = confidence_sequence(scaled, alpha, population)
    return (2.0 * bound * low - bound, 2.0 * bound * high - bound)


def range_sequence(values: np.ndarray, low: float, high: float, alpha: float, population: int | None = None):
    """(low, high) of the CS for the mean of observations known to lie in [low, high]."""
    if not high > low:
        raise ValueError(f"an empty range [{low}, {high}]")
    scaled = np.clip((np.asarray(values, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    lo, hi = confidence_sequence(scaled, alpha, population)
    return (low + (high - low) * lo, low + (high - low) * hi)
