"""The verdict: every gate of a policy decided over the cost table and the store's records, as one object that
`check` (terminal, --json, --explain), `report` (results.json, report.md, report.html) and a plan all render.

Decision rule `interval` (the default): a gate passes when the worst end of its 95 % interval is within the limit,
fails when its best end is beyond it, and otherwise cannot decide, with about how many images would decide it
(intervals narrow as 1/sqrt(n)). `point` compares the estimate alone. Gates without an interval (non-finite
outputs, parity, lint, latency) compare their value. A gate applies only to what it concerns: the TensorRT lint
gate to models that target TensorRT, a [sets.NAME] limit to that set.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from benchbox.records import Record
from benchbox.reports.comparison import BASELINE_KINDS, Comparison, CostRow, deployment_rows, sort_key
from benchbox.reports.policy import GATES, LATENCY_GATE, Policy
from benchbox.vocabulary import GateStatus, Verdict

PARITY_CHECKS = {
    "parity_top1_agreement": ("== 100", lambda v: v == 100.0),
    "parity_max_abs_diff": ("< 0.001", lambda v: v is not None and v < 1e-3),
}


@dataclass
class Gate:
    """One gate decided for one subject."""

    gate: str
    subject: str
    status: str
    value: float | None = None
    limit: Any = None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str = ""
    set: str | None = None
    model: str | None = None
    model_id: str | None = None
    needed_images: int | None = None
    scope: str = "[gates]"
    arithmetic: str = ""  # what --explain prints

    def value_text(self) -> str:
        """`2.667 [-0.647, 5.94]`: the value and its interval as the gate tables print them."""
        if self.value is None:
            return "—"
        text = f"{self.value + 0.0:.4g}" if isinstance(self.value, float) else str(self.value)  # + 0.0: no "-0"
        if self.ci_low is not None and self.ci_high is not None:
            text += f" [{self.ci_low + 0.0:.3g}, {self.ci_high + 0.0:.3g}]"
        return text

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("value", "ci_low", "ci_high"):
            if isinstance(data[key], float) and not math.isfinite(data[key]):
                data[key] = None
        return data


@dataclass
class VerdictResult:
    verdict: Verdict
    why: str
    policy: Policy
    gates: list[Gate] = field(default_factory=list)
    cost: list[CostRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "exit_code": self.exit_code,
            "why": self.why,
            "policy": self.policy.to_json(),
            "gates": [g.to_json() for g in self.gates],
            "problems": self.problems,
        }


def decide(store, policy: Policy, records: list[Record] | None = None, comparison: Comparison | None = None):
    """Decide every gate of `policy` on a store (read-only); the cost table comes along."""
    comparison = comparison or Comparison(store, policy.baseline_precision)
    rows = sorted(comparison.rows(), key=sort_key)
    if records is None:
        from benchbox.reports.comparison import current_cells

        records = store.records(exclude=current_cells(store).stale_runs)
    rows += deployment_rows(records, policy.baseline_precision)
    gates: list[Gate] = []
    for name, spec in GATES.items():
        if spec.metric is not None and policy.has(name):
            gates += _comparison_gates(name, spec, rows, records, policy)
    gates += _record_gates(records, policy)
    verdict, why = _verdict(gates, records, policy, rows)
    return VerdictResult(verdict, why, policy, gates, rows, list(comparison.problems))


def _subject(row: CostRow) -> str:
    where = "/".join(x for x in (row.set, row.variant) if x)
    return f"{row.model} {row.engine}/{row.precision} {where}".strip()


def _generated(records: list[Record]) -> set[tuple]:
    """(model_id, engine, precision, set) of cells scored on generated images (their labels mean nothing)."""
    return {
        (r.cell.model_id, r.cell.engine, r.cell.precision, r.cell.testset) for r in records if "generated" in r.flags
    }


def _comparison_gates(name: str, spec, rows: list[CostRow], records: list[Record], policy: Policy) -> list[Gate]:
    out = []
    generated = _generated(records)
    metrics = ("top1", "real_top1") if spec.metric == "top1" else (spec.metric,)
    for row in rows:
        if row.kind not in BASELINE_KINDS or row.metric not in metrics or (spec.sets and row.set not in spec.sets):
            continue
        if row.metric == "top1" and not (row.headline or row.set == "v2") or row.variant == "val-200-clean":
            continue
        if row.metric == "agreement_top1" and row.variant is not None:
            continue  # the set's pooled agreement is gated, not each of its variants
        limit = policy.limit(name, row.set)
        if limit is None:
            continue
        gate = Gate(
            name,
            _subject(row),
            GateStatus.SKIPPED,
            set=row.set,
            model=row.model,
            model_id=row.model_id,
            limit=limit,
            scope=policy.scope(name, row.set),
        )
        if (row.model_id, row.engine, row.precision, row.set) in generated:
            gate.reason = "generated images: their labels mean nothing (agreement still gates)"
            if spec.direction != "minimum":
                out.append(gate)
                continue
        if not row.paired:
            gate.status, gate.reason = GateStatus.UNDECIDED, row.reason
        elif spec.direction == "minimum":
            _decide_minimum(gate, row, policy)
        else:
            _decide_change(gate, row, spec.direction, policy)
        out.append(gate)
    if not out and any(policy.limit(name, s) is not None for s in (*policy.sets, None)):
        sets = ", ".join(spec.sets) if spec.sets else "any set"
        reason = f"nothing to compare: no lower precision beside its baseline on {sets}"
        if spec.metric == "mfr":
            reason += " (mFR also needs --p-baseline)"
        out.append(Gate(name, "—", GateStatus.SKIPPED, limit=policy.gates.get(name), reason=reason))
    return out


def _decide_change(gate: Gate, row: CostRow, direction: str, policy: Policy) -> None:
    """A drop or increase of the lower precision against the baseline, within `limit`."""
    if row.delta is None:
        gate.status, gate.reason = GateStatus.UNDECIDED, row.reason or "no value to compare"
        return
    sign = -1.0 if direction == "drop" else 1.0
    change = sign * row.delta
    gate.value = change
    lo, hi = (row.ci_low, row.ci_high) if row.ci_low is not None else (None, None)
    if lo is not None:
        gate.ci_low, gate.ci_high = sorted((sign * lo, sign * hi))
    gate.arithmetic = _arithmetic(row, direction, change, gate)
    if policy.decide == "point" or gate.ci_low is None:
        if gate.ci_low is None and policy.decide == "interval":
            gate.status, gate.reason = GateStatus.UNDECIDED, "no interval for this comparison"
            return
        gate.status = GateStatus.PASS if change <= gate.limit else GateStatus.FAIL
        return
    if gate.ci_high <= gate.limit:
        gate.status = GateStatus.PASS
    elif gate.ci_low > gate.limit:
        gate.status = GateStatus.FAIL
    else:
        gate.status = GateStatus.UNDECIDED
        _needed(gate, change, row)


def _decide_minimum(gate: Gate, row: CostRow, policy: Policy) -> None:
    """A floor on a percentage (agreement): pass when its interval's lower end is at or above it."""
    if row.value is None:
        gate.status, gate.reason = GateStatus.UNDECIDED, "no value"
        return
    gate.value = row.value
    if row.value_ci:
        gate.ci_low, gate.ci_high = row.value_ci
    gate.arithmetic = (
        f"agreement = {row.value:.4g} % of {row.n} images [{_f(gate.ci_low)}, {_f(gate.ci_high)}] vs floor {gate.limit}"
    )
    if policy.decide == "point" or gate.ci_low is None:
        gate.status = GateStatus.PASS if row.value >= gate.limit else GateStatus.FAIL
        return
    if gate.ci_low >= gate.limit:
        gate.status = GateStatus.PASS
    elif gate.ci_high < gate.limit:
        gate.status = GateStatus.FAIL
    else:
        gate.status = GateStatus.UNDECIDED
        _needed(gate, row.value, row, floor=True)


