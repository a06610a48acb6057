"""The sources a deployment engineer has: their own ONNX file, and pretrained weights from a hub cache (offline),
exercised through the real loading code with a cache laid out by the test — never the network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_cli
from onnx import TensorProto, helper, numpy_helper

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def torch_onnx(tmp_path):
    """A tiny timm model exported by torch with a dynamic batch axis (as a training team hands it over)."""
    import timm

    torch.manual_seed(5)
    model = timm.create_model("test_resnet", pretrained=False).eval()
    path = tmp_path / "handed_over.onnx"
    torch.onnx.export(
        model,
        (torch.randn(2, 3, 160, 160),),
        str(path),
        input_names=["pixels"],
        output_names=["scores"],
        dynamic_axes={"pixels": {0: "n"}, "scores": {0: "n"}},
        dynamo=False,
    )
    return path


def fixed_batch_onnx(tmp_path, reshape_batch: bool = False):
    """Built by hand: (1, 3, 32, 32) -> global pool -> 1000 scores, the batch axis fixed to 1."""
    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array(rng.standard_normal((3, 1000)).astype(np.float32), "w")
    shape = numpy_helper.from_array(np.array([1, 3], np.int64), "shape")
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "shape"], ["flat"])
        if reshape_batch
        else helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fixed",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])],
        [weight, shape],
    )
    path = tmp_path / ("reshape.onnx" if reshape_batch else "fixed.onnx")
    import onnx

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def pipeline(tmp_path, onnx_file, images, *flags):
    """export -> fp16/int8 -> eval (ort at every precision, torch) -> report, through the CLI."""
    art, store = tmp_path / "art", tmp_path / "store"
    export = run_cli(
        "export",
        onnx_file,
        "--out",
        art,
        "--precisions",
        "fp32,fp16,int8",
        "--calib-data",
        images / "val",
        "--calib-size",
        "8",
        "--calib-method",
        "minmax",
        *flags,
    )
    assert export.returncode == 0, export.stdout + export.stderr
    for engines in ("ort", "torch"):
        ran = run_cli(
            "eval",
            art,
            "--engine",
            engines,
            "--precisions",
            "fp32,fp16,int8",
            "--data-root",
            images,
            "--store",
            store,
            "--json",
            tmp_path / f"{engines}.json",
        )
        assert ran.returncode in (0, 1), ran.stderr[-2000:]
    report = run_cli("report", "--store", store, "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    return json.loads((art / "manifest.json").read_text()), tmp_path


def test_an_onnx_file_exported_by_torch_goes_through_everything(tiny_images, tmp_path):
    path = torch_onnx(tmp_path)
    manifest, work = pipeline(tmp_path, path, tiny_images, "--config-from", "test_resnet")
    assert manifest["source"]["kind"] == "onnx" and len(manifest["source"]["sha256"]) == 64
    assert set(manifest["files"]) == {"fp32", "fp16", "int8", "int8-cpu"}
    assert manifest["inputs"][0]["name"] == "pixels" and manifest["data_config"]["input_size"] == [3, 160, 160]
    assert manifest["files"]["int8"]["parity"]["reference"] == "ort-fp32-cpu"  # no torch reference here
    ort = json.loads((work / "ort.json").read_text())["records"]
    assert {r["precision"] for r in ort if r["metric"] == "top1"} == {"fp32", "fp16", "int8"}
    torch_records = json.loads((work / "torch.json").read_text())["records"]
    assert {r["metric"] for r in torch_records} == {"unsupported"}
    assert "no PyTorch model" in torch_records[0]["error"]


def test_a_fixed_batch_is_refused_then_rewritten_on_request(tiny_images, tmp_path):
    path = fixed_batch_onnx(tmp_path)
    refused = run_cli("export", path, "--out", tmp_path / "no", "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5")
    assert refused.returncode == 2 and "fixes the batch size to 1" in refused.stderr
    assert "--make-batch-dynamic" in refused.stderr and "Traceback" not in refused.stderr
    manifest, work = pipeline(
        tmp_path,
        path,
        tiny_images,
        "--mean",
        "0.5,0.5,0.5",
        "--std",
        "0.5,0.5,0.5",
        "--crop-pct",
        "1.0",
        "--make-batch-dynamic",
    )
    assert manifest["source"]["changes"] == ["batch axis of the input and outputs made dynamic (was fixed to 1)"]
    assert any(r["metric"] == "top1" and r["n"] == 12 for r in json.loads((work / "ort.json").read_text())["records"])


def test_a_batch_fixed_inside_the_graph_cannot_be_rewritten(tmp_path):
    path = fixed_batch_onnx(tmp_path, reshape_batch=True)
    proc = run_cli(
        "export", path, "--out", tmp_path / "a", "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5", "--make-batch-dynamic"
    )
    assert proc.returncode == 2 and "fixes the batch size inside" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "does not say how its images were preprocessed"),
        (["--config-from", "no_such_model"], "knows no model"),
        (["--input-size", "3,64,64", "--config-from", "test_resnet"], "differs from the ONNX file's input"),
    ],
)
def test_onnx_preprocessing_must_be_given(args, expected, tmp_path):
    path = torch_onnx(tmp_path)
    proc = run_cli("export", path, "--out", tmp_path / "a", *args)
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr


def test_onnx_only_options_on_a_torch_model_are_refused(tmp_path):
    proc = run_cli("export", "test_resnet", "--out", tmp_path / "a", "--mean", "0.5,0.5,0.5")
    assert proc.returncode == 2 and "--mean describe an ONNX file's preprocessing" in proc.stderr


def hub_cache(tmp_path, repo: str, with_config: bool = False):
    """A Hugging Face hub cache laid out by hand: refs/main -> snapshots/<commit>/model.safetensors."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(123)
    model = timm.create_model("test_efficientnet", pretrained=False)
    folder = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snapshot / "model.safetensors"))
    if with_config:
        (snapshot / "config.json").write_text(
            json.dumps(
                {
                    "architecture": "test_efficientnet",
                    "num_classes": 1000,
                    "pretrained_cfg": {"input_size": [3, 160, 160]},
                }
            )
        )
    return tmp_path / "hub", model


