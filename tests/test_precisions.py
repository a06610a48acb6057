"""FP16 and INT8 artifacts: the graphs themselves, the manifest, the calibration-overlap warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import cost_rows, evaluate, export_options
from onnx import TensorProto, numpy_helper

from benchbox.errors import UserError


def load(artifact, precision):
    return onnx.load(str(artifact.file_for(precision)))


def zero_points(model):
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    points = []
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            points.append(inits[node.input[2]])
    return points


def test_trt_flavour_is_symmetric_signed_qdq(tiny_full_artifact):
    model = load(tiny_full_artifact, "int8")
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    points = zero_points(model)
    assert points and all(p.dtype == np.int8 and not p.any() for p in points)
    conv_weights = [
        n for n in model.graph.node if n.op_type == "DequantizeLinear" and any(a.name == "axis" for a in n.attribute)
    ]
    assert conv_weights  # per-channel weights


def test_cpu_flavour_has_unsigned_activations_and_signed_weights(tiny_full_artifact):
    points = zero_points(load(tiny_full_artifact, "int8-cpu"))
    dtypes = {p.dtype for p in points}
    assert dtypes == {np.dtype(np.uint8), np.dtype(np.int8)}
    assert all(not p.any() for p in points if p.dtype == np.int8)  # symmetric weights


def test_fp16_keeps_fp32_io(tiny_full_artifact):
    model = load(tiny_full_artifact, "fp16")
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    types = [i.data_type for i in model.graph.initializer]
    assert types.count(TensorProto.FLOAT16) > len(types) // 2
    entry = tiny_full_artifact.entry("fp16")
    assert "fp32_nodes" in entry["fp16"] and entry["parity"]["max_abs_diff"] < 0.5


def test_fp16_block_list_comes_from_ranges():
    from onnx import helper

    from benchbox.exporters.fp16 import choose_fp32_nodes

    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["a"], name="small"),
            helper.make_node("Exp", ["a"], ["b"], name="huge"),
            helper.make_node("ReduceSum", ["b"], ["c"], name="long_sum", keepdims=0),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10000])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph)
    ranges = {
        "x": {"max_abs": 3.0, "min_nonzero_abs": 0.1},
        "a": {"max_abs": 3.0, "min_nonzero_abs": 0.1},
        "b": {"max_abs": 20.0, "min_nonzero_abs": 1.0},
        "c": {"max_abs": 9e4, "min_nonzero_abs": 9e4},
    }
    keep = choose_fp32_nodes(model, ranges)
    assert "small" not in keep and "huge" not in keep
    assert "long_sum" in keep  # activation beyond the FP16 safe range
    ranges["c"] = {"max_abs": 100.0, "min_nonzero_abs": 100.0}
    assert "10000 elements" in choose_fp32_nodes(model, ranges)["long_sum"]


def test_manifest_lists_calibration_files_and_hashes(tiny_full_artifact):
    for flavour in ("int8", "int8-cpu"):
        calib = tiny_full_artifact.entry(flavour)["calibration"]
        assert calib["method"] == "minmax" and calib["size"] == 8
        assert all(len(f["sha256"]) == 64 for f in calib["files"])
    assert tiny_full_artifact.entry("int8")["quantization"]["activations"] == "int8 symmetric"


def test_calibration_selection_is_class_balanced_and_seeded(tiny_images):
    from benchbox.exporters.calibration import select_calibration_files

    picked = select_calibration_files(tiny_images / "val", 4)
    assert len({p.parent.name for p in picked}) == 4  # one per class first
    assert picked == select_calibration_files(tiny_images / "val", 4)
    with pytest.raises(UserError):
        select_calibration_files(tiny_images / "nowhere", 4)


def test_overlap_with_calibration_images_is_flagged(tiny_full_artifact, tiny_images, tmp_path):
    result = evaluate(
        tiny_full_artifact, tmp_path / "s", precisions=["fp32", "int8"], data_root=tiny_images, batch_size=4
    )
    assert any("calibration images" in w and "8 images" in w for w in result.warnings)
    int8_top1 = next(r for r in result.records if r.cell.precision == "int8" and r.metric == "top1")
    assert "calibration-overlap" in int8_top1.flags
    fp32_top1 = next(r for r in result.records if r.cell.precision == "fp32" and r.metric == "top1")
    assert "calibration-overlap" not in fp32_top1.flags
    delta = cost_rows(tmp_path / "s")[("ort", "int8", "val", None, "top1")]
    assert delta.ci_low <= delta.delta <= delta.ci_high and delta.p_value is not None


def test_percentile_calibration_and_the_plan_examples(tiny_images, tmp_path):
    from pathlib import Path

    from benchbox.build import build_artifacts
    from benchbox.plan import load_plan

    options = export_options(
        precisions=["fp32", "int8"], calib_data=tiny_images / "val", calib_size=4, calib_method="percentile"
    )
    artifact = build_artifacts("test_efficientnet", tmp_path / "art", options)
    assert artifact.entry("int8")["calibration"]["method"] == "percentile"
    assert zero_points(load(artifact, "int8"))
    examples = Path(__file__).resolve().parents[1] / "examples"
    for plan in ("plan.toml", "plan-sample.toml"):
        assert load_plan(examples / plan).models[0].name == "efficientnet_lite0"


def test_calibration_strides_tile_the_images():
    from benchbox.exporters.int8 import calibration_stride

    assert calibration_stride(256) == 16 and calibration_stride(30) == 15 and calibration_stride(17) == 1
    assert calibration_stride(8) == 8 and calibration_stride(1) == 1


def test_strided_minmax_calibration_gives_the_ranges_of_one_pass(tiny_full_artifact, tmp_path):
    """Bounded-memory calibration (strides of images) must not change MinMax ranges at all."""
    from benchbox.datasets.transforms import EvalTransform
    from benchbox.exporters.calibration import CropReader, calibration_crops
    from benchbox.exporters.int8 import preprocess_for_quantization, quantize

    transform = EvalTransform(tiny_full_artifact.data_config)
    calib = [Path(f["path"]) for f in tiny_full_artifact.entry("int8")["calibration"]["files"]]
    crops = calibration_crops(calib, transform)[0]
    pre = preprocess_for_quantization(tiny_full_artifact.file_for("fp32"), tmp_path / "pre.onnx")
    scales = []
    for stride in (1, 8):
        out = tmp_path / f"q{stride}.onnx"
        quantize(pre, out, "int8", "minmax", CropReader(crops, transform), stride=stride)
        model = onnx.load(str(out))
        scales.append({i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("_scale")})
    assert scales[0].keys() == scales[1].keys() and scales[0]
    assert all(np.array_equal(scales[0][k], scales[1][k]) for k in scales[0])
