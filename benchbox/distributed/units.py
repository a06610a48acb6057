"""The worker side of a cluster run: one work unit (a cell's shard of a set variant, or a model's latency
cells) on whichever node Ray placed it, with the artifact written once per node by its content hash.

Nothing here imports Ray at module level: the functions run inside Ray workers, and tests call them directly."""

from __future__ import annotations

import functools
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from benchbox.errors import UserError, printable

_RUNNERS: dict[tuple, Any] = {}
KEEP_RUNNERS = 4


def artifact_payload(artifact) -> dict[str, Any]:
    """An artifact as plain data for the object store: manifest and model files, named by a content hash."""
    from benchbox.artifact import content_key

    files = {}
    for entry in artifact.manifest.get("files", {}).values():
        for name in (entry["path"], entry["path"] + ".data"):  # .data: weights stored outside a large ONNX file
            if (artifact.directory / name).is_file():
                files[name] = (artifact.directory / name).read_bytes()
    return {"key": content_key({"manifest": artifact.manifest}), "manifest": artifact.manifest, "files": files}


def materialize(payload: dict[str, Any]):
    """The artifact on this node, written once under the temporary folder by its content hash."""
    import json
    import shutil

    from benchbox.artifact import MANIFEST_NAME, Artifact

    base = Path(os.environ.get("BENCHBOX_RAY_ARTIFACTS") or Path(tempfile.gettempdir()) / "benchbox-ray-artifacts")
    folder = base / payload["key"]
    if not (folder / MANIFEST_NAME).is_file():
        partial = base / f".{payload['key']}.{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name, data in payload["files"].items():
            (partial / name).write_bytes(data)
        (partial / MANIFEST_NAME).write_text(json.dumps(payload["manifest"]))
        try:
            os.replace(partial, folder)
        except OSError:  # another unit on this node got there first
            shutil.rmtree(partial, ignore_errors=True)
    return Artifact.load(folder)


def _runner(artifact, unit: dict[str, Any]):
    from benchbox.runtime import create_runner

    key = (str(artifact.directory), unit["engine"], unit["precision"], unit["device"], unit["threads"])
    if key not in _RUNNERS:
        while len(_RUNNERS) >= KEEP_RUNNERS:
            _RUNNERS.pop(next(iter(_RUNNERS))).deactivate()
        runner = create_runner(
            unit["engine"],
            artifact,
            unit["precision"],
            unit["device"],
            threads=unit["threads"],
            cuda_backend=unit["cuda_backend"],
            max_batch=unit["batch_size"],
            pipeline=True,
        )
        _RUNNERS[key] = runner.activate()
    return _RUNNERS[key]


def local_threads() -> int:
    """The thread count a local run would use on this node. Ray caps a worker's OpenMP threads at its task's
    CPUs, and PyTorch's CPU results change in the last bits with the thread count: a unit asks for the local
    default explicitly so its numbers equal a local run's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.cache
def where_am_i(device: str, threads: int | None) -> dict[str, Any]:
    """This worker: host, Ray node, process and the environment fingerprint of the numbers it makes (once per
    worker process and device: the fingerprint reads package metadata and may ask the GPU driver)."""
    from benchbox.artifact import content_key
    from benchbox.environment import fingerprint

    env = fingerprint(threads, device)
    node = None
    try:
        import ray

        node = ray.get_runtime_context().get_node_id()
    except Exception:  # outside a Ray worker (tests call units directly)
        pass
    return {"host": socket.gethostname(), "node": node, "pid": os.getpid(), "env_id": content_key(env), "env": env}


def run_unit(unit: dict[str, Any], samples, payload: dict[str, Any]) -> dict[str, Any]:
    """One work unit on a worker: predictions for samples[start:stop] of one cell, as one store chunk.

    A mistake (data not visible here, a model that fails) comes back as {"error": ...}: retrying it elsewhere
    would fail the same way. A worker that dies is Ray's to retry."""
    from benchbox.datasets.transforms import EvalTransform
    from benchbox.evaluation.predict import CellJob, predict_shard
    from benchbox.records import Cell

    host = socket.gethostname()
    first = samples.samples[unit["start"]].path
    from benchbox.datasets.sources import source_exists

    if not source_exists(first):
        root = printable(samples.root)
        return {"error": f"{printable(first)} is not visible on node {host}: every node must see {root} at that path"}
    unit = {**unit, "threads": unit["threads"] or local_threads()}
    try:
        started = time.perf_counter()
        artifact = materialize(payload)
        runner = _runner(artifact, unit)
        job = CellJob(Cell(*unit["cell"]), unit["key"], lambda: runner, tuple(unit["groups"]), unit["keep_logits"])
        transform = EvalTransform(artifact.data_config, resize=unit["resize"])
        arrays = predict_shard(
            job, samples, transform, unit["batch_size"], unit["workers"], unit["start"], unit["stop"], unit["videos"]
        )
        seconds = time.perf_counter() - started
    except Exception as exc:  # reported with the node; the driver records the failed cell
        message = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        return {"error": f"{message} (on node {host})"}
    return {"arrays": arrays, "seconds": seconds, "worker": where_am_i(unit["device"], unit["threads"])}


def run_bench_unit(payload: dict[str, Any], options, done: list[dict[str, Any]]) -> dict[str, Any]:
    """A model's latency cells on a worker of their device target, in a scratch store seeded with the driver's
    finished latency runs (so a resumed plan skips them); returns every run it holds."""
    import shutil

    from benchbox.bench import run_bench
    from benchbox.store import ResultStore

    folder = Path(tempfile.mkdtemp(prefix="benchbox-bench-"))
    try:
        store = ResultStore(folder)
        store.import_runs(done)
        result = run_bench(materialize(payload), store, options, skip_done=True)
        runs = store.export_runs(("latency", "latency-summary"), done_only=False)
        store.close()
        return {"runs": runs, "failures": result.failures, "worker": where_am_i(options.device, options.threads)}
    except UserError as exc:
        return {"error": f"{exc.message} (on node {socket.gethostname()})"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