def _needed(gate: Gate, estimate: float, row: CostRow, floor: bool = False) -> None:
    from benchbox.metrics.stats import samples_to_decide

    n = row.n or 0
    needed = samples_to_decide(estimate, gate.ci_low, gate.ci_high, gate.limit, n)
    gate.needed_images = needed
    if needed is None:
        gate.reason = f"the interval spans the limit and the estimate sits on it ({n} images)"
        return
    size = f" (the full set has {row.set_size})" if row.set_size else ""
    gate.reason = f"the 95 % interval spans the limit: about {needed} images would decide it, {n} were scored{size}"


def _arithmetic(row: CostRow, direction: str, change: float, gate: Gate) -> str:
    op = "baseline - value" if direction == "drop" else "value - baseline"
    interval = f" [{_f(gate.ci_low)}, {_f(gate.ci_high)}]" if gate.ci_low is not None else ""
    method = f" ({row.method})" if row.method else ""
    return (
        f"{row.metric} {row.baseline} {_f(row.baseline_value)}, {row.engine}/{row.precision} {_f(row.value)}: "
        f"{direction} = {op} = {change + 0.0:+.4g}{interval}{method} vs limit {gate.limit} on n={row.n}"
    )


def _f(value) -> str:
    return "—" if value is None else f"{value + 0.0:.4g}"


