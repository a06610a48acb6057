"""`benchbox bench`: latency and throughput per engine x precision x batch size, on synthetic input."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchbox.environment import fingerprint
from benchbox.errors import UserError
from benchbox.exporters.manifest import Artifact, content_key
from benchbox.runtime import create_runner
from benchbox.runtime.base import UnsupportedPrecision
from benchbox.runtime.timing import UNSTABLE_CV, measure, synthetic_input
from benchbox.store import ResultStore, make_record


@dataclass
class BenchOptions:
    engines: list[str] = field(default_factory=lambda: ["ort"])
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    batch_sizes: list[int] = field(default_factory=lambda: [1, 8, 32])
    warmup_s: float = 1.0
    duration_s: float = 3.0
    min_iterations: int = 10
    threads: int | None = None
    device: str = "cpu"
    mode: str = "end-to-end"  # or "compute" (inputs already on the device; GPU runners only)
    cuda_backend: str = "cuda-python"
    skip_done: bool = False


@dataclass
class BenchResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "environment": self.environment,
            "warnings": self.warnings,
            "failures": self.failures,
        }


def run_bench(artifact: Artifact, store: ResultStore, options: BenchOptions, on_progress=None) -> BenchResult:
    """Measure every requested cell; a cell that cannot run is recorded with its error and the rest go on."""
    from benchbox.runtime import require_artifact_files

    require_artifact_files(artifact, options.engines, options.precisions, options.device)
    result = BenchResult(environment=fingerprint(options.threads, options.device))
    env_id = content_key(result.environment)
    for engine in options.engines:
        for precision in options.precisions:
            try:
                runner = create_runner(
                    engine,
                    artifact,
                    precision,
                    options.device,
                    threads=options.threads,
                    cuda_backend=options.cuda_backend,
                )
            except UnsupportedPrecision as exc:
                cell = _cell(artifact, engine, precision, options)
                record = make_record(cell, "unsupported", None, 0, error=exc.message)
                run_id = store.start_run(content_key({**cell, "bench": "unsupported"}), "latency", cell)
                store.fail_run(run_id, exc.message, [record])
                result.records.append(record)
                result.failures.append(f"{engine}/{precision}: {exc.message}")
                continue
            try:
                runner.activate()
                for batch_size in options.batch_sizes:
                    _bench_cell(
                        artifact, store, options, runner, engine, precision, batch_size, env_id, result, on_progress
                    )
            except UserError:
                raise
            except Exception as exc:  # recorded, and the other cells go on
                message = f"{type(exc).__name__}: {exc}"
                cell = _cell(artifact, engine, precision, options)
                run_id = store.start_run(content_key({**cell, "bench": "failed", "env": env_id}), "latency", cell)
                store.fail_run(run_id, message, [make_record(cell, "error", None, 0, error=message)])
                result.failures.append(f"{engine}/{precision}: {message}")
            finally:
                runner.deactivate()
        result.records += summary_records(result.records, artifact.model, engine, options.device)
    return result


def _cell(artifact: Artifact, engine: str, precision: str, options: BenchOptions) -> dict[str, Any]:
    return {
        "model": artifact.model,
        "engine": engine,
        "device": options.device,
        "precision": precision,
        "testset": None,
        "variant": options.mode,
    }


def _bench_cell(artifact, store, options, runner, engine, precision, batch_size, env_id, result, on_progress):
    cell = _cell(artifact, engine, precision, options)
    key = content_key(
        {
            **cell,
            "batch_size": batch_size,
            "artifact": artifact.manifest.get("export_key"),
            "threads": options.threads,
            "env": env_id,
            "duration": options.duration_s,
        }
    )
    existing = store.find_run(key)
    if options.skip_done and existing is not None and existing["status"] == "done":
        result.records += store.records_for_run(existing["id"])
        return
    run_id = store.start_run(key, "latency", cell, {"batch_size": batch_size})
    batch = synthetic_input((batch_size, *runner.input_shape))
    step = runner.timed_step(batch, options.mode)
    if on_progress:
        on_progress(f"bench {engine}/{precision} batch {batch_size}", 0, 1)
    stats = measure(step, batch_size, options.warmup_s, options.duration_s, options.min_iterations)
    if on_progress:
        on_progress(f"bench {engine}/{precision} batch {batch_size}", 1, 1)
    summary = stats.summary()
    flags = ["unstable"] if summary["latency_cv"] > UNSTABLE_CV else None
    extras = {
        "batch_size": batch_size,
        "iterations": stats.iterations,
        "env": result.environment,
        "runner": runner.details,
        "mode": options.mode,
        "flags": flags,
    }
    records = [make_record(cell, metric, value, stats.iterations, **extras) for metric, value in summary.items()]
    if flags:
        result.warnings.append(
            f"{engine}/{precision} batch {batch_size}: latency CV {summary['latency_cv']:.1%} > "
            f"{UNSTABLE_CV:.0%}: the machine was noisy; treat these numbers with care or re-run."
        )
    store.finish_run(run_id, records, {"batch_size": batch_size, "env": result.environment})
    result.records += records


def summary_records(records: list[dict[str, Any]], model: str, engine: str, device: str) -> list[dict[str, Any]]:
    """MLPerf-style summaries per precision: SingleStream (batch 1, p90) and Offline (best images/s)."""
    out = []
    precisions = {r["precision"] for r in records if r.get("engine") == engine and r.get("batch_size")}
    for precision in sorted(precisions):
        cell = {
            "model": model,
            "engine": engine,
            "device": device,
            "precision": precision,
            "testset": None,
            "variant": "mlperf",
        }
        mine = [r for r in records if r.get("engine") == engine and r["precision"] == precision]
        p90 = [r for r in mine if r["metric"] == "latency_p90_ms" and r.get("batch_size") == 1]
        if p90:
            out.append(make_record(cell, "singlestream_p90_ms", p90[0]["value"], p90[0]["n"], batch_size=1))
        throughput = [r for r in mine if r["metric"] == "throughput_ips" and r["value"] is not None]
        if throughput:
            best = max(throughput, key=lambda r: r["value"])
            out.append(
                make_record(cell, "offline_throughput_ips", best["value"], best["n"], batch_size=best["batch_size"])
            )
    return out
