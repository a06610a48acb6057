"""`benchbox eval` orchestration: cells x sets, resume, failures recorded; the scoring lives in scoring/.

Input mistakes (missing sets, bad label files, an artifact without the asked-for file) abort before any work.
Then, set by set (sets another one needs come first) and variant by variant, one decode feeds every cell that
still needs the variant; as soon as a variant is complete each cell's records are computed, stored and the
predictions let go, so memory does not grow with the set. A cell that fails is recorded and the run goes on.

Comparisons between cells (precision against precision, engine against engine) are not made here: they are
computed by benchbox.reports.comparison from the stored per-sample summaries of the cells that are current when
`report` or `check` runs, so a comparison can never outlive a file it compared.

Long because the order of the steps (predict, score, aggregate) is the one thing to read here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbox.artifact import Artifact, content_key
from benchbox.datasets.catalog import TESTSETS, TestSet, with_needs
from benchbox.datasets.readers import SampleSet, VariantSource
from benchbox.datasets.transforms import EvalTransform
from benchbox.errors import UnsupportedPrecision, UserError, printable
from benchbox.evaluation import predict, summaries
from benchbox.evaluation.flags import calibration_ids, calibration_overlap, flag, overlap_warning
from benchbox.evaluation.planning import (
    check_scoring_inputs,
    identity_digest,
    limit_samples,
    plan_sets,
    samples_digest,
    set_digest,
    visit_order,
)
from benchbox.evaluation.scoring import ScoreContext, scorer_for
from benchbox.records import Cell, Record, SetKey, failure_record
from benchbox.store import ResultStore
from benchbox.vocabulary import GateStatus

ProgressFn = Callable[[str, int, int], None]


@dataclass
class EvalResult:
    records: list[Record] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreadable: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    missing_sets: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    cache: dict[str, int] = field(default_factory=dict)
    sequential: dict[str, dict[str, Any]] = field(default_factory=dict)  # set -> where --until-decided stopped

    def to_json(self) -> dict[str, Any]:
        return {
            "records": [r.to_json() for r in self.records],
            "unreadable": {k: [list(x) for x in v] for k, v in self.unreadable.items()},
            "problems": self.problems,
            "warnings": self.warnings,
            "missing_sets": self.missing_sets,
            "failures": self.failures,
            "sequential": self.sequential,
        }


@dataclass
class _CellRunner:
    """One (engine, precision) of the run: its runner (activated on first use) and whether it broke."""

    cell: Cell
    runner: Any
    broken: str | None = None

    def activate(self):
        return self.runner.activate()


class Evaluator:
    """Runs the eval options against a store. `run` checks the inputs, then orchestrates."""

    def __init__(
        self,
        artifact: Artifact,
        store: ResultStore,
        options,
        on_progress: ProgressFn | None = None,
        executor: Any = None,
    ):
        """`executor` runs the predictions elsewhere (benchbox.distributed.ray); None runs them here."""
        self.artifact = artifact
        self.executor = executor
        self.store = store
        self.options = options
        self.on_progress = on_progress
        self.result = EvalResult()
        # (engine, precision, set) -> (samples, predictions, identity digest) of sets another set reads
        self._needed: dict[tuple[str, str, str], tuple[SampleSet, predict.CellPredictions, str]] = {}
        self._overlap_ids: dict[str, set[int]] = {}
        self._caches: list = []  # preprocessed-image caches used, trimmed once at the end
        self._policy = None  # what --until-decided decides
        self._sequential_sets = 0

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> EvalResult:
        from benchbox.options import thread_warning
        from benchbox.runtime import check_engine_device

        options = self.options
        for engine in options.engines:
            check_engine_device(engine, options.device)
        if thread_warning(options.threads):
            self.result.warnings.append(thread_warning(options.threads))
        check_option_files(options)
        self.artifact.require_files(options.engines, options.precisions, options.device)
        plan = plan_sets(options, self.result.missing_sets, self.result.problems)
        check_scoring_inputs(plan, options, self.store)
        cells = self._create_cells(plan)
        self._prepare_sequential(plan, cells)
        self._record_artifact()
        self._overlap_ids = calibration_ids(self.artifact, options.engines, options.precisions, options.device)
        if self.executor is not None:
            self.executor.submit(self.planned_work(plan, cells), self.artifact, options, self.store)
        from benchbox.datasets.loader import DecoderWarnings

        try:
            with DecoderWarnings() as decoder:
                for spec, variants in plan:
                    self._evaluate_set(spec, variants, cells)
        finally:
            for cell_runner in cells:
                cell_runner.runner.deactivate()
        self.result.problems += decoder.summary()
        if self._caches:
            self._caches[-1].trim()  # once per eval (it walks the whole cache), not once per variant
        return self.result

    def _cell(self, engine: str, precision: str, device: str | None = None) -> Cell:
        return self.artifact.cell(engine, device or self.options.device, precision)

    def _create_cells(self, plan) -> list[_CellRunner]:
        """One runner per (engine, precision); pairs the engine cannot run become explicit records. A cell's
        device is where its runner runs (TensorRT: the GPU), never merely what the option said."""
        from benchbox.runtime import create_runner

        options = self.options
        cells = []
        for engine in options.engines:
            for precision in options.precisions:
                try:
                    runner = create_runner(
                        engine,
                        self.artifact,
                        precision,
                        options.device,
                        threads=options.threads,
                        cuda_backend=options.cuda_backend,
                        max_batch=options.batch_size,
                        pipeline=True,
                    )
                except UnsupportedPrecision as exc:
                    self._record_unsupported(self._cell(engine, precision), exc.message, plan)
                    continue
                device = _run_device(runner, self.options.device)
                cells.append(_CellRunner(self._cell(engine, precision, device), runner))
                warning = _s8s8_warning(engine, device, precision)
                if warning and warning not in self.result.warnings:
                    self.result.warnings.append(warning)
        return cells

    def _record_unsupported(self, cell: Cell, message: str, plan) -> None:
        for spec, _ in plan:
            if spec.name not in self.options.sets.names:
                continue
            at_set = cell.at(SetKey(spec.name))
            record = failure_record(at_set, message, unsupported=True)
            run_id = self.store.start_run(content_key({"unsupported": at_set, "why": message}), "cell", at_set)
            self.store.fail_run(run_id, message, [record])
            self.result.records.append(record)
        self.result.failures.append(f"{cell.column}: {message}")

    def _record_artifact(self) -> None:
        """Export parity of every precision file, as records the readiness check can gate on."""
        marks = {"source_kind": self.artifact.source_kind, "targets_trt": self._targets_trt()}
        for precision, entry in self.artifact.manifest.get("files", {}).items():
            parity = entry.get("parity") or {}
            cell = self.artifact.cell("export", "cpu", precision)
            records = [
                Record(
                    cell,
                    f"parity_{metric}",
                    parity[metric],
                    parity.get("n"),
                    reference=parity.get("reference"),
                    extra={"source": parity.get("source"), "sha256": entry["sha256"], **marks},
                )
                for metric in ("max_abs_diff", "top1_agreement")
                if metric in parity
            ]
            note = (entry.get("calibration") or {}).get("note")
            if note:
                records.append(Record(cell, "calibration_note", None, error=None, extra={"note": note, **marks}))
            if not records and precision == "fp32":  # a user's ONNX file: no PyTorch model to compare with
                records = [
                    Record(cell, "parity_status", None, error="not applicable: the source is an ONNX file", extra=marks)
                ]
            key = content_key({"artifact": self.artifact.manifest.get("export_key"), "file": entry["sha256"]})
            run_id = self.store.start_run(key, "artifact", cell, reference=parity.get("reference"))
            info = {"directory": str(self.artifact.directory), "sha256": entry["sha256"], "path": entry["path"]}
            self.store.finish_run(run_id, records, info)

    def _targets_trt(self) -> bool:
        """Whether this deployment targets TensorRT: built engines, --engine trt, ORT's TensorRT provider."""
        return bool(
            self.artifact.manifest.get("engines")
            or "trt" in self.options.engines
            or str(self.options.device).startswith("tensorrt")
            or getattr(self.options, "targets_trt", False)
        )

    # -- one set ---------------------------------------------------------------------------------
    def _evaluate_set(self, spec: TestSet, variants: list[VariantSource], cells: list[_CellRunner]) -> None:
        scorer = scorer_for(spec)
        per_cell: dict[Cell, list[Record]] = {c.cell: [] for c in cells}
        keys: dict[Cell, list[str]] = {c.cell: [] for c in cells}
        flags: set[str] = set()
        stop = None
        if self._is_sequential(spec, cells):  # every variant advances together, round by round
            read = [s for s in (self._read(source) for source in variants) if s is not None]
            stop = self._until_decided(spec, read, cells) if read else None
            sources = iter(read)
        else:
            sources = (self._read(source) for source in variants)
        for samples in sources:
            if samples is None:
                continue
            flags |= set(samples.data_flags)
            jobs = self._predict_variant(spec, samples, cells, stop.n if stop else None, fresh=stop is None)
            self._score_variant(spec, scorer, samples, jobs, per_cell, keys, stop)
        if hasattr(scorer, "set_records"):
            self._score_set(spec, scorer, cells, per_cell, keys, tuple(sorted(flags)), stop)

    # -- --until-decided -------------------------------------------------------------------------
    def _prepare_sequential(self, plan, cells: list[_CellRunner]) -> None:
        if not getattr(self.options, "until_decided", False):
            return
        from benchbox.reports.policy import load_policy

        if self.executor is not None:
            raise UserError("--until-decided runs on this machine only.", "Drop --ray, or drop --until-decided.")
        self._policy = load_policy(self.options.policy)
        self._sequential_sets = sum(1 for spec, _ in plan if self._is_sequential(spec, cells))
        if not self._sequential_sets:
            self.result.warnings.append(
                f"--until-decided: no set can stop early (it needs {self._policy.baseline_precision} and a lower "
                "precision on the same engine in this run, and sets no other set reads): every set runs to its end"
            )

    def _is_sequential(self, spec: TestSet, cells: list[_CellRunner]) -> bool:
        """A set stops when decided only if this run pairs the baseline with another precision on one engine,
        and no other set of the run reads it (val beside ReaL or C is scored in full)."""
        if self._policy is None or spec.name not in self.options.sets.names:
            return False
        if spec.scored_from_needed or self._is_needed(spec.name):
            return False
        base = self._policy.baseline_precision
        engines = {c.cell.engine for c in cells if c.cell.precision == base}
        return any(c.cell.engine in engines and c.cell.precision != base for c in cells)

    def _until_decided(self, spec: TestSet, read: list[SampleSet], cells: list[_CellRunner]):
        """Score rounds of growing prefixes until the set's gates are decided; the Stop, or None when the set
        ran to its end (its records are then a full pass's)."""
        import numpy as np

        from benchbox.evaluation import sequential
        from benchbox.evaluation.planning import ORDER_SEED

        policy = self._policy
        total = max(len(s.samples) for s in read)
        population = int(np.unique(np.concatenate([s.group_ids for s in read])).size)
        alpha_set = policy.alpha / max(1, self._sequential_sets)
        alpha_gate, gates, n, first = None, [], total, True
        for n in sequential.round_sizes(total, self.options.batch_size, spec.videos):
            members, memory = {}, {}
            for samples in read:
                jobs = self._predict_variant(spec, samples, cells, n, fresh=first)
                if any(job.error is not None or job.result is None for job in jobs):
                    return None  # a broken cell: the set runs as a full pass, where its failure is recorded
                for job in jobs:
                    self._prefix_member(spec, job, samples, n, population, members, memory)
            first = False
            if alpha_gate is None:  # the gate x subject pairs of the set, to split alpha over
                gates = sequential.decide_prefix(spec, members, memory, policy, alpha_set)
                alpha_gate = alpha_set / max(1, sequential.counted(gates))
            gates = sequential.decide_prefix(spec, members, memory, policy, alpha_gate)
            if sequential.decided(gates):
                break
        if not gates:
            self.result.warnings.append(
                f"--until-decided: no gate of the policy concerns {spec.name}: it stopped after its first round "
                f"({min(n, total)} of {total}); run without --until-decided for its full figures"
            )
        undecided = [g.subject for g in gates if g.status == GateStatus.UNDECIDED]
        self.result.sequential[spec.name] = {
            "n": min(n, total),
            "N": total,
            "decided": not undecided,
            "alpha_gate": alpha_gate,
            "gates": {g.status: sum(1 for x in gates if x.status == g.status) for g in gates},
        }
        if n >= total:
            return None
        return sequential.Stop(n, population, alpha_gate, ORDER_SEED, [g.to_json() for g in gates])

    def _prefix_member(self, spec, job, samples, n: int, population: int, members: dict, memory: dict) -> None:
        """One cell's prefix on one variant, as the comparison reads it (plus the sets it needs, scored in full)."""
        from benchbox.evaluation import sequential
        from benchbox.evaluation.planning import ORDER_SEED

        cell = job.cell
        key = f"{job.key}@{n}"
        memory[key] = job.result.summary
        info = {"n": n, "N": population, "seed": ORDER_SEED, "rule": sequential.RULE, "alpha_gate": None}
        identity = identity_digest(job.result.summary)
        ident = (cell.model, cell.model_id, cell.engine, cell.device, cell.precision, spec.name)
        member = members.setdefault(ident, {"runs": {}, "needed": {}, "extra": {}})
        member["runs"][samples.variant] = sequential.prefix_run(key, identity, n, samples.data_flags, info)
        for name in spec.needs:
            found = self._needed.get((cell.engine, cell.precision, name))
            if found is not None:
                needed_key = f"needed:{cell.engine}/{cell.precision}/{name}"
                memory[needed_key] = found[1].summary
                member["needed"][name] = {None: sequential.prefix_run(needed_key, found[2], 0, (), None)}
        if spec.name == "p" and self.options.p_baseline and "p_baseline" not in member["extra"]:
            from benchbox.evaluation.scoring.perturbation import load_baseline

            member["extra"]["p_baseline"] = load_baseline(self.options, self.store, cell.engine)

    def _read(self, source: VariantSource) -> SampleSet | None:
        try:
            samples = visit_order(limit_samples(source.read(), self.options.limit))
        except UserError as exc:  # one unreadable variant folder of a large set is reported, the rest go on
            self.result.problems.append(f"{source.key.label}: {exc.message}")
            return None
        self.result.problems += [f"{source.key.label}: {p}" for p in samples.problems]
        if not samples.samples:
            self.result.problems.append(f"{source.key.label}: no images")
            return None
        return samples

    def _cell_key(self, cell: Cell, digest: str, transform: EvalTransform, groups: tuple[str, ...]) -> str:
        from benchbox.datasets.cache import PIXELS_VERSION

        return content_key(
            {
                "cell": [
                    cell.model,
                    cell.model_id,
                    cell.engine,
                    cell.device,
                    cell.precision,
                    cell.testset,
                    cell.variant,
                ],
                "pixels": PIXELS_VERSION,
                "artifact": self.artifact.key_for(cell.engine, cell.device, cell.precision),
                "samples": digest,
                "transform": [self.artifact.data_config.to_dict(), transform.resize],
                "summary": [summaries.SCHEMA, list(groups)],
                "logits": bool(self.options.keep_logits),
            }
        )

    def planned_work(self, plan, cells: list[_CellRunner]) -> list[tuple[TestSet, SampleSet, list[predict.CellJob]]]:
        """(set, samples, jobs) of every variant this eval will visit, read now (what a cluster run submits)."""
        work = []
        for spec, variants in plan:
            for source in variants:
                try:
                    samples = visit_order(limit_samples(source.read(), self.options.limit))
                except UserError:
                    continue  # reported when the eval reaches the variant
                if samples.samples:
                    work.append((spec, samples, self.variant_jobs(spec, samples, cells)))
        return work

    def variant_jobs(self, spec: TestSet, samples: SampleSet, cells: list[_CellRunner]) -> list[predict.CellJob]:
        """One job per cell for a variant, keyed by everything that decides its predictions."""
        transform = EvalTransform(self.artifact.data_config, resize=spec.resize)
        digest = samples_digest(samples, by_content=bool(getattr(self.options, "rehash", False)))
        jobs = []
        for cell_runner in cells:
            cell = cell_runner.cell.at(samples.key)
            key = self._cell_key(cell, digest, transform, spec.summary)
            keep = bool(self.options.keep_logits)
            jobs.append(predict.CellJob(cell, key, cell_runner.activate, spec.summary, keep, digest=digest))
        return jobs

    def _predict_variant(
        self, spec: TestSet, samples: SampleSet, cells: list[_CellRunner], stop: int | None = None, fresh: bool = True
    ) -> list[predict.CellJob]:
        """Every cell's predictions of the variant (of samples[:stop] when a sequential set stopped there)."""
        options = self.options
        transform = EvalTransform(self.artifact.data_config, resize=spec.resize)
        jobs = self.variant_jobs(spec, samples, cells)
        for job, cell_runner in zip(jobs, cells):
            if cell_runner.broken:
                job.error = RuntimeError(f"skipped: this cell failed earlier ({cell_runner.broken})")
            elif options.recompute and fresh and self.executor is None:  # a cluster run discarded them already
                self.store.discard_predictions(job.key)
        runnable = [job for job in jobs if job.error is None]
        progress = None
        if self.on_progress and runnable:
            label = f"{samples.key.label} [{', '.join(j.cell.column for j in runnable)}]"
            progress = lambda done, total: self.on_progress(label, done, total)  # noqa: E731
        if self.executor is not None:
            self.executor.collect(self.store, runnable, samples, progress)
        elif spec.videos:
            predict.predict_videos(
                self.store,
                runnable,
                samples,
                transform,
                options.batch_size,
                on_progress=progress,
                max_bytes=self._max_bytes(),
                stop=stop,
            )
        else:
            cache = self._cache(transform) if spec.resize else None
            predict.predict_images(
                self.store,
                runnable,
                samples,
                transform,
                options.batch_size,
                options.workers,
                options.chunk_samples,
                cache,
                progress,
                self._max_bytes(),
                stop=stop,
            )
            if cache is not None:
                self.result.cache["hits"] = self.result.cache.get("hits", 0) + cache.hits
                self.result.cache["misses"] = self.result.cache.get("misses", 0) + cache.misses
                self._caches.append(cache)
        for job, cell_runner in zip(jobs, cells):
            if job.error is not None and not cell_runner.broken:
                cell_runner.broken = f"{type(job.error).__name__}: {job.error}"
            elif job.error is None and stop is not None and stop < len(samples.samples):
                job.result = predict.prefix(self.store, job, stop, spec.videos)
        return jobs

    def _max_bytes(self) -> int:
        return int(float(getattr(self.options, "max_image_mb", 256.0)) * 2**20)

    def _cache(self, transform: EvalTransform):
        from benchbox.datasets.cache import open_cache

        o = self.options
        return open_cache(o.cache_dir, o.no_cache, o.cache_size_gb, transform.cache_key())

    def _score_variant(self, spec, scorer, samples, jobs, per_cell, keys, stop=None) -> None:
        if stop is not None and stop.n < len(samples.samples):
            import dataclasses

            samples = dataclasses.replace(samples, samples=samples.samples[: stop.n])
        else:
            stop = None
        done = next((job.result.summary for job in jobs if job.error is None and job.result is not None), None)
        overlap = calibration_overlap(samples, self._overlap_ids, done)
        for precision, count in overlap.items():
            warning = overlap_warning(precision, count, samples)
            if warning not in self.result.warnings:
                self.result.warnings.append(warning)
        for job in jobs:
            if job.error is not None:
                self._record_failure(job, samples)
                continue
            identity = identity_digest(job.result.summary)
            ctx = self._context(job.cell, identity, samples, job.result)
            records = flag(scorer.variant_records(ctx), samples, overlap)
            key = job.key
            info = {
                "samples": len(samples.samples),
                "unreadable": len(job.result.unreadable),
                "artifact": self._artifact_file(job.cell),
                "flags": list(samples.data_flags),
                **job.info,
            }
            if stop is not None:  # a prefix: its own key and predictions, the stopping rule in info and records
                key = content_key({"prefix": job.key, "n": stop.n})
                predict.save_prefix(self.store, key, job.result, spec.videos, job.groups)
                info["sequential"] = stop.info()
                records = _sequential_records(records, stop)
            run_id = self.store.start_run(key, "cell", job.cell, samples=identity)
            self.store.finish_run(run_id, records, info)
            self._report(spec, records)
            self.result.problems += [p for p in ctx.problems if p not in self.result.problems]
            if job.result.unreadable:
                self.result.unreadable[samples.key.label] = [
                    (printable(samples.samples[i].path), e) for i, e in job.result.unreadable
                ]
            per_cell[job.cell.at(None)].extend(records)
            keys[job.cell.at(None)].append(key)
            if self._is_needed(spec.name):
                self._needed[(job.cell.engine, job.cell.precision, spec.name)] = (samples, job.result, identity)

    def _artifact_file(self, cell: Cell) -> dict[str, str | None]:
        """Which artifact file a cell scored (report and check drop results whose file has changed since)."""
        from benchbox.artifact import artifact_file_for

        name = artifact_file_for(cell.engine, cell.device, cell.precision)
        sha = self.artifact.key_for(cell.engine, cell.device, cell.precision)
        return {"directory": str(self.artifact.directory), "file": name, "sha256": sha}

    def _record_failure(self, job: predict.CellJob, samples: SampleSet) -> None:
        message = job.error.message if isinstance(job.error, UserError) else f"{type(job.error).__name__}: {job.error}"
        record = failure_record(job.cell, message)
        run_id = self.store.start_run(job.key, "cell", job.cell, samples=job.digest)
        self.store.fail_run(run_id, message, [record])
        self.result.records.append(record)
        self.result.failures.append(f"{job.cell.column} {samples.key.label}: {message}")

    def _is_needed(self, name: str) -> bool:
        return any(name in TESTSETS[other].needs for other in with_needs(self.options.sets.names))

    def _context(self, cell: Cell, digest: str, samples=None, predictions=None) -> ScoreContext:
        def needed(name: str):
            found = self._needed.get((cell.engine, cell.precision, name))
            return found[:2] if found else None

        return ScoreContext(cell, digest, samples, predictions, needed, self.options, self.store)

    def _report(self, spec: TestSet, records: list[Record]) -> None:
        if spec.name in self.options.sets.names:
            self.result.records += records

    def _score_set(self, spec, scorer, cells, per_cell, keys, flags, stop=None) -> None:
        for cell_runner in cells:
            cell = cell_runner.cell.at(SetKey(spec.name))
            variant_records = per_cell[cell_runner.cell]
            needed = [self._needed.get((cell.engine, cell.precision, n)) for n in spec.needs]
            if not variant_records and not spec.scored_from_needed:
                continue
            # what the set-level figures were computed on: the images of every variant and of the needed sets
            # (their identities, never a cell key: two precisions on the same trees get the same digest)
            digest = set_digest([r.samples for r in variant_records], [n[2] for n in needed if n])
            parts = {
                "set": [cell.model, cell.model_id, cell.engine, cell.device, cell.precision, spec.name],
                "variants": keys[cell_runner.cell],
                "samples": digest,
                "p_baseline": _baseline_identity(self.options.p_baseline),
                "real": str(self.options.real_labels),
            }
            ctx = self._context(cell, digest)
            records = [r.with_flags(*flags) for r in scorer.set_records(ctx, variant_records)]
            self.result.problems += [p for p in ctx.problems if p not in self.result.problems]
            if not records:
                continue
            info = {"variants": len(keys[cell_runner.cell]), **ctx.info}
            if stop is not None:
                records, info["sequential"] = _sequential_records(records, stop), stop.info()
            run_id = self.store.start_run(content_key(parts), "set", cell, samples=digest)
            self.store.finish_run(run_id, records, info)
            self._report(spec, records)


