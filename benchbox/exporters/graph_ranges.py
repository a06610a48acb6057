"""Activation ranges of every float tensor in an ONNX graph, measured by running it on real inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def activation_ranges(model_path: str | Path, batch: np.ndarray, input_name: str = "input") -> dict[str, dict]:
    """{tensor name: {"max_abs", "min_nonzero_abs"}} for every float tensor produced by a node."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    model = onnx.shape_inference.infer_shapes(model)
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    typed = {vi.name: vi.type.tensor_type.elem_type for vi in model.graph.value_info}
    existing = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in existing and typed.get(name, onnx.TensorProto.FLOAT) in float_types:
                model.graph.output.append(onnx.helper.make_tensor_value_info(name, typed.get(name, 1), None))
                existing.add(name)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    ranges: dict[str, dict] = {}
    for start in range(0, batch.shape[0], 8):
        outputs = session.run(names, {input_name: batch[start : start + 8]})
        for name, value in zip(names, outputs):
            if not np.issubdtype(value.dtype, np.floating) or value.size == 0:
                continue
            absolute = np.abs(value.astype(np.float32))
            nonzero = absolute[absolute > 0]
            entry = ranges.setdefault(name, {"max_abs": 0.0, "min_nonzero_abs": float("inf")})
            entry["max_abs"] = max(entry["max_abs"], float(absolute.max()))
            if nonzero.size:
                entry["min_nonzero_abs"] = min(entry["min_nonzero_abs"], float(nonzero.min()))
    return ranges