def _record_subject(r: Record) -> str:
    c = r.cell
    where = "/".join(str(x) for x in (c.engine, c.precision, c.testset, c.variant) if x)
    return f"{c.model} {where}" + (f" batch {r.batch_size}" if r.batch_size else "")


def trt_targets(records: list[Record]) -> set[tuple]:
    """The models (name, id) that target TensorRT: a TensorRT cell (even a failed one), ONNX Runtime's TensorRT
    provider, TensorRT engines in the artifact, or a plan that names trt."""
    found = set()
    for r in records:
        c = r.cell
        if r.extra.get("targets_trt"):
            found.add((c.model, c.model_id))
        elif r.metric in ("trt_lint_errors", "trt_lint_warnings"):
            continue  # linting a file is not deploying it
        elif c.engine == "trt" or str(c.device).startswith("tensorrt"):
            found.add((c.model, c.model_id))
    return found


def _record_gates(records: list[Record], policy: Policy) -> list[Gate]:
    gates = policy.gates
    out: list[Gate] = []
    if LATENCY_GATE in gates:
        batch, limit = gates[LATENCY_GATE]["batch_size"], gates[LATENCY_GATE]["value"]
        rows = [r for r in records if r.metric == "latency_p99_ms" and r.batch_size == batch]
        for r in rows:
            ok = r.value is not None and r.value <= limit
            out.append(_plain(LATENCY_GATE, r, f"<= {limit} ms (batch {batch})", ok))
        if not rows:
            out.append(Gate(LATENCY_GATE, "—", GateStatus.SKIPPED, limit=limit, reason=f"no batch-{batch} latency"))
    if policy.has("no_nonfinite"):
        rows = [r for r in records if r.metric == "nonfinite_outputs" and _nonfinite_gated(r, policy)]
        failing = [r for r in rows if r.value]
        for r in failing:
            unit = r.extra.get("unit") or "images"
            gate = _plain("no_nonfinite", r, "== 0", False)
            gate.reason = f"{int(r.value)} of {r.n} {unit} gave NaN/Inf outputs on {r.cell.testset}"
            gate.set = r.cell.testset
            out.append(gate)
        if rows and not failing:
            out.append(Gate("no_nonfinite", f"{len(rows)} cells x sets", GateStatus.PASS, 0.0, "== 0"))
    if gates.get("require_export_parity"):
        out += _parity_gates(records, policy)
    if "max_trt_lint_errors" in gates:
        limit = gates["max_trt_lint_errors"]
        targets = trt_targets(records)
        rows = [r for r in records if r.metric == "trt_lint_errors"]
        for r in rows:
            ok = r.value is not None and r.value <= limit
            gate = _plain("max_trt_lint_errors", r, f"<= {limit}", ok)
            if (r.cell.model, r.cell.model_id) not in targets:
                gate.status = GateStatus.INFO
                gate.reason = "no TensorRT target: reported, not judged (deploying with ONNX Runtime)"
            out.append(gate)
        if not rows:
            out.append(Gate("max_trt_lint_errors", "—", GateStatus.SKIPPED, limit=limit, reason="nothing was linted"))
    for r in records:  # a failed cell means a missing number: nobody can say it would have passed
        if r.metric == "failed":
            gate = _plain("no_failed_cells", r, "no failures", False)
            gate.status, gate.reason = GateStatus.UNDECIDED, r.error or ""
            out.append(gate)
    return out


