"""`benchbox check`: gates from a TOML policy over the store; exit 0 ready, 1 not ready, 2 cannot decide."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbox.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_POLICY = Path(__file__).with_name("default_policy.toml")
READY, NOT_READY, UNDECIDED = 0, 1, 2
KNOWN_GATES = {
    "max_top1_drop",
    "min_agreement_top1",
    "max_mce_increase",
    "max_p99_latency_ms",
    "no_nonfinite",
    "require_export_parity",
}


@dataclass
class GateResult:
    gate: str
    subject: str
    value: float | None
    threshold: str
    status: str  # pass, fail, skipped, undecided


def load_policy(path: Path | None) -> dict[str, Any]:
    path = path or DEFAULT_POLICY
    if not Path(path).is_file():
        raise UserError(f"Policy file {path} not found.", f"Start from the default: {DEFAULT_POLICY}")
    try:
        policy = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"Policy {path} is not valid TOML: {exc}") from exc
    unknown = set(policy.get("gates", {})) - KNOWN_GATES
    if unknown:
        raise UserError(
            f"Unknown gates in {path}: {', '.join(sorted(unknown))}.", f"Known gates: {', '.join(sorted(KNOWN_GATES))}"
        )
    return policy


def _key(r: dict[str, Any]) -> tuple:
    return (r.get("model"), r.get("engine"), r.get("device"), r.get("testset"), r.get("variant"))


def run_checks(records: list[dict[str, Any]], policy: dict[str, Any]) -> list[GateResult]:
    gates = policy.get("gates", {})
    base = policy.get("baseline_precision", "fp32")
    results: list[GateResult] = []
    if "max_top1_drop" in gates:
        results += _drop_gate(records, base, ("top1", "real_top1"), float(gates["max_top1_drop"]), "max_top1_drop")
    if "max_mce_increase" in gates:
        results += _drop_gate(
            records, base, ("mce",), float(gates["max_mce_increase"]), "max_mce_increase", higher_is_worse=True
        )
    if "min_agreement_top1" in gates:
        threshold = float(gates["min_agreement_top1"])
        rows = [r for r in records if r["metric"] == "agreement_top1" and r.get("reference", "").endswith(base)]
        results += [
            _result(
                "min_agreement_top1",
                r,
                r["value"],
                f">= {threshold}",
                r["value"] is not None and r["value"] >= threshold,
            )
            for r in rows
        ]
        if not rows:
            results.append(GateResult("min_agreement_top1", "—", None, f">= {threshold}", "skipped"))
    if "max_p99_latency_ms" in gates:
        spec = gates["max_p99_latency_ms"]
        batch, limit = int(spec.get("batch_size", 1)), float(spec["value"])
        rows = [r for r in records if r["metric"] == "latency_p99_ms" and r.get("batch_size") == batch]
        results += [
            _result(
                "max_p99_latency_ms",
                r,
                r["value"],
                f"<= {limit} (batch {batch})",
                r["value"] is not None and r["value"] <= limit,
            )
            for r in rows
        ]
        if not rows:
            results.append(GateResult("max_p99_latency_ms", "—", None, f"<= {limit} (batch {batch})", "skipped"))
    if gates.get("no_nonfinite"):
        rows = [r for r in records if r["metric"] == "nonfinite_outputs"]
        results += [_result("no_nonfinite", r, r["value"], "== 0", not r["value"]) for r in rows if r["value"]]
        if rows and not any(r["value"] for r in rows):
            results.append(GateResult("no_nonfinite", f"{len(rows)} cells", 0.0, "== 0", "pass"))
    if gates.get("require_export_parity"):
        rows = [r for r in records if r.get("engine") == "export" and r["precision"] == base]
        agreement = [r for r in rows if r["metric"] == "parity_top1_agreement"]
        diff = [r for r in rows if r["metric"] == "parity_max_abs_diff"]
        results += [_result("require_export_parity", r, r["value"], "== 100", r["value"] == 100.0) for r in agreement]
        results += [_result("require_export_parity", r, r["value"], "< 0.001", r["value"] < 1e-3) for r in diff]
        if not rows:
            results.append(GateResult("require_export_parity", "—", None, "recorded", "skipped"))
    return results


def _result(gate: str, r: dict[str, Any], value, threshold: str, ok: bool) -> GateResult:
    subject = "/".join(str(x) for x in (r.get("engine"), r.get("precision"), r.get("testset"), r.get("variant")) if x)
    if r.get("batch_size"):
        subject += f" batch {r['batch_size']}"
    return GateResult(gate, subject, value, threshold, "pass" if ok else "fail")


def _drop_gate(
    records, base: str, metrics: tuple[str, ...], limit: float, gate: str, higher_is_worse: bool = False
) -> list[GateResult]:
    out = []
    for metric in metrics:
        rows = [r for r in records if r["metric"] == metric and r.get("value") is not None]
        baseline = {_key(r): r["value"] for r in rows if r["precision"] == base}
        for r in rows:
            if r["precision"] == base:
                continue
            reference = baseline.get(_key(r))
            if reference is None:
                out.append(
                    GateResult(
                        gate, f"{r['engine']}/{r['precision']}/{r['testset']}", None, f"no {base} baseline", "undecided"
                    )
                )
                continue
            change = r["value"] - reference if higher_is_worse else reference - r["value"]
            out.append(_result(gate, {**r, "variant": r.get("variant")}, change, f"<= {limit}", change <= limit))
    if not out:
        out.append(GateResult(gate, "—", None, f"<= {limit}", "skipped"))
    return out


def verdict(results: list[GateResult], records: list[dict[str, Any]], base: str = "fp32") -> int:
    """0 ready, 1 not ready, 2 cannot decide (no records, no baseline, or a comparison without its baseline)."""
    if not records or not any(r["precision"] == base and r["metric"] in ("top1", "real_top1", "mce") for r in records):
        return UNDECIDED
    if any(r.status == "fail" for r in results):
        return NOT_READY
    if any(r.status == "undecided" for r in results):
        return UNDECIDED
    return READY


def check_and_print(store: Path, policy: Path | None) -> int:
    """Run the gates on a store, print the verdict table, return the exit code."""
    from rich.table import Table

    from benchbox.console import console
    from benchbox.store import ResultStore

    rules = load_policy(policy)
    if not (store / "index.sqlite").is_file():
        console.print(f"[yellow]cannot decide:[/yellow] no results store at {store}")
        return 2
    records = ResultStore(store).records()
    results = run_checks(records, rules)
    table = Table(title=f"readiness ({policy or 'default policy'})")
    for column in ("gate", "subject", "value", "threshold", "result"):
        table.add_column(column, overflow="fold")
    colours = {"pass": "green", "fail": "red", "skipped": "dim", "undecided": "yellow"}
    for r in results:
        value = "—" if r.value is None else f"{r.value:.4g}"
        table.add_row(r.gate, r.subject, value, r.threshold, f"[{colours[r.status]}]{r.status}[/]")
    console.print(table)
    code = verdict(results, records, rules.get("baseline_precision", "fp32"))
    console.print(
        {
            0: "[bold green]READY[/]",
            1: "[bold red]NOT READY[/]",
            2: "[bold yellow]CANNOT DECIDE[/] (no baseline results in the store)",
        }[code]
    )
    return code
