"""Shared helpers: build the lite0 artifact once, and time two loops interleaved so drift hits both alike."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def lite0_artifact(precisions: list[str], workdir: Path | None = None):
    from benchbox.build import build_artifacts
    from benchbox.datasets.synthetic import write_image_folder

    workdir = workdir or Path(tempfile.gettempdir()) / "benchbox-benchmarks"
    calib = workdir / "calib"
    if not calib.is_dir():
        write_image_folder(calib, ["n01440764", "n02085620", "n02123045", "n04037443"], per_class=8, seed=7)
    from benchbox.options import ExportOptions, parse_options

    options = parse_options(
        ExportOptions,
        {"precisions": precisions, "calib_data": calib, "calib_size": 32, "calib_method": "minmax"},
        "a benchmark",
    )
    return build_artifacts("efficientnet_lite0", workdir / "lite0", options)


def images_per_second(step: Callable[[], None], batch: int, seconds: float) -> float:
    step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return batch * count / (time.perf_counter() - start)


def interleaved(
    a: Callable[[], None], b: Callable[[], None], batch: int, rounds: int = 5, seconds: float = 3.0
) -> tuple[float, float, float]:
    """Median images/s of a and b over alternating rounds, and the median of the per-round ratios a / b."""
    rates_a, rates_b = [], []
    for _ in range(rounds):
        rates_a.append(images_per_second(a, batch, seconds))
        rates_b.append(images_per_second(b, batch, seconds))
    ratios = [x / y for x, y in zip(rates_a, rates_b)]
    return statistics.median(rates_a), statistics.median(rates_b), statistics.median(ratios)


def throughput_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    return parser.parse_args()