def _nonfinite_gated(r: Record, policy: Policy) -> bool:
    """Set-level counts where a set has them (C, P), variant counts otherwise: each output counted once."""
    return policy.limit("no_nonfinite", r.cell.testset) is not False and (
        r.cell.testset not in ("c", "p") or r.cell.variant is None
    )


def _parity_gates(records: list[Record], policy: Policy) -> list[Gate]:
    """FP32 ONNX against PyTorch per model; a user's ONNX file has no PyTorch model: not applicable."""
    out = []
    rows = [r for r in records if r.cell.engine == "export" and r.cell.precision == policy.baseline_precision]
    for model in dict.fromkeys(r.cell.model_key for r in rows):
        mine = [r for r in rows if r.cell.model_key == model]
        if any(r.extra.get("source_kind") == "onnx" for r in mine):
            reason = "not applicable: the model is a user's ONNX file (there is no PyTorch model to compare)"
            out.append(
                Gate(
                    "require_export_parity",
                    f"{model[0]} export/fp32",
                    GateStatus.SKIPPED,
                    limit="recorded",
                    reason=reason,
                    model=model[0],
                    model_id=model[1],
                )
            )
            continue
        for r in mine:
            if r.metric in PARITY_CHECKS:
                text, ok = PARITY_CHECKS[r.metric]
                out.append(_plain("require_export_parity", r, text, ok(r.value)))
    if not out:
        out.append(Gate("require_export_parity", "—", GateStatus.SKIPPED, limit="recorded", reason="no parity records"))
    return out


def _plain(name: str, r: Record, limit: str, ok: bool) -> Gate:
    return Gate(
        name,
        _record_subject(r),
        GateStatus.PASS if ok else GateStatus.FAIL,
        r.value,
        limit,
        set=r.cell.testset,
        model=r.cell.model,
        model_id=r.cell.model_id,
        arithmetic=f"{r.metric} = {_f(r.value)} vs {limit}",
    )


def _verdict(gates: list[Gate], records: list[Record], policy: Policy, rows=()) -> tuple[Verdict, str]:
    if not records and not rows:
        return Verdict.CANNOT_DECIDE, "the store holds no results"
    base = policy.baseline_precision
    compared = any(r.kind in BASELINE_KINDS and r.baseline.endswith(f"/{base}") for r in rows)
    if not compared and not any(r.cell.precision == base and r.cell.testset and r.metric != "failed" for r in records):
        return Verdict.CANNOT_DECIDE, f"no {base} baseline results in the store"
    failed = [g for g in gates if g.status == GateStatus.FAIL]
    if failed:
        names = sorted({g.gate for g in failed})
        return Verdict.NOT_READY, f"{len(failed)} gate result(s) failed: {', '.join(names)}"
    undecided = [g for g in gates if g.status == GateStatus.UNDECIDED]
    if undecided:
        names = sorted({g.gate for g in undecided})
        return Verdict.CANNOT_DECIDE, f"{len(undecided)} gate result(s) could not be decided: {', '.join(names)}"
    if not any(g.status == GateStatus.PASS for g in gates):
        return Verdict.CANNOT_DECIDE, "no gate of the policy could be evaluated on these results"
    return Verdict.READY, "every gate with data passed"
