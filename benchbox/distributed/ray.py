"""A plan's evaluation and benchmarks on a Ray cluster, with exactly the records of a local run.

The driver exports, reads every set variant and cuts each cell's remaining samples into work units (model,
engine, precision, device, variant, shard of `shard_size` samples, a multiple of the batch size so every batch is
the one a local run would form). Workers return the compact per-sample summaries of their shard and where they
ran; the driver alone writes the store: it saves each shard as a prediction chunk in sample order, and from
there the local code scores, so records cannot differ by construction and a store resumes across local and
cluster runs (same keys, same chunks).

Artifacts travel through Ray's object store by content hash: a model's ONNX files are tens of megabytes, so one
copy per model held by Ray (spilled to disk if need be, fetched once per node) spares the cluster a second shared
mount; each node keeps them under its temporary folder by that hash, and a TensorRT engine is built and cached
there, on the GPU that runs it. Data sets are too large to move: every node must see them at the same path.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbox.errors import UserError, printable

EXTRA_HINT = 'Install the extra on the driver and on every node: pip install -e ".[ray]"'
DEVICES = ("cpu", "cuda", "tensorrt")
TARGET_KEYS = ("num_cpus", "num_gpus", "resources")


def import_ray():
    """The ray module, or a UserError naming the extra."""
    try:
        import ray
    except ImportError as exc:
        raise UserError("Running a plan on a Ray cluster needs Ray, which is not installed here.", EXTRA_HINT) from exc
    return ray


@dataclass(frozen=True)
class RaySettings:
    """How to reach the cluster and how to cut and place the work (the plan's [ray] table, --ray on top)."""

    address: str
    shard_size: int = 2048
    max_retries: int = 3
    cpus_per_unit: float = 1.0
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resources(self, device: str) -> dict[str, Any]:
        """Ray resource requests of a unit on `device`: the plan's target for it, or one CPU (and one GPU)."""
        request: dict[str, Any] = {"num_cpus": self.cpus_per_unit}
        if device != "cpu":
            request["num_gpus"] = 1
        request.update(self.targets.get(device, {}))
        return request


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
        raise UserError(f"{name} = {value!r} in {where}: expected a number of at least 0.")
    return value


def _target(device: str, table: Any, where: str) -> dict[str, Any]:
    where = f"[ray.targets.{device}] of {where}"
    if device not in DEVICES:
        raise UserError(f"Unknown device target {device!r} in {where}.", f"Targets are devices: {', '.join(DEVICES)}.")
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table, e.g. num_gpus = 1, resources = {{ a100 = 1 }}.")
    target: dict[str, Any] = {}
    for key, value in table.items():
        if key not in TARGET_KEYS:
            from benchbox.options import did_you_mean

            raise UserError(f"Unknown option {key!r} in {where}.{did_you_mean(key, list(TARGET_KEYS))}")
        if key == "resources":
            if not isinstance(value, dict) or not value:
                raise UserError(f"resources in {where} must be a table of Ray custom resources, e.g. {{ a100 = 1 }}.")
            target[key] = {str(k): _number(v, where, f"resources.{k}") for k, v in value.items()}
        else:
            target[key] = _number(value, where, key)
    return target


def ray_settings(table: dict[str, Any], where: str, address: str | None = None) -> RaySettings | None:
    """Validate a plan's [ray] table; None when neither it nor --ray names a cluster (the run stays local)."""
    from benchbox.options import RayOptions, parse_options

    targets = table.get("targets", {})
    if not isinstance(targets, dict):
        raise UserError(f"[ray.targets] of {where} must be a table of device targets.")
    options = parse_options(
        RayOptions, {k: v for k, v in table.items() if k != "targets"}, f"[ray] of {where}", plan=True
    )
    parsed = {device: _target(device, value, where) for device, value in targets.items()}
    address = address or options.address
    if not address:
        return None
    return RaySettings(address, options.shard_size, options.max_retries, options.cpus_per_unit, parsed)


def connect(address: str):
    """Join the cluster at `address` (`local`: start one in this process). Returns (ray, whether we joined)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    hint = (
        "Start the cluster first: `ray start --head` on the head node, `ray start --address HEAD:6379` on each "
        "worker node; then --ray auto on the head (or --ray HEAD:6379). --ray local runs on this machine alone."
    )
    try:
        if address == "local":
            ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        else:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise UserError(f"Cannot join the Ray cluster at {address!r}: {exc}", hint) from exc
    return ray, True


# -- the worker side -------------------------------------------------------------------------------
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


def where_am_i(device: str, threads: int | None) -> dict[str, Any]:
    """This worker: host, Ray node, process and the environment fingerprint of the numbers it makes."""
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
    if not os.path.exists(first):
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


# -- the driver side -------------------------------------------------------------------------------
@dataclass
class _Shard:
    start: int
    stop: int
    ref: Any


class RayExecutor:
    """Submits a plan's units to the cluster and hands their results to the local evaluator, in sample order."""

    def __init__(
        self,
        settings: RaySettings,
        on_progress: Callable[[str, int, int], None] | None = None,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.ray, self._joined = connect(settings.address)
        self.settings = settings
        self.on_progress = on_progress
        self.echo = echo
        self._unit = self.ray.remote(run_unit)
        self._bench = self.ray.remote(run_bench_unit)
        self._shards: dict[str, list[_Shard]] = {}
        self._artifacts: dict[str, Any] = {}
        self._evaluator = None
        self.units_total = self.units_done = self.images = 0
        self.started: float | None = None

    def _artifact_ref(self, artifact):
        key = str(artifact.directory.resolve())
        if key not in self._artifacts:
            self._artifacts[key] = self.ray.put(artifact_payload(artifact))
        return self._artifacts[key]

    def _options(self, device: str) -> dict[str, Any]:
        request = self.settings.resources(device)
        extra = request.pop("resources", None)
        return {**request, **({"resources": extra} if extra else {}), "max_retries": self.settings.max_retries}

    # -- eval ------------------------------------------------------------------------------------
    def submit(self, evaluator, plan, cells) -> None:
        """Every unit of every variant the evaluator will visit, minus what the store already holds."""
        from benchbox.evaluation.planning import limit_samples

        self._evaluator = evaluator
        self.started = self.started or time.monotonic()
        for spec, variants in plan:
            for source in variants:
                try:
                    samples = limit_samples(source.read(), evaluator.options.limit)
                except UserError:
                    continue  # the evaluator reports it when it reaches the variant
                if samples.samples:
                    self._submit_variant(spec, samples, evaluator.variant_jobs(spec, samples, cells))

    def _submit_variant(self, spec, samples, jobs) -> None:
        evaluator = self._evaluator
        options, store = evaluator.options, evaluator.store
        size = math.ceil(self.settings.shard_size / options.batch_size) * options.batch_size
        total = len(samples.samples)
        samples_ref = None
        for job in jobs:
            if options.recompute:
                store.discard_predictions(job.key)
            elif store.load_final(job.key) is not None:
                continue
            position, _ = store.chunk_files(job.key)
            samples_ref = samples_ref or self.ray.put(samples)
            unit = {
                "key": job.key,
                "cell": [
                    getattr(job.cell, k) for k in ("model", "engine", "device", "precision", "testset", "variant")
                ],
                "engine": job.cell.engine,
                "precision": job.cell.precision,
                "device": job.cell.device,
                "threads": options.threads,  # None: as a local run on the worker's node (see local_threads)
                "workers": options.workers,
                "cuda_backend": options.cuda_backend,
                "batch_size": options.batch_size,
                "groups": list(job.groups),
                "keep_logits": job.keep_logits,
                "resize": spec.resize,
                "videos": spec.layout == "p",
            }
            remote = self._unit.options(**self._options(job.cell.device))
            artifact = self._artifact_ref(evaluator.artifact)
            shards = []
            for start in range(position, total, size):
                stop = min(start + size, total)
                shards.append(
                    _Shard(start, stop, remote.remote({**unit, "start": start, "stop": stop}, samples_ref, artifact))
                )
            self._shards[job.key] = shards
            self.units_total += len(shards)

    def collect(self, store, jobs, samples, progress: Callable[[int, int], None] | None) -> None:
        """Fill each job's result (or error) from its units, saving every shard as a chunk in sample order."""
        from benchbox.datasets.catalog import TESTSETS
        from benchbox.evaluation.predict import _resume, assemble

        spec = TESTSETS[samples.key.testset]
        active = _resume(store, jobs)
        if active and any(job.key not in self._shards for job in active):
            self._submit_variant(spec, samples, [job for job in active if job.key not in self._shards])
        total = len(samples.samples)
        for job in active:
            workers: dict[str, dict[str, Any]] = {}
            for shard in self._shards.pop(job.key, []):
                if job.error is not None:
                    self.ray.cancel(shard.ref, force=True)
                    continue
                result = self._result(shard)
                if "error" in result:
                    job.error = RuntimeError(result["error"])
                    continue
                store.save_chunk(job.key, shard.start, shard.stop, result["arrays"])
                worker = result["worker"]
                workers.setdefault(f"{worker['host']}:{worker['env_id']}", worker)
                self.images += shard.stop - shard.start
                if progress:
                    progress(shard.stop, total)
            if job.error is None:
                assemble(store, job, spec.layout == "p")
                job.info["ray"] = {"workers": list(workers.values())}

    def _result(self, shard: _Shard) -> dict[str, Any]:
        try:
            result = self.ray.get(shard.ref)
        except self.ray.exceptions.RayError as exc:  # its worker died more than max_retries times
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            attempts = self.settings.max_retries + 1
            result = {"error": f"samples {shard.start}-{shard.stop} failed on the cluster {attempts} times: {first}"}
        self.units_done += 1
        if self.on_progress:
            self.on_progress("cluster units", self.units_done, self.units_total)
        return result

    # -- bench -----------------------------------------------------------------------------------
    def bench(self, artifact, store, options) -> list[str]:
        """Run a model's latency cells on a worker of their device target; import the runs into the store."""
        done = store.export_runs(("latency",))
        remote = self._bench.options(**self._options(options.device))
        try:
            result = self.ray.get(remote.remote(self._artifact_ref(artifact), options, done))
        except self.ray.exceptions.RayError as exc:
            return [f"bench {artifact.model}: failed on the cluster: {str(exc).strip().splitlines()[0]}"]
        if "error" in result:
            return [f"bench {artifact.model}: {result['error']}"]
        store.import_runs(result["runs"])
        return result["failures"]

    def close(self) -> None:
        """Cancel what is still queued (a Ctrl-C) and leave the cluster; the store keeps every finished shard."""
        for shards in self._shards.values():
            for shard in shards:
                with contextlib.suppress(Exception):  # already finished or gone
                    self.ray.cancel(shard.ref, force=True)
        self._shards.clear()
        if self.units_done and self.started:
            seconds = max(time.monotonic() - self.started, 1e-9)
            self.echo(
                f"ray: {self.units_done}/{self.units_total} units, {self.images} images at "
                f"{self.images / seconds:.0f} images/s across the cluster"
            )
        if self._joined:
            self.ray.shutdown()
