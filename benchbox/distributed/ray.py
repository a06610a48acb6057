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
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchbox.distributed.settings import RaySettings
from benchbox.distributed.units import artifact_payload, run_bench_unit, run_unit
from benchbox.errors import UserError
from benchbox.records import IDENTITY

EXTRA_HINT = 'Install the extra on the driver and on every node: pip install -e ".[ray]"'


def import_ray():
    """The ray module, or a UserError naming the extra."""
    try:
        import ray
    except ImportError as exc:
        raise UserError("Running a plan on a Ray cluster needs Ray, which is not installed here.", EXTRA_HINT) from exc
    return ray


def connect(address: str):
    """Join the cluster at `address` (`local`: start one in this process). Returns (ray, whether we joined)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    hint = (
        "Start the cluster first: `ray start --head` on the head node, `ray start --address HEAD:6379` on each "
        "worker node; then --ray auto on the head (or --ray HEAD:6379). --ray local runs on this machine alone. "
        "A cluster with token authentication (the default for local clusters since Ray 2.59) needs "
        "RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN, or ~/.ray/auth_token) on this machine too."
    )
    _check_reachable(address, hint)
    try:
        if address == "local":
            ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        else:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise UserError(f"Cannot join the Ray cluster at {address!r}: {exc}", hint) from exc
    return ray, True


def _check_reachable(address: str, hint: str) -> None:
    """A HOST:PORT nobody listens on is one line now; Ray itself would retry it for many minutes."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        if address not in ("auto", "local"):
            raise UserError(f"--ray {address!r} is not auto, local or HOST:PORT.", hint)
        return
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise UserError(f"No Ray cluster answers at {address} ({exc.strerror or exc}).", hint) from exc


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
        self._artifact = self._options_used = self._store = None
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
    def submit(self, work: list, artifact, options, store) -> None:
        """Every unit of every variant an eval will visit, minus what the store already holds.

        `work`: (TestSet, SampleSet, [CellJob]) per variant, as benchbox.evaluation.evaluator.planned_work makes it;
        the executor needs the jobs' keys and cells, the artifact to ship and the options the units run with."""
        self._artifact, self._options_used, self._store = artifact, options, store
        self.started = self.started or time.monotonic()
        for spec, samples, jobs in work:
            self._submit_variant(spec, samples, jobs)

    def _submit_variant(self, spec, samples, jobs) -> None:
        options, store = self._options_used, self._store
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
                "cell": [getattr(job.cell, k) for k in IDENTITY],
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
                "videos": spec.videos,
            }
            remote = self._unit.options(**self._options(job.cell.device))
            artifact = self._artifact_ref(self._artifact)
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
        from benchbox.evaluation.predict import assemble, resume

        spec = TESTSETS[samples.key.testset]
        active = resume(store, jobs)
        if active and any(job.key not in self._shards for job in active):
            self._submit_variant(spec, samples, [job for job in active if job.key not in self._shards])
        total = len(samples.samples)
        for job in active:
            workers: dict[str, dict[str, Any]] = {}
            seconds = 0.0
            for shard in self._shards.pop(job.key, []):
                if job.error is not None:
                    self.ray.cancel(shard.ref, force=True)
                    continue
                result = self._result(shard)
                if "error" in result:
                    job.error = RuntimeError(result["error"])
                    continue
                store.save_chunk(job.key, shard.start, shard.stop, result["arrays"])
                worker, seconds = result["worker"], seconds + result["seconds"]
                workers.setdefault(f"{worker['host']}:{worker['env_id']}", worker)
                self.images += shard.stop - shard.start
                if progress:
                    progress(shard.stop, total)
            if job.error is None:
                assemble(store, job, spec.videos)
                job.info["ray"] = {"workers": list(workers.values()), "unit_seconds": round(seconds, 3)}

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
