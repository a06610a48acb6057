"""`benchbox run PLAN.toml`: export, eval, bench, report and check for every model in a plan, resumably.

Finished cells are skipped on a re-run (exports by content key, eval cells from the store, bench cells
with skip_done); one broken model or cell is recorded with its error and the rest go on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbox.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTIONS = {"output", "models", "export", "eval", "bench", "check"}


@dataclass
class PlanOutcome:
    failures: list[str] = field(default_factory=list)
    report: dict[str, Path] = field(default_factory=dict)
    verdict: int | None = None


def load_plan(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(
            f"Plan {path} not found.", "See examples/plan.toml in the benchbox repository for a complete example."
        )
    try:
        plan = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"Plan {path} is not valid TOML: {exc}") from exc
    unknown = set(plan) - SECTIONS
    if unknown:
        raise UserError(
            f"Unknown sections in {path}: {', '.join(sorted(unknown))}.",
            f"Known sections: {', '.join(sorted(SECTIONS))}",
        )
    if not plan.get("models"):
        raise UserError(f"Plan {path} has no [[models]].", 'Add e.g. [[models]] name = "efficientnet_lite0".')
    return plan


def _path(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _list(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, (str, int)) else list(value)


def run_plan(path: Path, on_progress=None, echo=print) -> PlanOutcome:
    """Carry out a plan; returns failures, the report paths and the check verdict."""
    from benchbox.bench import BenchOptions, run_bench
    from benchbox.build import build_artifacts
    from benchbox.datasets.catalog import parse_sets
    from benchbox.evaluate import EvalOptions, Evaluator
    from benchbox.exporters.manifest import content_key
    from benchbox.reports.report import build_report
    from benchbox.store import ResultStore, make_record

    plan = load_plan(path)
    base = path.parent.resolve()
    out = _path(base, plan.get("output", {}).get("dir", "benchbox-run"))
    store = ResultStore(out / "store")
    outcome = PlanOutcome()
    export_cfg, eval_cfg, bench_cfg = plan.get("export", {}), plan.get("eval"), plan.get("bench")
    for model in plan["models"]:
        name = model["name"]
        try:
            artifact = build_artifacts(
                name,
                out / "artifacts" / name.replace(":", "_").replace("/", "_"),
                _path(base, model.get("checkpoint")),
                _list(export_cfg.get("precisions", ["fp32"])),
                _path(base, export_cfg.get("calib_data")),
                int(export_cfg.get("calib_size", 256)),
                export_cfg.get("calib_method", "entropy"),
                int(export_cfg.get("opset", 18)),
            )
        except Exception as exc:  # a broken model is recorded; the other models go on
            message = f"{type(exc).__name__}: {exc}"
            cell = {"model": name, "engine": "export"}
            run_id = store.start_run(content_key({"plan-export": name}), "export", cell)
            store.fail_run(run_id, message, [make_record(cell, "error", None, 0, error=message)])
            outcome.failures.append(f"export {name}: {message}")
            echo(f"export {name} failed: {message}")
            continue
        if eval_cfg:
            sets_value = eval_cfg.get("sets", "val")
            sets_text = sets_value if isinstance(sets_value, str) else ",".join(sets_value)
            options = EvalOptions(
                engines=_list(eval_cfg.get("engines", ["ort"])),
                precisions=_list(eval_cfg.get("precisions", ["fp32"])),
                sets=parse_sets(sets_text),
                all_sets=sets_text == "all",
                data_root=_path(base, eval_cfg.get("data_root")),
                limit=eval_cfg.get("limit"),
                batch_size=int(eval_cfg.get("batch_size", 32)),
                real_labels=_path(base, eval_cfg.get("real_labels")),
                paths={k: _path(base, v) for k, v in eval_cfg.get("paths", {}).items()},
            )
            try:
                result = Evaluator(artifact, store, options, on_progress).run()
                outcome.failures += result.failures
            except UserError as exc:
                outcome.failures.append(f"eval {name}: {exc.message}")
                echo(f"eval {name} failed: {exc}")
        if bench_cfg:
            options = BenchOptions(
                engines=_list(bench_cfg.get("engines", ["ort"])),
                precisions=_list(bench_cfg.get("precisions", ["fp32"])),
                batch_sizes=[int(b) for b in _list(bench_cfg.get("batch_sizes", [1, 8, 32]))],
                warmup_s=float(bench_cfg.get("warmup", 1.0)),
                duration_s=float(bench_cfg.get("duration", 3.0)),
                threads=bench_cfg.get("threads"),
                skip_done=True,
            )
            try:
                outcome.failures += run_bench(artifact, store, options, on_progress).failures
            except UserError as exc:
                outcome.failures.append(f"bench {name}: {exc.message}")
    outcome.report = build_report(out / "store", out / "report")
    from benchbox.reports.check import check_and_print

    outcome.verdict = check_and_print(out / "store", _path(base, plan.get("check", {}).get("policy")))
    return outcome
