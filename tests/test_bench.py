"""Latency statistics, bench records and that bench never touches a dataset."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchbox.bench import run_bench
from benchbox.options import BenchOptions, parse_options
from benchbox.runtime.timing import LatencyStats, measure, percentile
from benchbox.store import ResultStore


@pytest.mark.parametrize("q", [0, 10, 50, 90, 95, 99, 100])
def test_percentiles_match_numpy(q):
    rng = np.random.default_rng(q)
    for values in (rng.exponential(5.0, 997), np.array([3.0]), np.array([1.0, 2.0]), np.arange(100.0)):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_summary_statistics_on_known_samples():
    stats = LatencyStats(batch_size=8, samples_ms=np.array([10.0, 20.0, 30.0, 40.0]), wall_s=0.1)
    s = stats.summary()
    assert s["latency_p50_ms"] == 25.0 and s["latency_min_ms"] == 10.0 and s["latency_max_ms"] == 40.0
    assert s["latency_mean_ms"] == 25.0
    assert s["latency_std_ms"] == pytest.approx(np.std([10, 20, 30, 40], ddof=1))
    assert s["latency_cv"] == pytest.approx(s["latency_std_ms"] / 25.0)
    assert s["throughput_ips"] == pytest.approx(8 * 4 / 0.1)  # images, not batches
    assert stats.unstable


def test_measure_warms_up_by_time_and_honours_min_iterations():
    ticks = itertools.count()
    clock = lambda: next(ticks) * 0.001  # noqa: E731 - a fake clock: 1 ms per reading
    calls = []
    stats = measure(lambda: calls.append(1), batch_size=4, warmup_s=0.01, duration_s=0.0, min_iterations=7, clock=clock)
    assert stats.iterations == 7
    assert len(calls) > 7  # warm-up calls happened and were not counted
    own = measure(lambda: 2.5, batch_size=1, warmup_s=0.0, duration_s=0.0, min_iterations=3, clock=clock)
    assert own.samples_ms.tolist() == [2.5, 2.5, 2.5]  # a step that times itself (CUDA events) is trusted


def bench_options(**values):
    return parse_options(BenchOptions, values, "a test")


def test_bench_refuses_a_precision_the_artifact_lacks(tiny_artifact, tmp_path):
    from benchbox.errors import UserError

    with pytest.raises(UserError, match="--precisions int8-cpu"):
        run_bench(tiny_artifact, ResultStore(tmp_path / "s"), bench_options(precisions=["int8"]))


def test_bench_records_and_summaries(tiny_full_artifact, tmp_path, monkeypatch):
    import benchbox.datasets.loader as loader
    import benchbox.datasets.transforms as transforms

    def forbidden(*args, **kwargs):
        raise AssertionError("bench touched a dataset")

    monkeypatch.setattr(loader, "iterate_batches", forbidden)
    monkeypatch.setattr(transforms, "load_rgb", forbidden)
    options = bench_options(
        engines=["ort", "torch"],
        precisions=["fp32", "int8"],
        batch_sizes=[1, 2],
        warmup=0.05,
        duration=0.1,
        min_iterations=3,
        threads=1,
    )
    result = run_bench(tiny_full_artifact, ResultStore(tmp_path / "s"), options)
    cells = {(r.cell.engine, r.cell.precision, r.batch_size) for r in result.records if r.metric == "latency_p99_ms"}
    assert cells == {(e, p, b) for e, p in (("ort", "fp32"), ("ort", "int8"), ("torch", "fp32")) for b in (1, 2)}
    p50 = next(r for r in result.records if r.metric == "latency_p50_ms")
    assert p50.batch_size and p50.mode == "end-to-end" and p50.n >= 3 and p50.cell.variant is None
    assert p50.extra["env"]["threads"] == 1 and "model" in p50.extra["env"]["cpu"]
    ort_int8 = next(r for r in result.records if r.cell.precision == "int8" and r.cell.engine == "ort")
    assert ort_int8.extra["runner"]["artifact_precision"] == "int8-cpu"
    # INT8 in PyTorch eager is an explicit "unsupported" record, not a silent skip
    assert any(r.cell.engine == "torch" and r.metric == "unsupported" for r in result.records)
    offline = [r for r in result.records if r.metric == "offline_throughput_ips"]
    best = max(
        (r for r in result.records if r.metric == "throughput_ips" and r.cell.engine == "ort"), key=lambda r: r.value
    )
    assert any(r.cell.engine == "ort" and r.value == best.value for r in offline)
    assert any(r.metric == "singlestream_p90_ms" and r.batch_size == 1 for r in result.records)
    stored = ResultStore(tmp_path / "s").records(metric="throughput_ips")
    assert len(stored) == 6
    assert result.measured == 6


def test_bench_that_measures_nothing_exits_1(tiny_artifact, tmp_path):
    from conftest import run_cli

    proc = run_cli(
        "bench",
        tiny_artifact.directory,
        "--engine",
        "torch",
        "--precisions",
        "fp16",
        "--store",
        tmp_path / "s",
        "--duration",
        "0.1",
        "--warmup",
        "0",
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "only measured on CUDA" in proc.stdout
