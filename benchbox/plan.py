"""`benchbox run PLAN.toml`: export, eval, bench, report and check for every model in a plan, resumably.

The whole plan is validated before any work starts, with the same option schema as the command line
(unknown sections or keys, wrong types and out-of-range values are errors with did-you-mean). Finished cells
are skipped on a re-run (exports by content key, eval cells from the store, bench cells by key); one broken
model or cell is recorded with its error and the rest go on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbox.errors import UserError, printable
from benchbox.options import (
    BenchOptions,
    EvalOptions,
    ExportOptions,
    ModelOptions,
    Opt,
    convert,
    did_you_mean,
    parse_options,
)
from benchbox.records import Cell, Record, failure_record

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTIONS = ("output", "models", "export", "eval", "bench", "check", "ray", "tracking")


@dataclass(frozen=True)
class Plan:
    """A validated plan: every value typed and checked. Input paths (data, calibration images, checkpoints,
    policy) resolve against the plan's folder; the output folder against the current directory, so running a plan
    from a source tree writes nothing into it."""

    path: Path
    out: Path
    models: tuple[ModelOptions, ...]
    export: ExportOptions
    evals: tuple[EvalOptions, ...]  # [eval], or several [[eval]] (e.g. one engine on every set, another on val)
    bench: BenchOptions | None  # None without [bench]
    policy: Path | None
    ray: dict[str, Any] = field(default_factory=dict)  # the validated [ray] table (see distributed/settings.py)
    targets_trt: bool = False  # a model of this plan is meant for TensorRT (its lint is judged)
    mlflow: str | None = None  # [tracking] mlflow: the tracking URI the plan's results are logged to
    calib_note: str | None = None  # said with INT8 calibration (the demo: which images, and that they are held out)

    @property
    def eval(self) -> EvalOptions | None:
        return self.evals[0] if self.evals else None


@dataclass
class PlanOutcome:
    failures: list[str] = field(default_factory=list)
    report: dict[str, Path] = field(default_factory=dict)
    verdict: int | None = None
    records: list[Record] = field(default_factory=list)
    result: Any = None  # the VerdictResult
    warnings: list[str] = field(default_factory=list)


def _table(plan: dict[str, Any], name: str, where: str) -> dict[str, Any] | None:
    value = plan.get(name)
    if value is not None and not isinstance(value, dict):
        raise UserError(f"[{name}] in {where} must be a table, got {type(value).__name__}.")
    return value


def load_plan(path: Path) -> Plan:
    """Read and validate a plan file; every mistake is a UserError naming the section and key."""
    if not path.is_file():
        raise UserError(
            f"Plan {printable(path)} not found.", "See examples/plan.toml in the benchbox repository for an example."
        )
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"Plan {printable(path)} is not valid TOML: {exc}") from exc
    where = printable(path)
    for section in raw:
        if section not in SECTIONS:
            raise UserError(
                f"Unknown section [{section}] in {where}.{did_you_mean(section, list(SECTIONS))}",
                f"Known sections: {', '.join(SECTIONS)}",
            )
    base = path.parent.resolve()
    output = _table(raw, "output", where) or {}
    for key in output:
        if key != "dir":
            raise UserError(f"Unknown option {key!r} in [output] of {where}.{did_you_mean(key, ['dir'])}")
    out = convert(
        Opt("dir", "path", "benchbox-run", "output folder"),
        output.get("dir", "benchbox-run"),
        f"[output] of {where}",
        Path.cwd(),
    )
    models_raw = raw.get("models")
    if not isinstance(models_raw, list) or not models_raw or not all(isinstance(m, dict) for m in models_raw):
        raise UserError(f"Plan {where} has no [[models]] entries.", 'Add e.g. [[models]] name = "efficientnet_lite0".')
    models = []
    for i, entry in enumerate(models_raw):
        if "name" not in entry:
            raise UserError(f"[[models]] entry {i + 1} of {where} has no name.")
        models.append(parse_options(ModelOptions, entry, f"[[models]] {i + 1} of {where}", base))
    check = _table(raw, "check", where) or {}
    for key in check:
        if key != "policy":
            raise UserError(f"Unknown option {key!r} in [check] of {where}.{did_you_mean(key, ['policy'])}")
    policy = convert(Opt("policy", "path", None, "policy file"), check.get("policy"), f"[check] of {where}", base)
    if policy is not None:
        from benchbox.reports.check import load_policy

        load_policy(policy)  # a broken policy fails now, not after an hour of evaluation
    bench_table = _table(raw, "bench", where)
    evals = tuple(
        parse_options(
            EvalOptions, table, f"[eval]{f' {i + 1}' if isinstance(raw['eval'], list) else ''} of {where}", base, True
        )
        for i, table in enumerate(_tables(raw, "eval", where))
    )
    tracking = _table(raw, "tracking", where) or {}
    for key in tracking:
        if key != "mlflow":
            raise UserError(f"Unknown option {key!r} in [tracking] of {where}.{did_you_mean(key, ['mlflow'])}")
    mlflow = convert(Opt("mlflow", "str", None, "tracking URI"), tracking.get("mlflow"), f"[tracking] of {where}")
    ray_table = _table(raw, "ray", where) or {}
    from benchbox.distributed.settings import ray_settings

    ray_settings(ray_table, where)  # a mistake in [ray] fails now, even on a local run of the plan
    plan = Plan(
        path=path,
        out=out,
        models=tuple(models),
        export=parse_options(ExportOptions, _table(raw, "export", where) or {}, f"[export] of {where}", base, True),
        evals=evals,
        bench=parse_options(BenchOptions, bench_table, f"[bench] of {where}", base, True) if bench_table else None,
        policy=policy,
        ray=ray_table,
        mlflow=mlflow,
    )
    return plan


def _tables(raw: dict[str, Any], name: str, where: str) -> list[dict[str, Any]]:
    """A section given once ([eval]) or several times ([[eval]])."""
    value = raw.get(name)
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    raise UserError(f"[{name}] in {where} must be a table or an array of tables ([[{name}]]).")


def check_inputs(plan: Plan) -> None:
    """Every folder and file the plan reads exists, before any export (a missing data root used to be found after
    the export, a minute or an hour in)."""
    where = printable(plan.path)
    checks: list[tuple[str, Path | None, str]] = [
        ("[export] calib_data", plan.export.calib_data, "dir"),
        ("[check] policy", plan.policy, "file"),
    ]
    for i, model in enumerate(plan.models):
        checks.append((f"[[models]] {i + 1} checkpoint", model.checkpoint, "file"))
        if model.name.lower().endswith(".onnx"):
            checks.append((f"[[models]] {i + 1} name", Path(model.name), "file"))
    for options in plan.evals:
        checks.append(("[eval] data_root", options.data_root, "dir"))
        checks.append(("[eval] real_labels", options.real_labels, "file"))
        checks += [(f"[eval] paths.{name}", folder, "any") for name, folder in options.paths.items()]
    for label, target, kind in checks:
        if target is None:
            continue
        from benchbox.datasets.sources import source_exists

        checks_by_kind = {"dir": Path.is_dir, "file": Path.is_file, "any": source_exists}
        ok = checks_by_kind[kind](target if kind == "any" else Path(target))
        if not ok:
            raise UserError(
                f"{label} of {where} is {printable(target)}, which does not exist"
                + (
                    " (relative paths resolve against the plan's folder)."
                    if not Path(str(target)).is_absolute()
                    else "."
                ),
                "Fix the path in the plan; nothing has been exported or evaluated yet.",
            )


def artifact_dir(plan: Plan, model: Any) -> Path:
    from benchbox.build import default_out

    return plan.out / "artifacts" / default_out(model.name).name


def _run_model(plan: Plan, model, store, outcome: PlanOutcome, executor, on_progress, echo) -> None:
    """Export, lint, eval and bench of one model; each failure is recorded and the rest go on."""
    from dataclasses import replace

    from benchbox.artifact import content_key
    from benchbox.bench import run_bench
    from benchbox.build import build_artifacts
    from benchbox.evaluation.evaluator import Evaluator
    from benchbox.exporters.lint import lint_records

    try:
        artifact = build_artifacts(
            model.name,
            artifact_dir(plan, model),
            plan.export,
            model,
            calib_note=plan.calib_note,
            on_step=lambda text, m=model.name: echo(f"export {m}: {text}"),
        )
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a broken model is recorded (even one whose code exits); the others go on
        message = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        cell = Cell(model.name, "export", "cpu", "fp32")
        run_id = store.start_run(content_key({"plan-export": model.name, "why": message}), "export", cell)
        store.fail_run(run_id, message, [failure_record(cell, message)])
        outcome.failures.append(f"export {model.name}: {message}")
        echo(f"export {model.name} failed: {message}")
        return
    sizes = [*(plan.bench.batch_sizes if plan.bench else []), *(e.batch_size for e in plan.evals)]
    lint_records(artifact, store, None, sizes or None, target=plan.targets_trt or _targets_trt(plan))
    for eval_options in plan.evals:
        for device in executor.settings.devices(eval_options.device) if executor else [eval_options.device]:
            try:
                policy = eval_options.policy or plan.policy  # --until-decided decides the plan's own policy
                options = replace(eval_options, store=plan.out / "store", device=device, policy=policy)
                result = Evaluator(artifact, store, options, on_progress, executor).run()
                outcome.failures += result.failures
                outcome.records += result.records
                outcome.warnings += [w for w in result.warnings if w not in outcome.warnings]
            except UserError as exc:
                outcome.failures.append(f"eval {model.name} ({device}): {exc.message}")
                echo(f"eval {model.name} ({device}) failed: {exc}")
    if plan.bench is not None:
        for device in executor.settings.devices(plan.bench.device) if executor else [plan.bench.device]:
            options = replace(plan.bench, device=device)
            try:
                if executor is not None:
                    outcome.failures += executor.bench(artifact, store, options)
                else:
                    outcome.failures += run_bench(artifact, store, options, on_progress, skip_done=True).failures
            except UserError as exc:
                outcome.failures.append(f"bench {model.name} ({device}): {exc.message}")


def _targets_trt(plan: Plan) -> bool:
    """A plan that evaluates or benches with TensorRT, or through ORT's TensorRT provider, or builds engines."""
    runs = [*plan.evals, *([plan.bench] if plan.bench else [])]
    return plan.export.trt or any("trt" in o.engines or str(o.device).startswith("tensorrt") for o in runs)


