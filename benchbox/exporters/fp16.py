"""Fp16FromOnnx: FP32 ONNX -> FP16 ONNX with FP32 inputs/outputs; unsafe nodes stay FP32.

Which nodes stay FP32 is decided per model, not from a fixed op list:
- ranges: nodes whose inputs or outputs reach beyond FP16_SAFE_MAX on the calibration images (overflow risk
  inside the node's accumulation), or live entirely in FP16's subnormal range (precision loss);
- graph: reductions over more than REDUCTION_LIMIT elements (FP16 accumulation error grows with length),
  and nodes with initializers outside the FP16 range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchbox.artifact import content_key, sha256_file
from benchbox.exporters.graph_ranges import activation_ranges
from benchbox.exporters.precision import PrecisionFromOnnx

FP16_MAX = 65504.0
FP16_SAFE_MAX = FP16_MAX / 16  # headroom for sums inside a node
FP16_MIN_NORMAL = 6.103515625e-05
REDUCTION_LIMIT = 4096
REDUCTIONS = {
    "ReduceSum",
    "ReduceMean",
    "ReduceProd",
    "ReduceSumSquare",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSumExp",
    "GlobalAveragePool",
    "Softmax",
    "LogSoftmax",
}


QUANTIZATION_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}


def choose_fp32_nodes(model, ranges: dict[str, dict]) -> dict[str, str]:
    """{node name: reason} for the nodes that must stay FP32."""
    from onnx import numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    shapes = _static_shapes(model)
    keep: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type in QUANTIZATION_OPS:
            keep[node.name] = f"{node.op_type}: its float scales stay as the quantized graph defines them"
            continue
        tensors = [t for t in (*node.input, *node.output) if t in ranges]
        peak = max((ranges[t]["max_abs"] for t in tensors), default=0.0)
        if peak > FP16_SAFE_MAX:
            keep[node.name] = f"activation |x| up to {peak:.4g} > {FP16_SAFE_MAX:.4g}"
            continue
        outputs = [ranges[t] for t in node.output if t in ranges]
        if outputs and all(0 < r["max_abs"] < FP16_MIN_NORMAL for r in outputs):
            keep[node.name] = "outputs entirely in the FP16 subnormal range"
            continue
        if node.op_type in REDUCTIONS and node.input and node.input[0] in shapes:
            length = _reduced_length(node, shapes[node.input[0]])
            if length > REDUCTION_LIMIT:
                keep[node.name] = f"{node.op_type} over {length} elements"
                continue
        for name in node.input:
            if name in initializers:
                values = numpy_helper.to_array(initializers[name])
                if values.dtype.kind == "f" and values.size and float(np.abs(values).max()) > FP16_MAX:
                    keep[node.name] = f"initializer {name} exceeds the FP16 range"
                    break
    return keep


def _static_shapes(model) -> dict[str, list[int]]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    return shapes


def _reduced_length(node, shape: list[int]) -> int:
    if node.op_type == "GlobalAveragePool":
        return int(np.prod(shape[2:])) if len(shape) > 2 else 1
    if node.op_type in ("Softmax", "LogSoftmax"):
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        return int(shape[axis]) if shape else 1
    axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
    if axes is None:
        return int(np.prod(shape)) if shape else 1
    return int(np.prod([shape[a] for a in axes]))


def remove_fp16_round_trips(graph) -> list[str]:
    """Drop every Cast-to-FP16 whose only consumer casts straight back to FP32, and return their names.

    The converter keeps a node in FP32 but then routes its output through FP16 on the way to the next FP32 node or
    to the graph output (`graph_output_cast_0_cast_to_fp16`): logits beyond 65,504 became Inf although the node that
    made them was kept in FP32 for exactly that reason. Nothing is computed in FP16 between the two casts, so
    removing the pair changes no arithmetic but the lossy rounding."""
    from onnx import TensorProto

    def cast_to(node) -> int | None:
        if node.op_type != "Cast":
            return None
        return next((a.i for a in node.attribute if a.name == "to"), None)

    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    removed, dropped = [], set()
    for node in graph.node:
        if cast_to(node) != TensorProto.FLOAT16 or node.output[0] in outputs:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1 or cast_to(users[0]) != TensorProto.FLOAT:
            continue
        users[0].input[0] = node.input[0]  # now a Cast of FP32 to FP32: an identity
        removed.append(node.name)
        dropped.add(id(node))
    kept = [node for node in graph.node if id(node) not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    return removed


def topological_sort(graph) -> None:
    """Reorder graph.node in place so every node follows its producers (the converter appends input Casts)."""
    produced_by = {out: i for i, node in enumerate(graph.node) for out in node.output}
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    nodes, ordered, placed = list(graph.node), [], set()
    while len(ordered) < len(nodes):
        progressed = False
        for i, node in enumerate(nodes):
            if i in placed:
                continue
            if all(name in available or name not in produced_by for name in node.input):
                ordered.append(node)
                placed.add(i)
                available.update(node.output)
                progressed = True
        if not progressed:
            raise ValueError("graph has a cycle")
    del graph.node[:]
    graph.node.extend(ordered)


def convert_fp16(fp32_path: Path, out_path: Path, batch: np.ndarray, input_name: str = "input") -> dict[str, Any]:
    """Write the FP16 model and return what was kept in FP32 and why."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    ranges = activation_ranges(fp32_path, batch, input_name)
    model = onnx.load(str(fp32_path))
    keep = choose_fp32_nodes(model, ranges)
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        node_block_list=list(keep),
        min_positive_val=5.96e-08,
        max_finite_val=FP16_MAX,
    )
    removed = remove_fp16_round_trips(converted.graph)
    topological_sort(converted.graph)
    onnx.checker.check_model(converted)
    tmp = out_path.with_suffix(".tmp")
    onnx.save(converted, str(tmp))
    tmp.replace(out_path)
    peak = max((r["max_abs"] for r in ranges.values()), default=0.0)
    measured = {name: float(f"{r['max_abs']:.6g}") for name, r in ranges.items()}  # for `benchbox lint`
    return {
        "fp32_nodes": keep,
        "fp16_round_trips_removed": removed,
        "peak_activation": peak,
        "range_images": int(batch.shape[0]),
        "activation_max_abs": measured,
    }


class Fp16FromOnnx(PrecisionFromOnnx):
    """FP32 ONNX -> FP16 ONNX (FP32 I/O, range-driven FP32 islands), checked against FP32 and recorded."""

    precision = "fp16"

    def key(self) -> str:
        import onnxruntime

        return content_key(
            {
                "fp32": self.artifact.entry("fp32")["sha256"],
                "step": "fp16-v3",  # v3: FP16 round trips of FP32 nodes' outputs removed
                "ranges": [sha256_file(p) for p in self.calib_files[:64]],
                "ort": onnxruntime.__version__,  # the converter is onnxruntime.transformers.float16
            }
        )

    def calibration_crops(self) -> np.ndarray:
        return super().calibration_crops()[:64]

    def build_impl(self, fp32_path: Path, out_path: Path, crops: np.ndarray) -> dict[str, Any]:
        from benchbox.exporters.onnx import input_name_of

        batch = self.transform.normalize_batch(crops)
        info = convert_fp16(fp32_path, out_path, batch, input_name_of(fp32_path))
        info["range_source"] = "calibration images" if self.calib_files else "generated images"
        return {"fp16": info}
