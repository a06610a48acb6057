"""`benchbox eval` orchestration: cells x sets, resume, failures recorded; the scoring lives in scoring/.

Input mistakes (missing sets, bad label files, an artifact without the asked-for file) abort before any work.
Then, set by set (sets another one needs come first) and variant by variant, one decode feeds every cell that
still needs the variant; as soon as a variant is complete each cell's records are computed, stored and the
predictions let go, so memory does not grow with the set. A cell that fails is recorded and the run goes on.

Long because the order of the steps (predict, score, compare, aggregate) is the one thing to read here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchbox.artifact import Artifact, content_key
from benchbox.datasets.catalog import TESTSETS, TestSet, with_needs
from benchbox.datasets.readers import SampleSet, VariantSource
from benchbox.datasets.transforms import EvalTransform
from benchbox.errors import UnsupportedPrecision, UserError, printable
from benchbox.evaluation import predict, summaries
from benchbox.evaluation.flags import calibration_hashes, calibration_overlap, flag, overlap_warning
from benchbox.evaluation.planning import check_scoring_inputs, limit_samples, plan_sets, samples_digest
from benchbox.evaluation.scoring import ScoreContext, scorer_for
from benchbox.evaluation.scoring.agreement import agreement_records
from benchbox.records import Cell, Record, SetKey, failure_record
from benchbox.store import ResultStore

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

    def to_json(self) -> dict[str, Any]:
        return {
            "records": [r.to_json() for r in self.records],
            "unreadable": {k: [list(x) for x in v] for k, v in self.unreadable.items()},
            "problems": self.problems,
            "warnings": self.warnings,
            "missing_sets": self.missing_sets,
            "failures": self.failures,
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
        self._needed: dict[tuple[str, str, str], tuple[SampleSet, predict.CellPredictions, str]] = {}
        self._overlap_hashes: dict[str, set[str]] = {}

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> EvalResult:
        from benchbox.runtime import check_engine_device

        options = self.options
        for engine in options.engines:
            check_engine_device(engine, options.device)
        self.artifact.require_files(options.engines, options.precisions, options.device)
        plan = plan_sets(options, self.result.missing_sets)
        check_scoring_inputs(plan, options, self.store)
        cells = self._create_cells(plan)
        self._record_artifact()
        self._overlap_hashes = calibration_hashes(self.artifact, options.engines, options.precisions, options.device)
        if self.executor is not None:
            self.executor.submit(self, plan, cells)
        try:
            for spec, variants in plan:
                self._evaluate_set(spec, variants, cells)
        finally:
            for cell_runner in cells:
                cell_runner.runner.deactivate()
        return self.result

    def _cell(self, engine: str, precision: str) -> Cell:
        return Cell(self.artifact.model, engine, self.options.device, precision)

    def _create_cells(self, plan) -> list[_CellRunner]:
        """One runner per (engine, precision); pairs the engine cannot run become explicit records."""
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
                cells.append(_CellRunner(self._cell(engine, precision), runner))
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
        for precision, entry in self.artifact.manifest.get("files", {}).items():
            parity = entry.get("parity") or {}
            cell = Cell(self.artifact.model, "export", "cpu", precision)
            records = [
                Record(
                    cell,
                    f"parity_{metric}",
                    parity[metric],
                    parity.get("n"),
                    reference=parity.get("reference"),
                    extra={"source": parity.get("source")},
                )
                for metric in ("max_abs_diff", "top1_agreement")
                if metric in parity
            ]
            key = content_key({"artifact": self.artifact.manifest.get("export_key"), "file": entry["sha256"]})
            run_id = self.store.start_run(key, "artifact", cell, reference=parity.get("reference"))
            self.store.finish_run(run_id, records, {"directory": str(self.artifact.directory)})

    # -- one set ---------------------------------------------------------------------------------
    def _evaluate_set(self, spec: TestSet, variants: list[VariantSource], cells: list[_CellRunner]) -> None:
        scorer = scorer_for(spec)
        per_cell: dict[Cell, list[Record]] = {c.cell: [] for c in cells}
        keys: dict[Cell, list[str]] = {c.cell: [] for c in cells}
        flags: set[str] = set()
        for source in variants:
            samples = self._read(source)
            if samples is None:
                continue
            flags |= set(samples.data_flags)
            jobs = self._predict_variant(spec, samples, cells)
            self._score_variant(spec, scorer, samples, jobs, per_cell, keys)
        if hasattr(scorer, "set_records"):
            self._score_set(spec, scorer, cells, per_cell, keys, tuple(sorted(flags)))

    def _read(self, source: VariantSource) -> SampleSet | None:
        try:
            samples = limit_samples(source.read(), self.options.limit)
        except UserError as exc:  # one unreadable variant folder of a large set is reported, the rest go on
            self.result.problems.append(f"{source.key.label}: {exc.message}")
            return None
        self.result.problems += [f"{source.key.label}: {p}" for p in samples.problems]
        if not samples.samples:
            self.result.problems.append(f"{source.key.label}: no images")
            return None
        return samples

    def _cell_key(self, cell: Cell, digest: str, transform: EvalTransform, groups: tuple[str, ...]) -> str:
        return content_key(
            {
                "cell": [cell.model, cell.engine, cell.device, cell.precision, cell.testset, cell.variant],
                "artifact": self.artifact.key_for(cell.engine, cell.device, cell.precision),
                "samples": digest,
                "transform": [self.artifact.data_config.to_dict(), transform.resize],
                "summary": [summaries.SCHEMA, list(groups)],
                "logits": bool(self.options.keep_logits),
            }
        )

    def variant_jobs(self, spec: TestSet, samples: SampleSet, cells: list[_CellRunner]) -> list[predict.CellJob]:
        """One job per cell for a variant, keyed by everything that decides its predictions."""
        transform = EvalTransform(self.artifact.data_config, resize=spec.resize)
        digest = samples_digest(samples)
        jobs = []
        for cell_runner in cells:
            cell = cell_runner.cell.at(samples.key)
            key = self._cell_key(cell, digest, transform, spec.summary)
            keep = bool(self.options.keep_logits)
            jobs.append(predict.CellJob(cell, key, cell_runner.activate, spec.summary, keep, digest=digest))
        return jobs

    def _predict_variant(self, spec: TestSet, samples: SampleSet, cells: list[_CellRunner]) -> list[predict.CellJob]:
        options = self.options
        transform = EvalTransform(self.artifact.data_config, resize=spec.resize)
        jobs = self.variant_jobs(spec, samples, cells)
        for job, cell_runner in zip(jobs, cells):
            if cell_runner.broken:
                job.error = RuntimeError(f"skipped: this cell failed earlier ({cell_runner.broken})")
            elif options.recompute and self.executor is None:  # a cluster run discarded them before submitting
                self.store.discard_predictions(job.key)
        runnable = [job for job in jobs if job.error is None]
        progress = None
        if self.on_progress and runnable:
            label = f"{samples.key.label} [{', '.join(j.cell.column for j in runnable)}]"
            progress = lambda done, total: self.on_progress(label, done, total)  # noqa: E731
        if self.executor is not None:
            self.executor.collect(self.store, runnable, samples, progress)
        elif spec.layout == "p":
            predict.predict_videos(self.store, runnable, samples, transform, options.batch_size, on_progress=progress)
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
            )
            if cache is not None:
                self.result.cache["hits"] = self.result.cache.get("hits", 0) + cache.hits
                self.result.cache["misses"] = self.result.cache.get("misses", 0) + cache.misses
                cache.trim()
        for job, cell_runner in zip(jobs, cells):
            if job.error is not None and not cell_runner.broken:
                cell_runner.broken = f"{type(job.error).__name__}: {job.error}"
        return jobs

    def _cache(self, transform: EvalTransform):
        from benchbox.datasets.cache import open_cache

        o = self.options
        return open_cache(o.cache_dir, o.no_cache, o.cache_size_gb, transform.cache_key())

    def _score_variant(self, spec, scorer, samples, jobs, per_cell, keys) -> None:
        overlap = calibration_overlap(samples, self._overlap_hashes)
        for precision, count in overlap.items():
            warning = overlap_warning(precision, count, samples)
            if warning not in self.result.warnings:
                self.result.warnings.append(warning)
        finished = {}
        for job in jobs:
            if job.error is not None:
                self._record_failure(job, samples)
                continue
            ctx = self._context(job.cell, job.digest, samples, job.result)
            records = flag(scorer.variant_records(ctx), samples, overlap)
            run_id = self.store.start_run(job.key, "cell", job.cell, samples=job.digest)
            info = {"samples": len(samples.samples), "unreadable": len(job.result.unreadable), **job.info}
            self.store.finish_run(run_id, records, info)
            self._report(spec, records)
            self.result.problems += [p for p in ctx.problems if p not in self.result.problems]
            if job.result.unreadable:
                self.result.unreadable[samples.key.label] = [
                    (printable(samples.samples[i].path), e) for i, e in job.result.unreadable
                ]
            per_cell[job.cell.at(None)].extend(records)
            keys[job.cell.at(None)].append(job.key)
            finished[job.cell] = job
            if self._is_needed(spec.name):
                self._needed[(job.cell.engine, job.cell.precision, spec.name)] = (samples, job.result, job.key)
        self._agreement(spec, scorer, samples, finished, overlap)

    def _record_failure(self, job: predict.CellJob, samples: SampleSet) -> None:
        message = f"{type(job.error).__name__}: {job.error}"
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

    def _score_set(self, spec, scorer, cells, per_cell, keys, flags) -> None:
        for cell_runner in cells:
            cell = cell_runner.cell.at(SetKey(spec.name))
            variant_records = per_cell[cell_runner.cell]
            needed = [self._needed.get((cell.engine, cell.precision, n)) for n in spec.needs]
            parts = {
                "set": [cell.model, cell.engine, cell.device, cell.precision, spec.name],
                "variants": keys[cell_runner.cell],
                "needed": [n[2] for n in needed if n],
                "p_baseline": self.options.p_baseline,
                "real": str(self.options.real_labels),
            }
            if not variant_records and spec.layout != "val-labels":
                continue
            digest = content_key(
                {"variants": sorted({r.samples for r in variant_records if r.samples}), "needed": parts["needed"]}
            )
            ctx = self._context(cell, digest)
            records = [r.with_flags(*flags) for r in scorer.set_records(ctx, variant_records)]
            self.result.problems += [p for p in ctx.problems if p not in self.result.problems]
            if not records:
                continue
            run_id = self.store.start_run(content_key(parts), "set", cell, samples=digest)
            self.store.finish_run(run_id, records)
            self._report(spec, records)

    # -- comparisons -----------------------------------------------------------------------------
    def _agreement(self, spec, scorer, samples: SampleSet, finished: dict[Cell, predict.CellJob], overlap) -> None:
        """Each lower precision against fp32 on its engine; each later engine against the first, per precision."""
        pairs = []
        engines = list(dict.fromkeys(c.engine for c in finished))
        for cell, job in finished.items():
            reference = next(
                (j for c, j in finished.items() if c.engine == cell.engine and c.precision == "fp32"), None
            )
            if cell.precision != "fp32" and reference is not None:
                pairs.append((reference, job, f"{cell.engine}/fp32"))
            first = next(
                (j for c, j in finished.items() if c.engine == engines[0] and c.precision == cell.precision), None
            )
            if cell.engine != engines[0] and first is not None:
                pairs.append((first, job, f"{engines[0]}/{cell.precision}"))
        for reference, job, name in pairs:
            ctx = self._context(job.cell, job.digest, samples, job.result)
            records = agreement_records(ctx, scorer, reference.result.summary, job.result.summary, name)
            records = flag(records, samples, overlap)
            if not records:
                continue
            run_id = self.store.start_run(
                content_key({"pair": [reference.key, job.key]}),
                "agreement",
                job.cell,
                reference=name,
                samples=job.digest,
            )
            self.store.finish_run(run_id, records)
            self._report(spec, records)