def run_plan(
    plan: Path | Plan,
    on_progress=None,
    echo: Callable[[str], None] = print,
    ray: str | None = None,
    mlflow: str | None = None,
) -> PlanOutcome:
    """Carry out a plan (a file, or a Plan built in code: the demo's), here or on a Ray cluster (`ray`: its address,
    over the plan's [ray] table); returns failures, the report paths, the verdict and the eval records."""
    from benchbox.distributed.settings import ray_settings
    from benchbox.reports.check import check_store, print_verdict
    from benchbox.reports.report import build_report
    from benchbox.store import ResultStore

    plan = plan if isinstance(plan, Plan) else load_plan(plan)
    executor = None
    settings = ray_settings(plan.ray, printable(plan.path), ray)
    check_inputs(plan)
    if settings is not None:
        from benchbox.distributed.ray import RayExecutor

        executor = RayExecutor(settings, on_progress, echo)
    store = ResultStore(plan.out / "store")
    outcome = PlanOutcome()
    try:
        for model in plan.models:
            _run_model(plan, model, store, outcome, executor, on_progress, echo)
    finally:
        if executor is not None:
            executor.close()
    result = check_store(plan.out / "store", plan.policy)
    outcome.report = build_report(plan.out / "store", plan.out / "report", plan.policy, result)
    print_verdict(result)
    outcome.verdict = result.exit_code
    outcome.result = result
    uri = mlflow or plan.mlflow
    if uri:
        from benchbox.tracking import log_store

        logged = log_store(uri, plan.out / "store", plan.policy, plan.out / "report", f"plan {plan.path.stem}")
        echo(f"mlflow: {len(logged['runs'])} run(s) under {logged['parent']}, {logged['new_metrics']} new metric(s)")
    return outcome
