"""The latency loop (never the accuracy loop): synthetic input, warm-up by time, a timed run, statistics."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

UNSTABLE_CV = 0.10  # a coefficient of variation above this is reported as unstable


def percentile(values_ms: np.ndarray, q: float) -> float:
    """q-th percentile with linear interpolation between order statistics (numpy's default)."""
    values = np.sort(np.asarray(values_ms, dtype=np.float64))
    if values.size == 0:
        return math.nan
    rank = (values.size - 1) * q / 100.0
    lo, hi = math.floor(rank), math.ceil(rank)
    return float(values[lo] + (values[hi] - values[lo]) * (rank - lo))


@dataclass
class LatencyStats:
    """Per-iteration latencies of one (engine, precision, batch size) cell, in milliseconds."""

    batch_size: int
    samples_ms: np.ndarray
    wall_s: float

    @property
    def iterations(self) -> int:
        return int(self.samples_ms.size)

    def summary(self) -> dict[str, float]:
        s = self.samples_ms
        mean = float(s.mean())
        std = float(s.std(ddof=1)) if s.size > 1 else 0.0
        return {
            "latency_p50_ms": percentile(s, 50),
            "latency_p90_ms": percentile(s, 90),
            "latency_p99_ms": percentile(s, 99),
            "latency_mean_ms": mean,
            "latency_std_ms": std,
            "latency_min_ms": float(s.min()),
            "latency_max_ms": float(s.max()),
            "latency_cv": std / mean if mean > 0 else math.nan,
            # images per second over the timed wall clock (not batches per second)
            "throughput_ips": self.batch_size * self.iterations / self.wall_s if self.wall_s > 0 else math.nan,
        }

    @property
    def unstable(self) -> bool:
        return self.summary()["latency_cv"] > UNSTABLE_CV


def synthetic_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Normalised-image-like random input (never a dataset)."""
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def measure(
    step: Callable[[], float | None],
    batch_size: int,
    warmup_s: float = 1.0,
    duration_s: float = 3.0,
    min_iterations: int = 10,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencyStats:
    """Warm up for `warmup_s`, then run `step` for at least `duration_s` and `min_iterations`.

    `step` runs one inference and returns its own latency in ms when it can time itself more precisely (CUDA
    events), or None to be timed with the host clock around the call (the device synchronised inside).
    """
    end = clock() + warmup_s
    while clock() < end:
        step()
    samples = []
    start = clock()
    end = start + duration_s
    while clock() < end or len(samples) < min_iterations:
        t0 = clock()
        own = step()
        t1 = clock()
        samples.append(own if own is not None else (t1 - t0) * 1000.0)
    wall = clock() - start
    return LatencyStats(batch_size, np.asarray(samples, dtype=np.float64), wall)
