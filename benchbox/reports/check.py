"""`benchbox check`: gates from a TOML policy over the store; exit 0 ready, 1 not ready, 2 cannot decide.

The policy is validated strictly (unknown keys or sections, wrong types: an error, not a silently ignored gate).
Comparisons pair a lower precision only with the baseline scored on the same samples (same digest); a pair
scored on different samples, a failed cell, or a policy under which no gate could be evaluated cannot decide.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbox.errors import UserError, printable
from benchbox.options import Opt, convert, did_you_mean
from benchbox.records import Record

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_POLICY = Path(__file__).with_name("default_policy.toml")
READY, NOT_READY, UNDECIDED = 0, 1, 2
GATES = {
    "max_top1_drop": Opt("max_top1_drop", "float", None, "percentage points of top-1 lost per set", minimum=0),
    "min_agreement_top1": Opt(
        "min_agreement_top1", "float", None, "percent same top-1 as the baseline", minimum=0, maximum=100
    ),
    "max_mce_increase": Opt("max_mce_increase", "float", None, "mCE points gained on ImageNet-C", minimum=0),
    "no_nonfinite": Opt("no_nonfinite", "bool", None, "no NaN/Inf outputs"),
    "require_export_parity": Opt("require_export_parity", "bool", None, "FP32 ONNX equals PyTorch"),
    "max_trt_lint_errors": Opt("max_trt_lint_errors", "int", None, "TensorRT readiness lint errors allowed", minimum=0),
}
LATENCY_GATE = "max_p99_latency_ms"
TOP_LEVEL = ("baseline_precision", "gates")
ACCURACY_METRICS = ("top1", "real_top1", "mce")


@dataclass
class GateResult:
    gate: str
    subject: str
    value: float | None
    threshold: str
    status: str  # pass, fail, skipped, undecided
    reason: str = ""


def load_policy(path: Path | None) -> dict[str, Any]:
    """The policy as {baseline_precision, gates}, every key and type checked."""
    path = Path(path or DEFAULT_POLICY)
    where = printable(path)
    if not path.is_file():
        raise UserError(f"Policy file {where} not found.", f"Start from the default: {DEFAULT_POLICY}")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"Policy {where} is not valid TOML: {exc}") from exc
    for key in raw:
        if key not in TOP_LEVEL:
            raise UserError(
                f"Unknown key {key!r} in policy {where}.{did_you_mean(key, list(TOP_LEVEL))}",
                "A policy has baseline_precision and a [gates] table.",
            )
    base = raw.get("baseline_precision", "fp32")
    base = convert(
        Opt("baseline_precision", "choice", "fp32", "baseline", choices=("fp32", "fp16", "bf16")),
        base,
        f"policy {where}",
    )
    gates_raw = raw.get("gates")
    if not isinstance(gates_raw, dict) or not gates_raw:
        raise UserError(f"Policy {where} defines no gates.", f"Add a [gates] table, e.g. from {DEFAULT_POLICY}.")
    gates: dict[str, Any] = {}
    known = [*GATES, LATENCY_GATE]
    for name, value in gates_raw.items():
        if name == LATENCY_GATE:
            gates[name] = _latency_gate(value, where)
        elif name in GATES:
            gates[name] = convert(GATES[name], value, f"[gates] of policy {where}", strict=True)
        else:
            raise UserError(
                f"Unknown gate {name!r} in policy {where}.{did_you_mean(name, known)}",
                f"Known gates: {', '.join(known)}",
            )
    return {"baseline_precision": base, "gates": gates}


def _latency_gate(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{LATENCY_GATE} in policy {where} must be a table with batch_size and value.")
    for key in value:
        if key not in ("batch_size", "value"):
            raise UserError(f"Unknown key {key!r} in [gates.{LATENCY_GATE}] of {where}.")
    if "value" not in value:
        raise UserError(f"[gates.{LATENCY_GATE}] of {where} needs value (milliseconds).")
    return {
        "batch_size": convert(
            Opt("batch_size", "int", 1, "batch", minimum=1), value.get("batch_size", 1), where, strict=True
        ),
        "value": convert(Opt("value", "float", None, "ms", positive=True), value["value"], where, strict=True),
    }


def _subject(r: Record) -> str:
    c = r.cell
    subject = "/".join(str(x) for x in (c.engine, c.precision, c.testset, c.variant) if x)
    return subject + (f" batch {r.batch_size}" if r.batch_size else "")


def _pair_key(r: Record) -> tuple:
    return (r.cell.model, r.cell.engine, r.cell.device, r.cell.testset, r.cell.variant, r.metric, r.reference)


def _threshold_results(gate, rows, threshold_text, ok) -> list[GateResult]:
    results = [GateResult(gate, _subject(r), r.value, threshold_text, "pass" if ok(r.value) else "fail") for r in rows]
    return results or [GateResult(gate, "—", None, threshold_text, "skipped", "no records to check")]


def _drop_gate(records, base, metrics, limit, gate, higher_is_worse=False) -> list[GateResult]:
    """Lower precisions against the baseline on the same engine, set variant and samples."""
    out = []
    rows = [r for r in records if r.metric in metrics and r.value is not None]
    baselines: dict[tuple, list[Record]] = {}
    for r in rows:
        if r.cell.precision == base:
            baselines.setdefault(_pair_key(r), []).append(r)
    for r in rows:
        if r.cell.precision == base:
            continue
        if "generated" in r.flags:
            out.append(
                GateResult(
                    gate, _subject(r), None, f"<= {limit}", "skipped", "generated images: their labels mean nothing"
                )
            )
            continue
        candidates = baselines.get(_pair_key(r), [])
        same = [b for b in candidates if b.samples == r.samples]
        if not same:
            reason = f"no {base} baseline"
            if candidates:
                reason = (
                    f"{base} was scored on other samples ({candidates[0].n} images) than {r.cell.precision} "
                    f"({r.n} images): re-run both on the same images"
                )
            out.append(GateResult(gate, _subject(r), None, f"<= {limit}", "undecided", reason))
            continue
        change = r.value - same[0].value if higher_is_worse else same[0].value - r.value
        out.append(GateResult(gate, _subject(r), change, f"<= {limit}", "pass" if change <= limit else "fail"))
    return out or [GateResult(gate, "—", None, f"<= {limit}", "skipped", "no lower precision to compare")]


def run_checks(records: list[Record], policy: dict[str, Any]) -> list[GateResult]:
    gates, base = policy["gates"], policy.get("baseline_precision", "fp32")
    results: list[GateResult] = []
    if "max_top1_drop" in gates:
        results += _drop_gate(records, base, ("top1", "real_top1"), gates["max_top1_drop"], "max_top1_drop")
    if "max_mce_increase" in gates:
        results += _drop_gate(records, base, ("mce",), gates["max_mce_increase"], "max_mce_increase", True)
    if "min_agreement_top1" in gates:
        limit = gates["min_agreement_top1"]
        rows = [r for r in records if r.metric == "agreement_top1" and (r.reference or "").endswith(f"/{base}")]
        results += _threshold_results("min_agreement_top1", rows, f">= {limit}", lambda v: v is not None and v >= limit)
    if LATENCY_GATE in gates:
        batch, limit = gates[LATENCY_GATE]["batch_size"], gates[LATENCY_GATE]["value"]
        rows = [r for r in records if r.metric == "latency_p99_ms" and r.batch_size == batch]
        results += _threshold_results(
            LATENCY_GATE, rows, f"<= {limit} (batch {batch})", lambda v: v is not None and v <= limit
        )
    if gates.get("no_nonfinite"):
        rows = [r for r in records if r.metric == "nonfinite_outputs"]
        failing = [r for r in rows if r.value]
        results += [GateResult("no_nonfinite", _subject(r), r.value, "== 0", "fail") for r in failing]
        if rows and not failing:
            results.append(GateResult("no_nonfinite", f"{len(rows)} cells", 0.0, "== 0", "pass"))
    if gates.get("require_export_parity"):
        rows = [r for r in records if r.cell.engine == "export" and r.cell.precision == base]
        checks = {
            "parity_top1_agreement": ("== 100", lambda v: v == 100.0),
            "parity_max_abs_diff": ("< 0.001", lambda v: v is not None and v < 1e-3),
        }
        for r in rows:
            if r.metric in checks:
                text, ok = checks[r.metric]
                results.append(
                    GateResult("require_export_parity", _subject(r), r.value, text, "pass" if ok(r.value) else "fail")
                )
        if not rows:
            results.append(GateResult("require_export_parity", "—", None, "recorded", "skipped", "no parity records"))
    if "max_trt_lint_errors" in gates:
        limit = gates["max_trt_lint_errors"]
        rows = [r for r in records if r.metric == "trt_lint_errors"]
        results += _threshold_results(
            "max_trt_lint_errors", rows, f"<= {limit}", lambda v: v is not None and v <= limit
        )
    for r in records:  # a failed cell means a missing number: nobody can say it would have passed
        if r.metric == "failed":
            results.append(GateResult("no_failed_cells", _subject(r), None, "no failures", "undecided", r.error or ""))
    return results


def verdict(results: list[GateResult], records: list[Record], base: str = "fp32") -> tuple[int, str]:
    """(exit code, why): 0 ready, 1 not ready, 2 cannot decide."""
    if not records:
        return UNDECIDED, "the store holds no results"
    if not any(r.cell.precision == base and r.metric in ACCURACY_METRICS for r in records):
        return UNDECIDED, f"no {base} baseline results in the store"
    if any(r.status == "fail" for r in results):
        return NOT_READY, "a gate failed"
    if any(r.status == "undecided" for r in results):
        return UNDECIDED, "a comparison could not be made (see the reasons above)"
    if not any(r.status == "pass" for r in results):
        return UNDECIDED, "no gate of the policy could be evaluated on these results"
    return READY, "every gate with data passed"


def summarized(results: list[GateResult], shown: int = 12) -> list[GateResult]:
    """For the terminal: passes folded into one row per gate (with the worst value), at most `shown` rows of each
    other outcome per gate."""
    rows: list[GateResult] = []
    for gate in dict.fromkeys(r.gate for r in results):
        mine = [r for r in results if r.gate == gate]
        passed = [r for r in mine if r.status == "pass"]
        if len(passed) > 1:
            values = [r.value for r in passed if r.value is not None]
            span = f"{min(values):.4g} .. {max(values):.4g}" if values else None
            rows.append(GateResult(gate, f"{len(passed)} subjects", span, passed[0].threshold, "pass"))
        else:
            rows += passed
        for status in ("fail", "undecided", "skipped"):
            others = [r for r in mine if r.status == status]
            rows += others[:shown]
            if len(others) > shown:
                rows.append(GateResult(gate, f"... and {len(others) - shown} more", None, others[0].threshold, status))
    return rows


def check_and_print(store: Path, policy: Path | None) -> int:
    """Run the gates on a store (opened read-only), print the verdict table, return the exit code."""
    from rich.markup import escape
    from rich.table import Table

    from benchbox.console import console
    from benchbox.store import ResultStore

    rules = load_policy(policy)
    if not (Path(store) / "index.sqlite").is_file():
        console.print(f"[yellow]CANNOT DECIDE:[/yellow] no results store at {escape(printable(store))}")
        return UNDECIDED
    records = ResultStore(store, read_only=True).records()
    results = run_checks(records, rules)
    table = Table(title=f"readiness ({printable(policy) if policy else 'default policy'})")
    for column in ("gate", "subject", "value", "threshold", "result", "why"):
        table.add_column(column, overflow="fold")
    colours = {"pass": "green", "fail": "red", "skipped": "dim", "undecided": "yellow"}
    for r in summarized(results):
        value = "—" if r.value is None else f"{r.value:.4g}" if isinstance(r.value, float) else str(r.value)
        table.add_row(
            escape(r.gate),
            escape(r.subject),
            value,
            escape(r.threshold),
            f"[{colours[r.status]}]{r.status}[/]",
            escape(r.reason),
        )
    console.print(table)
    code, why = verdict(results, records, rules["baseline_precision"])
    label = {0: "[bold green]READY[/]", 1: "[bold red]NOT READY[/]", 2: "[bold yellow]CANNOT DECIDE[/]"}[code]
    console.print(f"{label}: {escape(why)}")
    return code
