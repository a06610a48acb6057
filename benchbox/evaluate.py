"""`benchbox eval`: every engine x precision over every requested test set, resumable, failures recorded."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.datasets.catalog import TESTSETS, timm_real_labels
from benchbox.datasets.readers import (
    SampleSet,
    expected_layout,
    locate,
    read_c_tree,
    read_image_folder,
    v2_variant_dirs,
)
from benchbox.datasets.transforms import EvalTransform
from benchbox.errors import UserError
from benchbox.exporters.manifest import Artifact, content_key
from benchbox.predict import CellJob, Predictions, predict_cells, predict_video_cell
from benchbox.runtime import create_runner, require_artifact_files
from benchbox.runtime.base import UnsupportedPrecision
from benchbox.scoring import (
    agreement_records,
    classification_records,
    clean_subset_records,
    corruption_records,
    ood_records,
    perturbation_records,
    real_records,
)
from benchbox.store import ResultStore, make_record

ProgressFn = Callable[[str, int, int], None]


@dataclass
class EvalOptions:
    engines: list[str] = field(default_factory=lambda: ["ort"])
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    sets: list[str] = field(default_factory=lambda: ["val"])
    all_sets: bool = False
    data_root: Path | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    real_labels: Path | None = None
    limit: int | None = None
    batch_size: int = 32
    workers: int | None = None
    device: str = "cpu"
    threads: int | None = None
    chunk_samples: int = 512
    cuda_backend: str = "cuda-python"  # TensorRT runner: cuda-python or pycuda
    p_baseline: str | None = None  # JSON file {"flip_prob": {...}, "top5_dist": {...}} or a model name in the store


@dataclass
class EvalResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreadable: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    missing_sets: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "unreadable": {k: [list(x) for x in v] for k, v in self.unreadable.items()},
            "problems": self.problems,
            "warnings": self.warnings,
            "missing_sets": self.missing_sets,
            "failures": self.failures,
        }


def limit_samples(samples: SampleSet, limit: int | None) -> SampleSet:
    """An evenly spread, deterministic subset of `limit` samples (all classes stay represented)."""
    if not limit or limit >= len(samples.samples):
        return samples
    picks = np.linspace(0, len(samples.samples) - 1, num=limit).round().astype(int)
    return SampleSet(
        samples.testset,
        samples.root,
        [samples.samples[i] for i in picks],
        samples.layout,
        samples.variant,
        samples.problems,
        samples.synthesized,
    )


def load_sample_sets(options: EvalOptions, result: EvalResult) -> dict[str, list[SampleSet]]:
    """Read every requested set (and val when ReaL, O or the A/R clean baselines need it)."""
    located = locate(options.data_root, options.paths)
    if options.data_root is not None and not options.data_root.is_dir():
        raise UserError(f"Data root {options.data_root} does not exist.", expected_layout("val"))
    wanted = list(options.sets)
    needs_val = any(s in wanted for s in ("real", "o", "a", "r", "c"))
    loaded: dict[str, list[SampleSet]] = {}
    for name in [*wanted, *(["val"] if needs_val and "val" not in wanted else [])]:
        spec = TESTSETS[name]
        try:
            sets = _read_set(name, located, options)
        except UserError:
            if options.all_sets or name not in wanted:
                if name in wanted:
                    result.missing_sets.append(name)
                continue
            raise
        if sets is None:
            if name in wanted and not options.all_sets:
                where = f"under {options.data_root}" if options.data_root else "(no --data-root given)"
                raise UserError(f"{spec.title} not found {where}.", expected_layout(name))
            if name in wanted:
                result.missing_sets.append(name)
            continue
        loaded[name] = [limit_samples(s, options.limit) for s in sets]
        for s in sets:
            result.problems.extend(f"{name}{'/' + s.variant if s.variant else ''}: {p}" for p in s.problems)
    if "real" in wanted and "val" not in loaded and "real" not in result.missing_sets:
        result.missing_sets.append("real")
    return loaded


def _read_set(name: str, located: dict[str, Path | None], options: EvalOptions) -> list[SampleSet] | None:
    if name == "real":
        return []  # scored from val predictions
    if name == "v2":
        variants = v2_variant_dirs(options.data_root, options.paths.get("v2"))
        return [read_image_folder(path, "v2", variant) for variant, path in variants.items()] or None
    folder = located.get(name)
    if folder is None:
        return None
    if name == "c":
        sets = read_c_tree(folder)
        if not sets:
            raise UserError(f"No corruption folders under {folder}.", expected_layout("c"))
        return sets
    if name == "p":
        from benchbox.datasets.readers import read_p_tree

        return read_p_tree(folder) or None
    sample_set = read_image_folder(folder, name)
    if not sample_set.samples:
        raise UserError(f"No images found in {folder}.", expected_layout(name))
    return [sample_set]


def samples_digest(samples: SampleSet) -> str:
    digest = hashlib.sha256()
    for s in samples.samples:
        digest.update(f"{s.path}\0{s.label}\n".encode())
    return digest.hexdigest()[:16]


def _lazy(runner):
    """A factory that activates the runner on first use (cells already in the store never load a model)."""

    def factory():
        return runner.activate()

    return factory


class Evaluator:
    """Runs the eval plan against a store. Public `run` checks inputs; cells do the work."""

    def __init__(
        self,
        artifact: Artifact,
        store: ResultStore,
        options: EvalOptions,
        on_progress: ProgressFn | None = None,
    ) -> None:
        self.artifact = artifact
        self.store = store
        self.options = options
        self.on_progress = on_progress
        self.predictions: dict[tuple[str, str], dict[str, Predictions]] = {}

    def run(self) -> EvalResult:
        result = EvalResult()
        require_artifact_files(self.artifact, self.options.engines, self.options.precisions, self.options.device)
        self._record_artifact()
        sample_sets = load_sample_sets(self.options, result)
        if not sample_sets:
            raise UserError(
                "None of the requested test sets were found.",
                f"Missing: {', '.join(result.missing_sets)}. {expected_layout('val')}",
            )
        self.overlap = self._calibration_overlap(sample_sets, result)
        runners = self._create_runners(sample_sets, result)
        try:
            for sets in sample_sets.values():
                for samples in sets:
                    self._predict_set(samples, runners, result)
            for engine, precision in runners:
                self._score(engine, precision, sample_sets, self.predictions[(engine, precision)], result)
        finally:
            for runner, _ in runners.values():
                runner.deactivate()
        for engine in self.options.engines:
            by_precision = {p: self.predictions.get((engine, p), {}) for p in self.options.precisions}
            self._agreement(engine, by_precision, sample_sets, result)
        self._cross_engine_agreement(result)
        return result

    def _record_artifact(self) -> None:
        """Export parity of every precision file, as records the readiness check can gate on."""
        records = []
        for precision, entry in self.artifact.manifest.get("files", {}).items():
            parity = entry.get("parity") or {}
            cell = {
                "model": self.artifact.model,
                "engine": "export",
                "device": "cpu",
                "precision": precision,
                "testset": None,
                "variant": parity.get("reference"),
            }
            for metric in ("max_abs_diff", "top1_agreement"):
                if metric in parity:
                    records.append(
                        make_record(
                            cell, f"parity_{metric}", parity[metric], parity.get("n"), source=parity.get("source")
                        )
                    )
        key = content_key(
            {
                "artifact": self.artifact.manifest.get("export_key"),
                "files": {p: e["sha256"] for p, e in self.artifact.manifest.get("files", {}).items()},
            }
        )
        run_id = self.store.start_run(key, "artifact", {"model": self.artifact.model, "engine": "export"})
        self.store.finish_run(run_id, records, {"directory": str(self.artifact.directory)})

    def _cell(self, engine: str, precision: str, testset: str, variant: str | None) -> dict[str, Any]:
        return {
            "model": self.artifact.model,
            "engine": engine,
            "device": self.options.device,
            "precision": precision,
            "testset": testset,
            "variant": variant,
        }

    def _create_runners(self, sample_sets: dict[str, list[SampleSet]], result: EvalResult) -> dict:
        """{(engine, precision): (runner, lazy activating factory)}; unsupported pairs become explicit records."""
        runners = {}
        for engine in self.options.engines:
            for precision in self.options.precisions:
                try:
                    runner = create_runner(
                        engine,
                        self.artifact,
                        precision,
                        self.options.device,
                        threads=self.options.threads,
                        cuda_backend=self.options.cuda_backend,
                    )
                except UnsupportedPrecision as exc:
                    self._record_unsupported(engine, precision, sample_sets, exc, result)
                    continue
                runners[(engine, precision)] = (runner, _lazy(runner))
                self.predictions[(engine, precision)] = {}
        return runners

    def _record_unsupported(self, engine, precision, sample_sets, exc, result) -> None:
        for name in sample_sets:
            cell = self._cell(engine, precision, name, None)
            run_id = self.store.start_run(content_key({**cell, "unsupported": True}), "eval", cell)
            record = make_record(cell, "unsupported", None, 0, error=exc.message)
            self.store.fail_run(run_id, exc.message, [record])
            result.records.append(record)
        result.failures.append(f"{engine}/{precision}: {exc.message}")

    def _predict_set(self, samples: SampleSet, runners: dict, result: EvalResult) -> None:
        """One decoding pass over a set feeds every (engine, precision) cell that still needs it."""
        options = self.options
        label = f"{samples.testset}/{samples.variant}" if samples.variant else samples.testset
        transform = EvalTransform(self.artifact.data_config, resize=samples.testset not in ("c", "p"))
        jobs = {}
        for (engine, precision), (_, factory) in runners.items():
            cell = self._cell(engine, precision, samples.testset, samples.variant)
            key = content_key(
                {**cell, "artifact": self._artifact_key(engine, precision), "samples": samples_digest(samples)}
            )
            info = {"samples": len(samples.samples), "root": str(samples.root)}
            jobs[(engine, precision)] = (cell, CellJob(self.store.start_run(key, "predict", cell, info), factory))
        progress = None
        if self.on_progress:
            names = ", ".join(f"{e}/{p}" for e, p in jobs)
            progress = lambda done, total: self.on_progress(f"{label} [{names}]", done, total)  # noqa: E731
        if samples.testset == "p":  # videos: frame decoding per cell (few files, many frames)
            for _, job in jobs.values():
                try:
                    job.result = predict_video_cell(
                        self.store, job.run_id, samples, job.runner_factory, transform, options.batch_size, progress
                    )
                except UserError:
                    raise
                except Exception as exc:
                    job.error = exc
        else:
            predict_cells(
                self.store,
                [job for _, job in jobs.values()],
                samples,
                transform,
                options.batch_size,
                options.workers,
                progress,
                options.chunk_samples,
            )
        for (engine, precision), (cell, job) in jobs.items():
            if job.error is not None:  # one broken cell is recorded; the rest go on
                message = f"{type(job.error).__name__}: {job.error}"
                self.store.fail_run(job.run_id, message, [make_record(cell, "error", None, 0, error=message)])
                result.failures.append(f"{engine}/{precision} {label}: {message}")
                continue
            pred = job.result
            self.store.finish_run(job.run_id, [], {"samples": len(samples.samples), "unreadable": len(pred.unreadable)})
            self.predictions[(engine, precision)][label] = pred
            if pred.unreadable:
                result.unreadable[label] = pred.unreadable

    def _artifact_key(self, engine: str, precision: str) -> str:
        if engine == "torch":
            return self.artifact.manifest.get("export_key", "")
        from benchbox.runtime.onnxrt import artifact_precision_for

        entry = self.artifact.entry(artifact_precision_for(f"{engine}-{self.options.device}", precision))
        return entry["sha256"]

    def _score(
        self,
        engine: str,
        precision: str,
        sample_sets: dict[str, list[SampleSet]],
        preds: dict[str, Predictions],
        result: EvalResult,
    ) -> None:
        """Records per set, stored as one derived run per (engine, precision) so re-runs replace them."""
        cell = self._cell(engine, precision, None, None)
        records: list[dict[str, Any]] = []
        wanted = self.options.sets
        val = preds.get("val")
        synthesized = {name for name, sets in sample_sets.items() if any(s.synthesized for s in sets)}
        for name, sets in sample_sets.items():
            if name not in wanted:
                continue
            base = {**cell, "testset": name}
            if name in ("val", "v2", "sketch"):
                for s in sets:
                    label = f"{name}/{s.variant}" if s.variant else name
                    if label in preds:
                        records += classification_records({**base, "variant": s.variant}, preds[label])
                        records.append(
                            make_record(
                                {**base, "variant": s.variant},
                                "unreadable_files",
                                float(len(preds[label].unreadable)),
                                len(s.samples),
                            )
                        )
            elif name in ("a", "r") and name in preds:
                records += classification_records(base, preds[name], subset=name, top5=False)
                if val is not None:
                    records += clean_subset_records(base, val, name)
            elif name == "o" and name in preds:
                if val is None:
                    result.problems.append("o: needs val (the in-distribution images) under the data root")
                else:
                    records += ood_records(base, preds[name], val)
            elif name == "c":
                per_variant = {s.variant: preds[f"c/{s.variant}"] for s in sets if f"c/{s.variant}" in preds}
                clean = None
                if val is not None and val.labels.size:
                    clean = 100.0 * float((val.top1 == val.labels).mean())
                records += corruption_records(base, per_variant, clean)
            elif name == "p":
                per_variant = {s.variant: preds[f"p/{s.variant}"] for s in sets if f"p/{s.variant}" in preds}
                records += perturbation_records(base, per_variant, self._p_baseline(engine))
        if "real" in wanted and val is not None:
            keys = [s.key for s in sample_sets["val"][0].samples]
            real_recs, problems = real_records({**cell, "testset": "real"}, val, keys, self._real_lists())
            records += real_recs
            result.problems += problems
        for record in records:
            if record["testset"] in synthesized:
                record["flags"] = [*(record.get("flags") or []), "synthesized"]  # never mutate a shared list
        self._flag_overlap(records)
        key = content_key(
            {
                **cell,
                "derived": "scores",
                "sets": sorted(sample_sets),
                "runs": sorted(p.run_id for p in preds.values()),
            }
        )
        run_id = self.store.start_run(key, "scores", cell)
        self.store.finish_run(run_id, records)
        result.records += records

    def _p_baseline(self, engine: str) -> dict[str, dict[str, float]] | None:
        """The ImageNet-P normaliser: a JSON file, or the fp32 records of another model already in the store."""
        import json

        source = self.options.p_baseline
        if not source:
            return None
        if Path(source).is_file():
            try:
                return json.loads(Path(source).read_text())
            except json.JSONDecodeError as exc:
                raise UserError(f"P baseline {source} is not valid JSON: {exc}") from exc
        baseline: dict[str, dict[str, float]] = {"flip_prob": {}, "top5_dist": {}}
        for record in self.store.records(model=source, testset="p", precision="fp32", engine=engine):
            if record["metric"] in baseline and record.get("variant"):
                baseline[record["metric"]][record["variant"]] = record["value"]
        if not baseline["flip_prob"]:
            raise UserError(
                f"No ImageNet-P baseline: {source!r} is neither a file nor a model with fp32 ImageNet-P "
                "results in this store.",
                "Pass --p-baseline FILE.json or evaluate the baseline first.",
            )
        return baseline

    def _real_lists(self):
        import json

        root_file = self.options.data_root / "real.json" if self.options.data_root else None
        for path in (self.options.paths.get("real"), root_file, self.options.real_labels):
            if path is not None and Path(path).is_file():
                try:
                    return json.loads(Path(path).read_text())
                except json.JSONDecodeError as exc:
                    raise UserError(f"{path} is not valid JSON: {exc}", expected_layout("real")) from exc
        return timm_real_labels()

    def _agreement(
        self,
        engine: str,
        by_precision: dict[str, dict[str, Predictions]],
        sample_sets: dict[str, list[SampleSet]],
        result: EvalResult,
    ) -> None:
        reference = by_precision.get("fp32")
        if not reference:
            return
        records = []
        for precision, preds in by_precision.items():
            if precision == "fp32":
                continue
            for label, pred in preds.items():
                testset, _, variant = label.partition("/")
                if testset not in self.options.sets or label not in reference:
                    continue
                cell = self._cell(engine, precision, testset, variant or None)
                records += self._flag_overlap(
                    [{**r, "reference": f"{engine}/fp32"} for r in agreement_records(cell, reference[label], pred)]
                )
        if records:
            key = content_key(
                {
                    "engine": engine,
                    "derived": "agreement",
                    "precisions": sorted(by_precision),
                    "runs": sorted(p.run_id for ps in by_precision.values() for p in ps.values()),
                }
            )
            run_id = self.store.start_run(
                key,
                "agreement",
                {"model": self.artifact.model, "engine": engine, "device": self.options.device},
            )
            self.store.finish_run(run_id, records)
            result.records += records

    def _cross_engine_agreement(self, result: EvalResult) -> None:
        """With several engines: each later engine's top-1 agreement with the first one, per precision."""
        engines = self.options.engines
        records = []
        for precision in self.options.precisions:
            reference = self.predictions.get((engines[0], precision), {})
            for engine in engines[1:]:
                for label, pred in self.predictions.get((engine, precision), {}).items():
                    testset, _, variant = label.partition("/")
                    if label in reference and testset in self.options.sets:
                        cell = self._cell(engine, precision, testset, variant or None)
                        records += [
                            {**r, "reference": f"{engines[0]}/{precision}"}
                            for r in agreement_records(cell, reference[label], pred)
                        ]
        if records:
            key = content_key(
                {
                    "derived": "engines",
                    "engines": engines,
                    "precisions": self.options.precisions,
                    "runs": sorted(p.run_id for ps in self.predictions.values() for p in ps.values()),
                }
            )
            run_id = self.store.start_run(key, "agreement", {"model": self.artifact.model})
            self.store.finish_run(run_id, records)
            result.records += records

    def _calibration_overlap(self, sample_sets: dict[str, list[SampleSet]], result: EvalResult) -> dict:
        """{precision: {set label: count}} of scored images that were calibration images (content hash)."""
        from benchbox.calibration_overlap import overlapping_samples

        overlap = overlapping_samples(self.artifact, self.options.precisions, sample_sets)
        for precision in self.options.precisions:
            for label, count in overlap[precision].items():
                result.warnings.append(
                    f"{precision}: {count} images of {label} were calibration images of this artifact: its numbers "
                    "there are optimistic (calibrating on the test set)."
                )
        return overlap

    def _flag_overlap(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for record in records:
            label = record["testset"] + (f"/{record['variant']}" if record.get("variant") else "")
            if label in self.overlap.get(record["precision"], {}):
                record["flags"] = [*(record.get("flags") or []), "calibration-overlap"]
        return records
