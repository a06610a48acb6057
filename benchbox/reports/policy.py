"""Readiness policies: which gates, their limits, how they decide, and where they apply (docs/policy.md).

```toml
baseline_precision = "fp32"   # what lower precisions are compared with
decide = "interval"           # or "point"
[gates]                       # every set
max_top1_drop = 1.0
[sets.a]                      # one set: these gates replace the global ones there
max_top1_drop = 3.0
```

Validated strictly: an unknown key, section, set or gate, or a value of the wrong type, is an error naming it
(with did-you-mean), never a silently ignored gate. Policies written for earlier versions keep working.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchbox.errors import UserError, printable
from benchbox.options import Opt, convert, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_POLICY = Path(__file__).with_name("default_policy.toml")
DECISION_RULES = ("interval", "point")
LATENCY_GATE = "max_p99_latency_ms"


@dataclass(frozen=True)
class GateSpec:
    """One gate: its option (type, limits), the cost-table metric it reads and which way is worse."""

    option: Opt
    metric: str | None = None  # a cost-table metric: the gate compares the lower precision with the baseline
    direction: str = ""  # "drop" (higher is better) or "increase" (lower is better) or "minimum" (a floor)
    sets: tuple[str, ...] = ()  # the sets it concerns (empty: every set with the metric)
    explain: str = ""


def _gate(name, kind, text, metric=None, direction="", sets=(), minimum=None, maximum=None, explain=""):
    return GateSpec(Opt(name, kind, None, text, minimum=minimum, maximum=maximum), metric, direction, sets, explain)


GATES: dict[str, GateSpec] = {
    g.option.name: g
    for g in (
        _gate("max_top1_drop", "float", "percentage points of top-1 lost (val, ReaL, V2, Sketch, A, R)", "top1",
              "drop", minimum=0, explain="baseline top-1 - lower-precision top-1, paired on the same images"),
        _gate("max_mce_increase", "float", "mCE points gained on ImageNet-C", "mce", "increase", ("c",), minimum=0,
              explain="lower-precision mCE - baseline mCE, bootstrap by image over every corruption and severity"),
        _gate("max_relative_mce_increase", "float", "relative mCE points gained on ImageNet-C", "relative_mce",
              "increase", ("c",), minimum=0, explain="as mCE, with each corruption's error relative to clean val"),
        _gate("max_mfr_increase", "float", "mFR points gained on ImageNet-P (needs a P baseline)", "mfr",
              "increase", ("p",), minimum=0, explain="lower-precision mFR - baseline mFR, bootstrap by video"),
        _gate("max_aupr_drop", "float", "ImageNet-O AUPR points lost", "aupr", "drop", ("o",), minimum=0,
              explain="baseline AUPR - lower-precision AUPR, bootstrap by image (O and val-200)"),
        _gate("max_ece_increase", "float", "ECE points gained (15-bin expected calibration error, val)", "ece",
              "increase", ("val",), minimum=0, explain="lower-precision ECE - baseline ECE, bootstrap by image"),
        _gate("min_agreement_top1", "float", "percent of images with the baseline's top-1", "agreement_top1",
              "minimum", minimum=0, maximum=100,
              explain="share of images whose top-1 equals the baseline's (pooled over a set's variants)"),
        _gate("no_nonfinite", "bool", "no NaN/Inf outputs on any set", explain="non-finite outputs per cell and set"),
        _gate("require_export_parity", "bool", "FP32 ONNX equals PyTorch (max |Δlogit| < 1e-3, top-1 100 %)",
              explain="export parity records (not applicable to a user's ONNX file: no PyTorch model)"),
        _gate("max_trt_lint_errors", "int", "TensorRT readiness lint errors (only where TensorRT is a target)",
              minimum=0, explain="benchbox lint errors of the files TensorRT would consume"),
    )
}  # fmt: skip
TOP_LEVEL = ("baseline_precision", "decide", "alpha", "gates", "sets")


@dataclass
class Policy:
    """A validated policy: global gates, per-set overrides, the baseline and the decision rule."""

    gates: dict[str, Any]
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    baseline_precision: str = "fp32"
    decide: str = "interval"
    source: str = "default policy"
    alpha: float = 0.05  # --until-decided: the chance of any wrong sequential decision in a run, at most

    def limit(self, gate: str, testset: str | None) -> Any:
        """The gate's value for a set: the set's own when it has one, else the global one (None: not gated)."""
        if testset is not None and gate in self.sets.get(testset, {}):
            return self.sets[testset][gate]
        return self.gates.get(gate)

    def scope(self, gate: str, testset: str | None) -> str:
        return f"[sets.{testset}]" if testset is not None and gate in self.sets.get(testset, {}) else "[gates]"

    def has(self, gate: str) -> bool:
        return gate in self.gates or any(gate in g for g in self.sets.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "baseline_precision": self.baseline_precision,
            "decide": self.decide,
            "alpha": self.alpha,
            "gates": self.gates,
            "sets": self.sets,
        }


def load_policy(path: Path | None) -> Policy:
    """The policy at `path` (None: the default), every key and type checked."""
    from benchbox.datasets.catalog import TESTSETS

    source = Path(path or DEFAULT_POLICY)
    where = printable(source)
    if not source.is_file():
        raise UserError(
            f"Policy file {where} not found.",
            "Write a commented default with: benchbox check --init-policy FILE (see docs/policy.md)",
        )
    try:
        raw = tomllib.loads(source.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"Policy {where} is not valid TOML: {exc}") from exc
    for key in raw:
        if key not in TOP_LEVEL:
            raise UserError(
                f"Unknown key {key!r} in policy {where}.{did_you_mean(key, list(TOP_LEVEL))}",
                "A policy has baseline_precision, decide, a [gates] table and optional [sets.NAME] tables.",
            )
    base = convert(
        Opt("baseline_precision", "choice", "fp32", "baseline", choices=("fp32", "fp16", "bf16")),
        raw.get("baseline_precision", "fp32"),
        f"policy {where}",
    )
    decide = convert(
        Opt("decide", "choice", "interval", "decision rule", choices=DECISION_RULES),
        raw.get("decide", "interval"),
        f"policy {where}",
    )
    alpha = convert(
        Opt("alpha", "float", 0.05, "error rate of --until-decided", positive=True, maximum=0.5),
        raw.get("alpha", 0.05),
        f"policy {where}",
    )
    gates_raw = raw.get("gates", {})
    sets_raw = raw.get("sets", {})
    if not isinstance(gates_raw, dict) or not isinstance(sets_raw, dict):
        raise UserError(f"[gates] and [sets.NAME] of policy {where} must be tables.")
    if not gates_raw and not sets_raw:
        raise UserError(f"Policy {where} defines no gates.", f"Add a [gates] table, e.g. from {DEFAULT_POLICY}.")
    gates = _gates(gates_raw, f"[gates] of policy {where}")
    sets: dict[str, dict[str, Any]] = {}
    for name, table in sets_raw.items():
        if name not in TESTSETS:
            raise UserError(
                f"Unknown set [sets.{name}] in policy {where}.{did_you_mean(name, list(TESTSETS))}",
                f"Known sets: {', '.join(TESTSETS)}",
            )
        if not isinstance(table, dict):
            raise UserError(f"[sets.{name}] of policy {where} must be a table of gates.")
        sets[name] = _gates(table, f"[sets.{name}] of policy {where}")
        for gate in sets[name]:
            spec = GATES.get(gate)
            if spec is not None and spec.sets and name not in spec.sets:
                raise UserError(
                    f"{gate} in [sets.{name}] of policy {where} does not concern {name}: it gates "
                    f"{', '.join(spec.sets)}."
                )
    return Policy(gates, sets, base, decide, "default policy" if path is None else where, alpha)


def _gates(table: dict[str, Any], where: str) -> dict[str, Any]:
    known = [*GATES, LATENCY_GATE]
    gates: dict[str, Any] = {}
    for name, value in table.items():
        if name == LATENCY_GATE:
            gates[name] = _latency_gate(value, where)
        elif name in GATES:
            gates[name] = convert(GATES[name].option, value, where, strict=True)
        else:
            raise UserError(
                f"Unknown gate {name!r} in {where}.{did_you_mean(name, known)}", f"Known gates: {', '.join(known)}"
            )
    return gates


def _latency_gate(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{LATENCY_GATE} in {where} must be a table with batch_size and value.")
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


def write_default_policy(path: Path) -> Path:
    """`check --init-policy FILE`: the default policy, commented, to edit (refuses to overwrite a file)."""
    path = Path(path)
    if path.exists():
        raise UserError(f"{printable(path)} already exists.", "Pick a new file name, or delete it first.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEFAULT_POLICY.read_text())
    except OSError as exc:
        raise UserError(f"Cannot write {printable(path)}: {exc.strerror or exc}.") from exc
    return path
