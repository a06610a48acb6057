"""ONNX export, manifest, reuse, parity and the runners on a tiny generated model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchbox.artifact import Artifact, sha256_file
from benchbox.errors import UnsupportedPrecision, UserError
from benchbox.runtime import create_runner
from benchbox.runtime.onnxrt import verify_providers


def test_manifest_records_everything(tiny_artifact):
    m = tiny_artifact.manifest
    entry = m["files"]["fp32"]
    assert sha256_file(tiny_artifact.directory / entry["path"]) == entry["sha256"]
    assert m["inputs"][0]["shape"] == ["batch", 3, 160, 160]
    assert m["data_config"]["mean"] == [0.485, 0.456, 0.406]
    assert set(m["versions"]) >= {"torch", "onnx", "onnxruntime", "timm"}
    parity = entry["parity"]
    assert parity["max_abs_diff"] < 1e-3 and parity["top1_agreement"] == 100.0 and parity["passed"]


def test_dynamic_batch_and_runner_parity(tiny_artifact):
    x = np.random.default_rng(0).normal(size=(5, 3, 160, 160)).astype(np.float32)
    with (
        create_runner("ort", tiny_artifact) as ort_runner,
        create_runner("torch", tiny_artifact) as torch_runner,
    ):
        a = ort_runner.infer(x)
        b = torch_runner.infer(x)
        assert a.shape == (5, 1000) and np.max(np.abs(a - b)) < 1e-3
        assert ort_runner.details["providers"][0] == "CPUExecutionProvider"
        assert ort_runner.infer(x[:1]).shape == (1, 1000)


def test_runner_validates_inputs(tiny_artifact):
    runner = create_runner("ort", tiny_artifact)
    with pytest.raises(RuntimeError, match="not active"):
        runner.infer(np.zeros((1, 3, 160, 160), np.float32))
    with runner:
        with pytest.raises(TypeError, match="float32"):
            runner.infer(np.zeros((1, 3, 160, 160), np.float64))
        with pytest.raises(ValueError, match="expected shape"):
            runner.infer(np.zeros((1, 3, 224, 224), np.float32))


def test_unsupported_precisions_are_explicit(tiny_artifact):
    with pytest.raises(UnsupportedPrecision, match="INT8"):
        create_runner("torch", tiny_artifact, "int8")
    with pytest.raises(UserError, match="Unknown engine"):
        create_runner("tvm", tiny_artifact)


def test_provider_fallback_is_refused():
    with pytest.raises(UserError, match="did not activate CUDAExecutionProvider"):
        verify_providers(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"])
    verify_providers(["CPUExecutionProvider"], ["CPUExecutionProvider"])


def test_identical_export_is_reused(tiny_artifact):
    from benchbox.exporters.onnx import OnnxFromTorch

    before = (tiny_artifact.directory / "manifest.json").stat().st_mtime_ns
    again = OnnxFromTorch("test_efficientnet", tiny_artifact.directory)()
    assert (tiny_artifact.directory / "manifest.json").stat().st_mtime_ns == before
    assert again.manifest["export_key"] == tiny_artifact.manifest["export_key"]


def test_truncated_model_file_is_refused(tiny_artifact, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_artifact.directory, copy)
    model = copy / "model.fp32.onnx"
    model.write_bytes(model.read_bytes()[:1000])
    with pytest.raises(UserError, match="truncated or modified"):
        Artifact.load(copy).file_for("fp32")
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        Artifact.load(copy)
    with pytest.raises(UserError, match="not a benchbox artifact"):
        Artifact.load(tmp_path)


def test_missing_precision_names_the_export_command(tiny_artifact):
    with pytest.raises(UserError) as err:
        tiny_artifact.file_for("int8")
    assert "--precisions int8" in str(err.value) and "--calib-data" in str(err.value)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("[1, 2]", "holds a JSON list"),
        ('{"schema": 1}', "no model name"),
        ('{"schema": 1, "model": "m", "data_config": {}, "files": {}}', "no files.fp32"),
        (
            '{"schema": 1, "model": "m", "data_config": {"crop_pct": "x"}, "files": {"fp32": {"path": "a",'
            ' "sha256": "b"}}}',
            "invalid data_config",
        ),
        ('{"schema": 1, "model": "m", "data_config": {}, "files": {"fp32": {"path": "a"}}}', "files.fp32.sha256"),
        ('{"schema": 7}', "schema 7"),
    ],
)
def test_malformed_manifests_are_named(tmp_path, manifest, expected):
    (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(UserError, match=expected):
        Artifact.load(tmp_path)


def test_a_model_without_1000_classes_is_refused_before_export(tmp_path, monkeypatch):
    (tmp_path / "ten_classes.py").write_text(
        "import timm, torch\n"
        "def make():\n"
        "    torch.manual_seed(0)\n"
        "    return timm.create_model('test_resnet', pretrained=False, num_classes=10)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from benchbox.exporters.onnx import OnnxFromTorch

    with pytest.raises(UserError, match="outputs 10 classes"):
        OnnxFromTorch("ten_classes:make", tmp_path / "art")()
    assert not (tmp_path / "art" / "manifest.json").exists()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def make():\n    raise ValueError('boom')\n", "raised ValueError: boom"),
        ("def make():\n    return 42\n", "returned a int, not a torch.nn.Module"),
        ("make = 3\n", "not a callable"),
        ("raise ImportError('broken module')\n", "Cannot import"),
    ],
)
def test_bad_callables_are_user_errors(tmp_path, monkeypatch, source, expected):
    from benchbox.models import resolve_model

    name = f"bad_{abs(hash(source)) % 10**6}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match=expected):
        resolve_model(f"{name}:make")


def test_checkpoints_that_are_not_state_dicts(tmp_path):
    import torch

    from benchbox.models import resolve_model

    for i, content in enumerate((torch.zeros(3), [torch.zeros(3)], {1: torch.zeros(1)})):
        path = tmp_path / f"c{i}.pth"
        torch.save(content, path)
        with pytest.raises(UserError, match="not a state dict"):
            resolve_model("test_resnet", path)


def test_checkpoint_with_pickled_code_gets_one_plain_message(tmp_path):
    import torch

    from benchbox.models import resolve_model

    path = tmp_path / "evil.pth"
    torch.save({"x": object()}, path)  # not loadable with weights_only=True
    with pytest.raises(UserError) as err:
        resolve_model("test_resnet", path)
    assert "weights_only=False" not in str(err.value) and "never runs pickled code" in str(err.value)


def test_lite0_mapping_gives_identical_logits_to_the_package_model():
    torch = pytest.importorskip("torch")
    pkg = pytest.importorskip("efficientnet_lite_pytorch")
    from benchbox.models import resolve_model
    from benchbox.models.lite import lite_weights_path

    ours = resolve_model("efficientnet_lite0")
    ref = pkg.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(lite_weights_path("efficientnet_lite0"))
    ).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(ours.module(x), ref(x))
    assert ours.data_config.resize_size == 256 and ours.data_config.interpolation == "bicubic"
    assert json.loads(json.dumps(ours.data_config.to_dict()))["mean"] == [0.5, 0.5, 0.5]


def test_unknown_model_and_missing_checkpoint():
    from benchbox.models import resolve_model

    with pytest.raises(UserError, match="Did you mean 'efficientnet_lite0'"):
        resolve_model("efficientnet_lite00")
    with pytest.raises(UserError, match="Checkpoint not found"):
        resolve_model("test_resnet", "/nonexistent.pth")


CALLABLE_SOURCE = """
import timm
import torch

from benchbox.models import DataConfig


def make_tiny():
    torch.manual_seed(0)
    return timm.create_model("test_resnet", pretrained=False), DataConfig(input_size=(3, 96, 96), crop_pct=1.0)
"""


def test_module_callable_and_checkpoint_sources(tmp_path, monkeypatch):
    import torch

    from benchbox.models import resolve_model

    (tmp_path / "my_models.py").write_text(CALLABLE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    resolved = resolve_model("my_models:make_tiny")
    assert resolved.data_config.input_size == (3, 96, 96) and resolved.source["kind"] == "callable"
    checkpoint = tmp_path / "w.pth"
    torch.save({"state_dict": resolved.module.state_dict()}, checkpoint)
    again = resolve_model("test_resnet", checkpoint)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(again.module(x), resolved.module(x))
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(UserError, match="Cannot read checkpoint"):
        resolve_model("test_resnet", checkpoint)


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_and_lite2_load_strictly_with_their_data_configs(name):
    from benchbox.models import resolve_model

    resolved = resolve_model(name)  # strict load: every weight mapped
    size = {"efficientnet_lite1": 240, "efficientnet_lite2": 260}[name]
    assert resolved.data_config.input_size == (3, size, size)
