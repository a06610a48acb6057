"""TensorRT readiness of an ONNX file, checked on any CPU: what decides whether an engine build will succeed.

Rules (each finding names its rule, the node or tensor, and what to do):
- `opset`            the default-domain opset is within what that TensorRT's ONNX parser accepts;
- `unsupported-op`   every operator is in the parser's support matrix (other domains need plugins);
- `unsupported-type` the operator's data tensor has a type the matrix lists for it;
- `qdq-zero-point`, `qdq-uint8`, `qdq-scale`, `qdq-activation-per-channel`, `qdq-weight-axis`:
                     explicit quantization as TensorRT takes it: signed INT8, zero points 0, positive finite
                     scales, per-tensor activations, per-channel weights on the output-channel axis;
- `static-batch`, `profile`: the batch axis is dynamic and the engine profile covers the batch sizes asked for;
- `fp16-overflow`    in an FP16 graph, no tensor computed in FP16 reaches beyond FP16's range (measured on
                     calibration images when the artifact was built), and no FP16 constant overflowed.

Long because each rule is its own short function, kept beside the others so the whole contract reads in one place.

What the lint does not prove: that TensorRT picks fast kernels, that the numbers match (run eval), or anything
about plugins or restrictions outside these rules (the parser's restrictions column is not modelled).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.environment import parse_version
from benchbox.errors import UserError

TABLE = Path(__file__).with_name("trt_operators.json")
FP16_MAX = 65504.0
ONNX_TYPES = {
    1: "FP32",
    10: "FP16",
    16: "BF16",
    6: "INT32",
    7: "INT64",
    3: "INT8",
    2: "UINT8",
    9: "BOOL",
    11: "DOUBLE",
    17: "FP8",
    18: "FP8",
    22: "INT4",
}
OUTPUT_CHANNEL_AXIS = {"Conv": 0, "ConvTranspose": 1}
LINTED_FILES = ("fp32", "fp16", "int8")  # int8-cpu (U8S8) is ONNX Runtime's flavour, never TensorRT's


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # error | warning
    where: str  # node or tensor name
    message: str


@functools.cache
def support_table() -> dict[str, Any]:
    return json.loads(TABLE.read_text())


def trt_line(version: str | None) -> tuple[str, dict[str, Any]]:
    """The table entry for a TensorRT version: the newest release line at or below it."""
    lines = support_table()["versions"]
    if version is None:
        return max(lines, key=parse_version), lines[max(lines, key=parse_version)]
    wanted = parse_version(version)
    known = [v for v in lines if parse_version(v) <= wanted]
    if not known or wanted[0] not in (10, 11):
        raise UserError(
            f"No TensorRT ONNX-parser table for TensorRT {version}.",
            f"Use a 10.x or 11.x version; the table knows {', '.join(sorted(lines, key=parse_version))}.",
        )
    line = max(known, key=parse_version)
    return line, lines[line]


def _operators_for(version: str) -> dict[str, dict]:
    table = support_table()
    operators = dict(table["operators"])
    for since, added in table.get("added_operators", {}).items():
        if parse_version(version) >= parse_version(since):
            for name in added["operators"]:
                operators[name] = {"supported": True, "types": ["FP32", "FP16", "BF16"]}
    return operators


def _types(model) -> dict[str, str]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # a graph shape inference cannot follow: judge by the types it declares
        inferred = model
    types = {}
    for vi in [*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info]:
        types[vi.name] = ONNX_TYPES.get(vi.type.tensor_type.elem_type, str(vi.type.tensor_type.elem_type))
    for init in model.graph.initializer:
        types[init.name] = ONNX_TYPES.get(init.data_type, str(init.data_type))
    return types


def _check_opset(model, version: str, line: dict) -> list[Finding]:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        return [Finding("opset", "error", "model", "no default-domain opset import")]
    if opset > line["max_opset"]:
        return [
            Finding(
                "opset",
                "error",
                "model",
                f"opset {opset} is newer than TensorRT {version}'s parser accepts "
                f"(at most {line['max_opset']}): export with --opset {line['max_opset']} or lower",
            )
        ]
    if opset < line["min_opset"]:
        return [
            Finding(
                "opset",
                "error",
                "model",
                f"opset {opset} is older than the parser's minimum {line['min_opset']}: re-export with a newer opset",
            )
        ]
    return []


def _check_operators(model, version: str, types: dict[str, str]) -> list[Finding]:
    operators = _operators_for(version)
    findings = []
    for node in model.graph.node:
        name = node.name or node.op_type
        if node.domain not in ("", "ai.onnx"):
            findings.append(
                Finding(
                    "unsupported-op",
                    "error",
                    name,
                    f"{node.domain}::{node.op_type} is not an ONNX operator: TensorRT needs a plugin for it",
                )
            )
            continue
        spec = operators.get(node.op_type)
        if spec is None or not spec["supported"]:
            findings.append(
                Finding(
                    "unsupported-op",
                    "error",
                    name,
                    f"{node.op_type} is not supported by TensorRT {version}'s ONNX parser",
                )
            )
            continue
        data = types.get(node.input[0]) if node.input and node.input[0] else None
        if data and spec["types"] and data not in spec["types"]:
            severity = "error" if node.op_type in ("QuantizeLinear", "DequantizeLinear") else "warning"
            findings.append(
                Finding(
                    "unsupported-type",
                    severity,
                    name,
                    f"{node.op_type} on {data}: the parser lists {', '.join(spec['types'])}",
                )
            )
    return findings


def _consumer(model, tensor: str):
    return next((n for n in model.graph.node if tensor in n.input), None)


def _check_qdq(model) -> list[Finding]:
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    findings = []
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        name = node.name or node.op_type
        scale = numpy_helper.to_array(inits[node.input[1]]) if len(node.input) > 1 and node.input[1] in inits else None
        if len(node.input) > 2 and node.input[2] in inits:
            point = numpy_helper.to_array(inits[node.input[2]])
            if point.dtype == np.uint8:
                findings.append(
                    Finding(
                        "qdq-uint8",
                        "error",
                        name,
                        "UINT8 quantization: TensorRT takes signed INT8 "
                        "Q/DQ only (build the `int8` flavour, not `int8-cpu`)",
                    )
                )
            if np.any(point != 0):
                findings.append(
                    Finding(
                        "qdq-zero-point",
                        "error",
                        name,
                        "non-zero zero point (asymmetric "
                        "quantization): TensorRT requires symmetric Q/DQ with zero points 0",
                    )
                )
        if scale is not None and (not np.all(np.isfinite(scale)) or np.any(scale <= 0)):
            findings.append(Finding("qdq-scale", "error", name, "scale is zero, negative or not finite"))
        if scale is None or scale.size <= 1:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if node.input[0] not in inits:  # per-channel on an activation
            findings.append(
                Finding(
                    "qdq-activation-per-channel",
                    "error",
                    name,
                    "per-channel scales on an activation: TensorRT quantizes activations per tensor",
                )
            )
            continue
        consumer = _consumer(model, node.output[0])
        if consumer is None:
            continue
        expected = OUTPUT_CHANNEL_AXIS.get(consumer.op_type)
        if consumer.op_type == "Gemm":
            expected = 0 if next((a.i for a in consumer.attribute if a.name == "transB"), 0) else 1
        if consumer.op_type == "MatMul":
            rank = len(inits[node.input[0]].dims)
            expected, axis = rank - 1, axis % rank
        if expected is not None and axis != expected:
            findings.append(
                Finding(
                    "qdq-weight-axis",
                    "error",
                    name,
                    f"weight scales along axis {axis}; {consumer.op_type} needs the output-channel axis {expected}",
                )
            )
    return findings


def _check_batch(model, batch_sizes: list[int], profile_max: int | None) -> list[Finding]:
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    findings = []
    for tensor in inputs:
        dims = tensor.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            findings.append(
                Finding(
                    "static-batch",
                    "error",
                    tensor.name,
                    f"batch axis fixed to {dims[0].dim_value}: "
                    "TensorRT profiles and eval's last batch need it dynamic (re-export, or export "
                    "the ONNX file with a symbolic batch dimension)",
                )
            )
    if profile_max is not None and batch_sizes and max(batch_sizes) > profile_max:
        findings.append(
            Finding(
                "profile",
                "error",
                "engine",
                f"the engine profile stops at batch {profile_max}, "
                f"below the requested {max(batch_sizes)}: rebuild with that batch size",
            )
        )
    return findings


def _check_fp16(model, types: dict[str, str], ranges: dict[str, float] | None) -> list[Finding]:
    from onnx import numpy_helper

    findings = []
    for init in model.graph.initializer:
        if types.get(init.name) == "FP16":
            values = numpy_helper.to_array(init)
            if values.size and not np.all(np.isfinite(values)):
                findings.append(
                    Finding(
                        "fp16-overflow",
                        "error",
                        init.name,
                        "FP16 constant holds inf/NaN: the value "
                        "overflowed FP16 when the graph was converted; keep that node in FP32",
                    )
                )
    for name, peak in _through_casts(model, ranges or {}).items():
        if types.get(name) == "FP16" and peak is not None and peak > FP16_MAX:
            findings.append(
                Finding(
                    "fp16-overflow",
                    "error",
                    name,
                    f"computed in FP16 but reaches |x| = {peak:.4g} "
                    f"> {FP16_MAX:g} on the calibration images: keep its producer in FP32",
                )
            )
    return findings


def _through_casts(model, ranges: dict[str, float]) -> dict[str, float]:
    """The measured ranges (of the FP32 graph's tensors) carried through the Casts the FP16 conversion inserted: a
    Cast to FP16 of a tensor that reaches 1e6 is an FP16 tensor that reaches 1e6 (it becomes Inf)."""
    carried = dict(ranges)
    for _ in range(3):  # casts come in short chains (FP32 -> FP16 -> FP32)
        for node in model.graph.node:
            if node.op_type == "Cast" and node.input and node.input[0] in carried and node.output[0] not in carried:
                carried[node.output[0]] = carried[node.input[0]]
    return carried


def lint_model(
    model,
    trt: str | None = None,
    batch_sizes: list[int] | None = None,
    profile_max: int | None = None,
    ranges: dict[str, float] | None = None,
) -> list[Finding]:
    """Every finding for one ONNX model (an onnx.ModelProto) against a TensorRT version's parser."""
    version, line = trt_line(trt)
    types = _types(model)
    findings = [
        *_check_opset(model, version, line),
        *_check_operators(model, version, types),
        *_check_qdq(model),
        *_check_batch(model, list(batch_sizes or []), profile_max),
        *_check_fp16(model, types, ranges),
    ]
    if not line.get("verified", True):
        findings.append(
            Finding(
                "opset",
                "warning",
                "table",
                f"the opset range for TensorRT {version} is inferred, not read from NVIDIA's matrix ({line['source']})",
            )
        )
    return findings


def lint_artifact(artifact, trt: str | None = None, batch_sizes: list[int] | None = None) -> dict[str, list[Finding]]:
    """{precision file: findings} for every file of an artifact that TensorRT would consume."""
    import onnx

    results = {}
    engines = artifact.manifest.get("engines") or {}
    for precision in LINTED_FILES:
        if precision not in artifact.manifest["files"]:
            continue
        model = onnx.load(str(artifact.file_for(precision)), load_external_data=True)
        profile = (engines.get(precision) or {}).get("profile")
        ranges = (
            (artifact.entry(precision).get("fp16") or {}).get("activation_max_abs") if precision == "fp16" else None
        )
        results[precision] = lint_model(model, trt, batch_sizes, profile[-1][0] if profile else None, ranges)
    return results


def lint_file(path: Path, trt: str | None = None, batch_sizes: list[int] | None = None) -> list[Finding]:
    """The same rules on a bare ONNX file, as `polygraphy check lint` takes one (no artifact: no measured FP16
    ranges, no engine profile)."""
    import onnx

    from benchbox.errors import UserError, printable

    try:
        model = onnx.load(str(path), load_external_data=True)
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"{printable(path)} is not a readable ONNX model: {type(exc).__name__}: {exc}") from exc
    return lint_model(model, trt, batch_sizes)


