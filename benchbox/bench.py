"""`benchbox bench`: latency and throughput per engine x precision x batch size, on synthetic input."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from benchbox.artifact import Artifact, content_key
from benchbox.environment import fingerprint
from benchbox.errors import UnsupportedPrecision, UserError
from benchbox.options import BenchOptions
from benchbox.records import Cell, Record, failure_record
from benchbox.runtime.timing import UNSTABLE_CV, measure, synthetic_input
from benchbox.store import ResultStore


@dataclass
class BenchResult:
    records: list[Record] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    measured: int = 0  # cells that produced numbers (0 with failures: the command exits 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": [r.to_json() for r in self.records],
            "environment": self.environment,
            "warnings": self.warnings,
            "failures": self.failures,
        }


def run_bench(
    artifact: Artifact, store: ResultStore, options: BenchOptions, on_progress=None, skip_done: bool = False
) -> BenchResult:
    """Measure every requested cell; a cell that cannot run is recorded with its error and the rest go on."""
    from benchbox.runtime import check_engine_device, create_runner

    for engine in options.engines:
        check_engine_device(engine, options.device)
    artifact.require_files(options.engines, options.precisions, options.device)
    from benchbox.options import thread_warning

    check_batch_memory(artifact, options.batch_sizes)
    result = BenchResult(environment=fingerprint(options.threads, options.device))
    if thread_warning(options.threads):
        result.warnings.append(thread_warning(options.threads))
    env_id = content_key(result.environment)
    for engine in options.engines:
        for precision in options.precisions:
            cell = artifact.cell(engine, options.device, precision)
            try:
                runner = create_runner(
                    engine,
                    artifact,
                    precision,
                    options.device,
                    threads=options.threads,
                    cuda_backend=options.cuda_backend,
                    max_batch=max(options.batch_sizes),
                )
            except UnsupportedPrecision as exc:
                _record_failure(store, result, cell, exc.message, options.mode, unsupported=True)
                continue
            cell = artifact.cell(engine, getattr(runner, "device", options.device), precision)  # where it runs
            try:
                for batch_size in options.batch_sizes:
                    try:
                        _bench_cell(
                            artifact, store, options, runner, cell, batch_size, env_id, result, on_progress, skip_done
                        )
                    except KeyboardInterrupt:
                        raise
                    except BaseException as exc:  # recorded with its batch size; the other cells go on
                        why = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
                        _record_failure(store, result, cell, why, options.mode, env_id, batch_size=batch_size)
            finally:
                runner.deactivate()
        for summary in summary_records(result.records, artifact.model, engine, options.device):
            key = content_key({"summary": summary.to_json(), "env": env_id})
            run_id = store.start_run(key, "latency-summary", summary.cell, mode=summary.mode)
            store.finish_run(run_id, [summary])
            result.records.append(summary)
    return result


def check_batch_memory(artifact: Artifact, batch_sizes: list[int]) -> None:
    """Refuse, before any work, a batch whose input alone cannot fit in this machine's memory (a mistyped 1e9)."""
    import os

    per_image = 4 * int(np.prod(artifact.data_config.input_size))
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on Linux
        return
    for size in batch_sizes:
        if size * per_image > memory:
            raise UserError(
                f"Batch size {size} needs {size * per_image / 2**30:.0f} GiB for its input alone; this machine has "
                f"{memory / 2**30:.0f} GiB.",
                f"Use a batch size of at most {memory // per_image} (typical: 1, 8, 32, 128).",
            )


def _record_failure(
    store, result, cell: Cell, message: str, mode: str, env_id: str = "", unsupported=False, batch_size=None
) -> None:
    """A failed latency cell, with the identity its success would have (batch size included), so the next
    success of that cell supersedes it."""
    record = replace(failure_record(cell, message, unsupported=unsupported), batch_size=batch_size, mode=mode)
    run_id = store.start_run(
        content_key(
            {
                "bench": [cell.model, cell.model_id, cell.engine, cell.device, cell.precision],
                "batch_size": batch_size,
                "mode": mode,
                "env": env_id,
                "why": message,
            }
        ),
        "latency",
        cell,
        batch_size=batch_size,
        mode=mode,
    )
    store.fail_run(run_id, message, [record])
    result.records.append(record)
    result.failures.append(f"{cell.column}{f' batch {batch_size}' if batch_size else ''}: {message}")


def _bench_cell(artifact, store, options, runner, cell, batch_size, env_id, result, on_progress, skip_done) -> None:
    key = content_key(
        {
            "cell": [cell.model, cell.model_id, cell.engine, cell.device, cell.precision],
            "batch_size": batch_size,
            "mode": options.mode,
            "artifact": artifact.key_for(cell.engine, cell.device, cell.precision),
            "threads": options.threads,
            "env": env_id,
            "duration": options.duration,
        }
    )
    existing = store.find_run(key)
    if skip_done and existing is not None and existing["status"] == "done":
        result.records += store.records_for_run(existing["id"])
        result.measured += 1
        return
    runner.activate()
    run_id = store.start_run(key, "latency", cell, {"batch_size": batch_size}, batch_size=batch_size, mode=options.mode)
    batch = synthetic_input((batch_size, *runner.input_shape))
    step = runner.timed_step(batch, options.mode)
    label = f"bench {cell.column} batch {batch_size}"
    if on_progress:
        on_progress(label, 0, 1)
    stats = measure(step, batch_size, options.warmup, options.duration, options.min_iterations)
    if on_progress:
        on_progress(label, 1, 1)
    summary = stats.summary()
    flags = ("unstable",) if summary["latency_cv"] > UNSTABLE_CV else ()
    extra = {"iterations": stats.iterations, "env": result.environment, "runner": runner.details}
    records = [
        Record(
            cell, metric, value, stats.iterations, batch_size=batch_size, mode=options.mode, flags=flags, extra=extra
        )
        for metric, value in summary.items()
    ]
    if flags:
        result.warnings.append(
            f"{cell.column} batch {batch_size}: latency CV {summary['latency_cv']:.1%} > {UNSTABLE_CV:.0%}: the "
            "machine was noisy; treat these numbers with care or re-run."
        )
    store.finish_run(run_id, records, {"batch_size": batch_size, "env": result.environment})
    result.records += records
    result.measured += 1


def summary_records(records: list[Record], model: str, engine: str, device: str) -> list[Record]:
    """MLPerf-style summaries per precision: SingleStream (batch 1, p90) and Offline (best images/s)."""
    out = []
    mine = [r for r in records if r.cell.engine == engine and r.batch_size]
    for precision in sorted({r.cell.precision for r in mine}):
        cell = replace(next(r.cell for r in mine if r.cell.precision == precision), testset=None, variant=None)
        rows = [r for r in mine if r.cell.precision == precision]
        p90 = [r for r in rows if r.metric == "latency_p90_ms" and r.batch_size == 1]
        if p90:
            out.append(Record(cell, "singlestream_p90_ms", p90[0].value, p90[0].n, batch_size=1, mode=p90[0].mode))
        throughput = [r for r in rows if r.metric == "throughput_ips" and r.value is not None]
        if throughput:
            best = max(throughput, key=lambda r: r.value)
            out.append(
                Record(cell, "offline_throughput_ips", best.value, best.n, batch_size=best.batch_size, mode=best.mode)
            )
    return out
