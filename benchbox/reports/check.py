"""`benchbox check`: the verdict of a policy over a store, in the terminal (gate table, then the cost table), as
JSON (`--json FILE`), with each gate's arithmetic (`--explain`); exit 0 ready, 1 not ready, 2 cannot decide.

The gates and the decision rule are benchbox.reports.verdict; the policy format is benchbox.reports.policy.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchbox.errors import UserError, printable
from benchbox.reports.policy import DEFAULT_POLICY, Policy, load_policy  # noqa: F401 - re-exported
from benchbox.reports.verdict import Gate, VerdictResult, decide
from benchbox.vocabulary import GateStatus, Verdict

READY, NOT_READY, UNDECIDED = 0, 1, 2
COLOURS = {"pass": "green", "fail": "red", "skipped": "dim", "undecided": "yellow", "info": "cyan"}


def summarized(results: list[Gate], shown: int = 12) -> list[Gate]:
    """For the terminal: passes folded into one row per gate (with the value range), at most `shown` rows of each
    other outcome per gate."""
    rows: list[Gate] = []
    for gate in dict.fromkeys(r.gate for r in results):
        mine = [r for r in results if r.gate == gate]
        passed = [r for r in mine if r.status == GateStatus.PASS]
        if len(passed) > 1:
            values = [r.value for r in passed if isinstance(r.value, (int, float))]
            folded = Gate(gate, f"{len(passed)} subjects", GateStatus.PASS, None, passed[0].limit)
            if values:
                folded.reason = f"values {min(values):.4g} .. {max(values):.4g}"
            rows.append(folded)
        else:
            rows += passed
        for status in (GateStatus.FAIL, GateStatus.UNDECIDED, GateStatus.INFO, GateStatus.SKIPPED):
            others = [r for r in mine if r.status == status]
            rows += others[:shown]
            if len(others) > shown:
                rows.append(Gate(gate, f"... and {len(others) - shown} more", status, None, others[0].limit))
    return rows


def print_verdict(result: VerdictResult, explain: bool = False, title: str | None = None) -> None:
    """The gate table, the verdict line, and with `explain` every gate's arithmetic."""
    from rich.markup import escape
    from rich.table import Table

    from benchbox.console import console, print_cost_table

    table = Table(title=escape(title or f"readiness ({result.policy.source}, decide = {result.policy.decide})"))
    for column in ("gate", "subject", "value [95% CI]", "limit", "result", "why"):
        table.add_column(column, overflow="fold")
    for g in summarized(result.gates):
        limit = g.limit if not isinstance(g.limit, dict) else g.limit.get("value")
        scope = "" if g.scope == "[gates]" else f" {g.scope}"
        table.add_row(
            escape(g.gate),
            escape(g.subject),
            escape(g.value_text()),
            escape(f"{limit}{scope}"),
            f"[{COLOURS[str(g.status)]}]{g.status}[/]",
            escape(g.reason),
        )
    console.print(table)
    print_cost_table(result.cost)
    for problem in result.problems:
        console.print(f"[yellow]note:[/yellow] {escape(problem)}")
    if explain:
        console.rule("how each gate was decided")
        for g in result.gates:
            if g.arithmetic:
                console.print(f"{g.gate} {g.scope} {g.subject}: {g.arithmetic} -> {g.status}", markup=False)
    colour = {Verdict.READY: "green", Verdict.NOT_READY: "red", Verdict.CANNOT_DECIDE: "yellow"}[result.verdict]
    console.print(f"[bold {colour}]{result.verdict.words}[/]: {escape(result.why)}")


def check_store(
    store: Path, policy: Path | None, baseline_model: str | None = None, other_stores: tuple[Path, ...] = ()
) -> VerdictResult:
    """Decide the policy over a store opened read-only (no store: cannot decide, with why). `baseline_model`:
    gate every other model against that one instead of each model's precisions against its baseline precision;
    `other_stores`: read these stores beside it, as one (models scored in different stores)."""
    from benchbox.reports.comparison import Comparison
    from benchbox.store import ResultStore, StoreUnion

    rules = load_policy(policy)
    for folder in (store, *other_stores):
        if not (Path(folder) / "index.sqlite").is_file():
            return VerdictResult(Verdict.CANNOT_DECIDE, f"no results store at {printable(folder)}", rules)
    opened = ResultStore(store, read_only=True)
    if other_stores:
        opened = StoreUnion([opened, *(ResultStore(s, read_only=True) for s in other_stores)])
    comparison = Comparison(opened, rules.baseline_precision, baseline_model=baseline_model)
    result = decide(opened, rules, comparison=comparison)
    if baseline_model is not None and not any(r.kind == "model" for r in result.cost):
        from benchbox.vocabulary import Verdict as V

        why = f"nothing to compare with {baseline_model}: no other model scored on the same sets and cells"
        result.verdict, result.why = V.CANNOT_DECIDE, "; ".join([why, *comparison.problems[:1]])
    return result


def check_and_print(
    store: Path,
    policy: Path | None,
    json_path: Path | None = None,
    explain: bool = False,
    junit_path: Path | None = None,
    baseline_model: str | None = None,
    other_stores: tuple[Path, ...] = (),
) -> int:
    """Run the gates on a store, print the verdict (and write --json / --junit), return the exit code."""
    result = check_store(store, policy, baseline_model, other_stores)
    print_verdict(result, explain)
    if json_path is not None:
        write_verdict_json(json_path, result)
    if junit_path is not None:
        from benchbox.reports.junit import write_junit

        write_junit(junit_path, result)
    return result.exit_code


def write_verdict_json(path: Path, result: VerdictResult) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result.to_json(), indent=2))
    except OSError as exc:
        raise UserError(f"Cannot write {printable(path)}: {exc.strerror or exc}.") from exc