@pytest.mark.parametrize("name", ["test_efficientnet.r160_in1k", "hf-hub:acme/tiny-net"])
def test_pretrained_weights_come_from_the_hub_cache_offline(name, tmp_path):
    repo = "timm/test_efficientnet.r160_in1k" if name.startswith("test_") else "acme/tiny-net"
    cache, reference = hub_cache(tmp_path, repo, with_config=name.startswith("hf-hub:"))
    art = tmp_path / "art"
    proc = run_cli("export", name, "--out", art, "--offline", env={"HF_HUB_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    source = json.loads((art / "manifest.json").read_text())["source"]
    assert (
        source["revision"] == COMMIT and source["pretrained"] == "local cache" and len(source["weights_sha256"]) == 64
    )
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((2, 3, 160, 160), dtype=np.float32)
    with torch.no_grad():
        expected = reference.eval()(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(art / "model.fp32.onnx"), providers=["CPUExecutionProvider"])
    assert np.max(np.abs(session.run(None, {"input": x})[0] - expected)) < 1e-3  # the cached weights, not random


@pytest.mark.parametrize("name", ["resnet18.a1_in1k", "hf-hub:acme/not-cached", "torchvision:resnet18"])
def test_offline_without_a_cache_is_one_clear_line(name, tmp_path):
    env = {"HF_HUB_CACHE": str(tmp_path / "empty"), "TORCH_HOME": str(tmp_path / "torch"), "HF_HUB_OFFLINE": "1"}
    proc = run_cli("export", name, "--out", tmp_path / "a", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not in the local cache, and downloads are off" in proc.stderr