def finding_json(finding: Finding) -> dict[str, str]:
    return asdict(finding)


def lint_records(
    artifact, store, trt: str | None = None, batch_sizes: list[int] | None = None, target: bool = False
) -> list:
    """Lint every TensorRT-bound file of an artifact and store `trt_lint_errors` / `trt_lint_warnings` records.

    `target`: the deployment is meant for TensorRT (a plan naming trt): the readiness check then judges the lint
    even before a TensorRT cell exists; otherwise it is information until one does."""
    from benchbox.artifact import content_key
    from benchbox.records import Record

    version, _ = trt_line(trt)
    records = []
    for precision, findings in lint_artifact(artifact, version, batch_sizes).items():
        cell = artifact.cell("trt", "cuda", precision)
        listing = [finding_json(f) for f in findings]
        errors = [f for f in listing if f["severity"] == "error"]
        warnings = [f for f in listing if f["severity"] == "warning"]
        extra = {"trt": version, "file": artifact.entry(precision)["path"], **({"targets_trt": True} if target else {})}
        mine = [
            Record(cell, "trt_lint_errors", float(len(errors)), None, extra={**extra, "findings": errors}),
            Record(cell, "trt_lint_warnings", float(len(warnings)), None, extra={**extra, "findings": warnings}),
        ]
        key = content_key(
            {"lint": artifact.entry(precision)["sha256"], "trt": version, "batch": batch_sizes or [], "target": target}
        )
        run_id = store.start_run(key, "lint", cell, reference=f"tensorrt-{version}")
        store.finish_run(run_id, mine)
        records += mine
    return records