def _sequential_records(records: list[Record], stop) -> list[Record]:
    """Records of a stopped set say so: a `sequential` flag, and n, N, the order seed and the rule in extra."""
    out = []
    for record in records:
        record = record.with_flags("sequential")
        record.extra["sequential"] = stop.info()
        out.append(record)
    return out


def check_option_files(options) -> None:
    """Files the options name, read before any store is opened or image decoded (a --p-baseline JSON)."""
    if options.p_baseline and Path(options.p_baseline).is_file():
        from benchbox.evaluation.scoring.perturbation import load_baseline

        load_baseline(options, None, options.engines[0])


def _s8s8_warning(engine: str, device: str, precision: str) -> str | None:
    """ONNX Runtime on an x86 CPU without 8-bit dot-product instructions (VNNI) multiplies the TensorRT flavour's
    signed activations with saturating 16-bit sums: its numbers there are ORT's kernels, not the model's."""
    from benchbox.artifact import artifact_file_for
    from benchbox.environment import cpu_has_vnni

    if engine != "ort" or not str(device).startswith("cpu") or artifact_file_for(engine, device, precision) != "int8":
        return None
    if cpu_has_vnni():
        return None
    return (
        f"ort/{precision}: the TensorRT INT8 flavour (signed activations) runs here on a CPU without VNNI, where ONNX "
        "Runtime's S8S8 kernels saturate: its accuracy on this machine says little about TensorRT. Use int8 "
        "(the int8-cpu flavour) for ONNX Runtime, or measure int8-trt with TensorRT."
    )


def _run_device(runner, requested: str) -> str:
    """Where a runner runs: its own device (TensorRT is always the GPU), keeping a cluster target's `@name`."""
    actual = str(getattr(runner, "device", requested) or requested)
    target = requested.split("@", 1)[1] if "@" in requested else None
    return f"{actual}@{target}" if target else actual


def _baseline_identity(p_baseline: str | None) -> str | None:
    """A --p-baseline for a set key: a file by its content, a model name as written."""
    import hashlib
    from pathlib import Path

    if p_baseline and Path(p_baseline).is_file():
        return hashlib.sha256(Path(p_baseline).read_bytes()).hexdigest()[:16]
    return p_baseline
