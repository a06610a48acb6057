"""`benchbox lint`: each rule flags the hand-made graph that breaks it; real artifacts lint clean."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import export_options, run_cli
from onnx import TensorProto, helper, numpy_helper

from benchbox.errors import UserError
from benchbox.exporters.lint import lint_model, trt_line


def model(nodes, inputs, outputs, initializers=(), opset=18, value_info=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers), value_info=list(value_info))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def x(name="x", batch="batch", elem=TensorProto.FLOAT, shape=(3, 8, 8)):
    return helper.make_tensor_value_info(name, elem, [batch, *shape])


def rules(findings, severity="error"):
    return {f.rule for f in findings if f.severity == severity}


def test_a_clean_graph_has_no_findings():
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x()], [x("y")])
    assert lint_model(m, "11.5") == []


def test_unsupported_operators_and_custom_domains():
    m = model(
        [
            helper.make_node("Unique", ["x"], ["y"], name="uniq"),
            helper.make_node("FusedConv", ["x"], ["z"], name="fused", domain="com.microsoft"),
        ],
        [x()],
        [x("y"), x("z")],
    )
    findings = lint_model(m, "10.16")
    assert {(f.rule, f.where) for f in findings} >= {("unsupported-op", "uniq"), ("unsupported-op", "fused")}


def test_asymmetric_uint8_qdq_is_rejected():
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    point = numpy_helper.from_array(np.array(128, np.uint8), "zp")
    m = model(
        [
            helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="quant"),
            helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dequant"),
        ],
        [x()],
        [x("y")],
        [scale, point],
    )
    found = rules(lint_model(m, "11.5"))
    assert {"qdq-uint8", "qdq-zero-point", "unsupported-type"} <= found


def test_scales_and_per_channel_axes():
    weight = numpy_helper.from_array(np.zeros((4, 3, 1, 1), np.int8), "w")
    bad_scale = numpy_helper.from_array(np.array([0.1, 0.0, 0.1], np.float32), "ws")  # per input channel, one zero
    zero = numpy_helper.from_array(np.zeros(3, np.int8), "wz")
    act_scale = numpy_helper.from_array(np.full(3, 0.1, np.float32), "as")
    act_zero = numpy_helper.from_array(np.zeros(3, np.int8), "az")
    m = model(
        [
            helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], name="wdq", axis=1),
            helper.make_node("QuantizeLinear", ["x", "as", "az"], ["xq"], name="xq", axis=1),
            helper.make_node("DequantizeLinear", ["xq", "as", "az"], ["xf"], name="xdq", axis=1),
            helper.make_node("Conv", ["xf", "wf"], ["y"], name="conv"),
        ],
        [x()],
        [x("y", shape=(4, 8, 8))],
        [weight, bad_scale, zero, act_scale, act_zero],
    )
    found = {(f.rule, f.where) for f in lint_model(m, "11.5")}
    assert ("qdq-scale", "wdq") in found and ("qdq-weight-axis", "wdq") in found
    assert ("qdq-activation-per-channel", "xq") in found


def test_static_batch_and_a_too_small_profile():
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x(batch=1)], [x("y", batch=1)])
    assert "static-batch" in rules(lint_model(m, "11.5"))
    dynamic = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x()], [x("y")])
    assert "profile" in rules(lint_model(dynamic, "11.5", batch_sizes=[1, 64], profile_max=32))


def test_opset_newer_than_the_parser():
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x()], [x("y")], opset=21)
    assert "opset" in rules(lint_model(m, "10.1"))  # 10.0/10.1 parse opsets 9..20
    assert "opset" not in rules(lint_model(m, "11.5"))
    with pytest.raises(UserError, match="No TensorRT ONNX-parser table"):
        trt_line("8.6")


def test_fp16_overflow_constant_and_measured_range():
    big = numpy_helper.from_array(np.array([np.inf], np.float16), "c")
    m = model(
        [helper.make_node("Mul", ["x", "c"], ["y"], name="mul"), helper.make_node("Exp", ["y"], ["z"], name="exp")],
        [x(elem=TensorProto.FLOAT16)],
        [x("z", elem=TensorProto.FLOAT16)],
        [big],
    )
    findings = lint_model(m, "11.5", ranges={"y": 3.0, "z": 1.2e5})
    assert {(f.rule, f.where) for f in findings} >= {("fp16-overflow", "c"), ("fp16-overflow", "z")}
    assert ("fp16-overflow", "y") not in {(f.rule, f.where) for f in findings}


@pytest.mark.parametrize("name", ["test_resnet", "test_convnext"])
def test_tiny_timm_artifacts_lint_clean_at_every_precision(name, tiny_images, tmp_path):
    from benchbox.build import build_artifacts
    from benchbox.exporters.lint import lint_artifact

    options = export_options(
        precisions=["fp32", "fp16", "int8"], calib_data=tiny_images / "val", calib_size=8, calib_method="minmax"
    )
    artifact = build_artifacts(name, tmp_path / name, options)
    results = lint_artifact(artifact, "11.5", [1, 8, 32])
    assert set(results) == {"fp32", "fp16", "int8"}
    assert {p: [f for f in fs if f.severity == "error"] for p, fs in results.items()} == {p: [] for p in results}
    assert results["fp16"] == [] and "activation_max_abs" in artifact.entry("fp16")["fp16"]


def test_cli_records_gate_the_check(tiny_full_artifact, tmp_path):
    proc = run_cli("lint", tiny_full_artifact.directory, "--trt", "10.16", "--store", tmp_path / "s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from benchbox.store import ResultStore

    records = ResultStore(tmp_path / "s").records(metric="trt_lint_errors")
    assert {r.cell.precision for r in records} == {"fp32", "fp16", "int8"} and all(r.value == 0 for r in records)
    from benchbox.reports.check import load_policy
    from benchbox.reports.verdict import decide

    gates = [g for g in decide(ResultStore(tmp_path / "s"), load_policy(None)).gates if g.gate == "max_trt_lint_errors"]
    # nothing targets TensorRT in this store: the lint is reported as information, not judged
    assert [g.status for g in gates] == ["info"] * 3 and all("no TensorRT target" in g.reason for g in gates)
