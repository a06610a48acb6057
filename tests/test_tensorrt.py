"""TensorRT path without a GPU: cache keys, profiles, version dispatch against the real API names, refusal of
foreign engines, doctor, provider verification. GPU tests are marked and skip with a reason."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
from conftest import run_cli

from benchbox.errors import UserError
from benchbox.exporters.tensorrt import (
    EngineFromOnnx,
    EngineSpec,
    check_cached,
    profile_shapes,
    source_precision,
    strongly_typed,
)
from benchbox.runtime.tensorrt import trt_api_generation

GPU = {"name": "NVIDIA H200", "compute_capability": "9.0"}


class Recorder:
    """Records every attribute call made on it (stand-in for tensorrt objects)."""

    def __init__(self, log, name, returns=None):
        self._log, self._name, self._returns = log, name, returns or {}

    def __getattr__(self, attr):
        def call(*args, **kwargs):
            self._log.append((f"{self._name}.{attr}", args))
            value = self._returns.get(attr)
            return value(*args) if callable(value) else value

        return call

    def __setattr__(self, attr, value):
        if attr.startswith("_"):
            object.__setattr__(self, attr, value)
        else:
            self._log.append((f"{self._name}.{attr}=", (value,)))


def fake_trt(version: str, log: list):
    """A module with the TensorRT 10/11 names benchbox uses; precision flags exist only before 11."""
    flags = ["TF32", "DEBUG"] + (["FP16", "INT8", "BF16"] if not version.startswith("11") else [])
    network = Recorder(log, "network", {"get_input": lambda i: types.SimpleNamespace(name="input")})
    parser = Recorder(log, "parser", {"parse_from_file": lambda path: True})
    cache = Recorder(log, "cache", {"serialize": lambda: b"cache-bytes"})
    config = Recorder(
        log, "config", {"create_timing_cache": lambda data: "timing-cache", "get_timing_cache": lambda: cache}
    )
    builder = Recorder(
        log,
        "builder",
        {
            "create_network": lambda f: network,
            "create_builder_config": lambda: config,
            "create_optimization_profile": lambda: Recorder(log, "profile"),
            "build_serialized_network": lambda n, c: b"plan-bytes",
        },
    )
    return types.SimpleNamespace(
        __version__=version,
        Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None}),
        Builder=lambda logger: builder,
        OnnxParser=lambda net, logger: parser,
        NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=1),
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="WORKSPACE"),
        BuilderFlag=types.SimpleNamespace(**{f: f for f in flags}),
    )


def test_version_dispatch():
    assert trt_api_generation("10.11.0.33") == "weakly-typed"
    assert trt_api_generation("10.12.0.36") == "strongly-typed"
    assert trt_api_generation("11.4.0.106") == "strongly-typed"
    assert strongly_typed("10.16.1") and not strongly_typed("10.1.0")
    assert source_precision("11.4.0", "fp16") == ("fp16", [])  # FP16 baked into the graph
    assert source_precision("11.4.0", "int8") == ("int8", [])  # symmetric Q/DQ flavour
    assert source_precision("10.8.0", "fp16") == ("fp32", ["FP16"])  # weak typing: flag on the FP32 graph
    assert source_precision("10.8.0", "int8") == ("int8", ["INT8", "FP16"])  # explicit quantization, weakly typed
    with pytest.raises(UserError):
        source_precision("11.0.0", "int8-cpu")


def test_profile_shapes():
    assert profile_shapes((3, 224, 224), 1, 8, 32) == ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))
    with pytest.raises(UserError, match="1 <= min <= opt <= max"):
        profile_shapes((3, 224, 224), 4, 2, 32)


def test_cache_key_changes_with_everything_that_matters():
    base = EngineSpec("abc", "fp16", "11.4.0", "NVIDIA H200", "9.0", profile_shapes((3, 224, 224)))
    variants = [
        EngineSpec("abd", "fp16", "11.4.0", "NVIDIA H200", "9.0", base.profile),
        EngineSpec("abc", "fp16", "10.16.1", "NVIDIA H200", "9.0", base.profile),
        EngineSpec("abc", "fp16", "11.4.0", "NVIDIA L4", "8.9", base.profile),
        EngineSpec("abc", "fp16", "11.4.0", "NVIDIA H200", "9.0", profile_shapes((3, 224, 224), 1, 8, 64)),
        EngineSpec("abc", "fp16", "11.4.0", "NVIDIA H200", "9.0", base.profile, tf32=True),
    ]
    keys = {base.key(), *(v.key() for v in variants)}
    assert len(keys) == 6
    assert base.key() == EngineSpec("abc", "fp16", "11.4.0", "NVIDIA H200", "9.0", base.profile).key()


@pytest.mark.parametrize("version", ["10.8.0.43", "10.16.1.11", "11.4.0.106"])
def test_builder_uses_the_right_api_per_version(version, tiny_full_artifact, tmp_path):
    log: list = []
    trt = fake_trt(version, log)
    builder = EngineFromOnnx(tiny_full_artifact, "fp16", trt_module=trt, gpu=GPU)
    spec = builder.spec()
    plan = builder.build_impl(spec, tmp_path / "timing.cache")
    calls = [name for name, _ in log]
    args = dict(log[::-1])
    assert plan == b"plan-bytes"
    assert "parser.parse_from_file" in calls  # parsed from the path: external data works
    assert args["builder.create_network"] == ((1 << 1,) if strongly_typed(version) else (0,))
    assert ("config.clear_flag", ("TF32",)) in log  # FP32 maths stays FP32 unless asked
    flags = [a[0] for n, a in log if n == "config.set_flag"]
    assert flags == ([] if strongly_typed(version) else ["FP16"])
    assert ("config.set_memory_pool_limit", ("WORKSPACE", spec.workspace_bytes)) in log
    assert ("profile.set_shape", ("input", (1, 3, 160, 160), (8, 3, 160, 160), (32, 3, 160, 160))) in log
    assert "config.add_optimization_profile" in calls and "config.set_timing_cache" in calls
    assert (tmp_path / "timing.cache").read_bytes() == b"cache-bytes"
    parsed = args["parser.parse_from_file"][0]
    assert parsed.endswith("model.fp16.onnx" if strongly_typed(version) else "model.fp32.onnx")


def test_parser_errors_are_reported_in_full(tiny_full_artifact, tmp_path):
    log: list = []
    trt = fake_trt("11.4.0", log)
    parser = trt.OnnxParser(None, None)
    parser._returns.update({"parse_from_file": lambda path: False, "get_error": lambda i: f"error {i}: bad node"})
    object.__setattr__(parser, "num_errors", 2)
    trt.OnnxParser = lambda net, logger: parser
    builder = EngineFromOnnx(tiny_full_artifact, "fp32", trt_module=trt, gpu=GPU)
    with pytest.raises(UserError) as err:
        builder.build_impl(builder.spec(), tmp_path / "t.cache")
    assert "error 0: bad node" in str(err.value) and "error 1: bad node" in str(err.value)


def test_foreign_engine_is_refused_and_rebuilt(tiny_full_artifact, tmp_path):
    log: list = []
    builder = EngineFromOnnx(tiny_full_artifact, "fp32", trt_module=fake_trt("11.4.0", log), gpu=GPU)
    path, spec = builder()
    assert path.read_bytes() == b"plan-bytes"
    again, _ = EngineFromOnnx(tiny_full_artifact, "fp32", trt_module=fake_trt("11.4.0", []), gpu=GPU)()
    assert again == path  # cache hit
    other_gpu = EngineFromOnnx(
        tiny_full_artifact,
        "fp32",
        trt_module=fake_trt("11.4.0", []),
        gpu={"name": "NVIDIA L4", "compute_capability": "8.9"},
    )
    rebuilt, _ = other_gpu()
    assert rebuilt != path and any(
        "GPU 'NVIDIA H200' (this run: 'NVIDIA L4')" in n and "refusing" in n for n in other_gpu.notes
    )
    newer = EngineSpec(spec.onnx_sha256, "fp32", "11.5.0", spec.gpu_name, spec.compute_capability, spec.profile)
    cached, reason = check_cached(path.parent, newer)
    assert cached is None and "TensorRT version" in reason
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["gpu_name"] == "NVIDIA H200" and meta["key"] == spec.key()


def test_eval_with_trt_on_a_cpu_machine_gives_the_doctor_advice(tiny_artifact):
    proc = run_cli("eval", tiny_artifact.directory, "--engine", "trt")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    assert proc.returncode != 0 and "TensorRT is unavailable" in proc.stderr and "benchbox doctor" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_doctor_exits_0_and_explains():
    proc = run_cli("doctor")
    assert proc.returncode == 0
    assert "TensorRT" in proc.stdout and "ONNX Runtime" in proc.stdout


def test_ort_tensorrt_provider_gets_engine_and_timing_caches(tiny_full_artifact):
    from benchbox.runtime.onnxrt import OrtRunner

    runner = OrtRunner(tiny_full_artifact, "int8", device="tensorrt")
    assert runner.artifact_precision == "int8"  # GPUs take the symmetric S8S8 flavour
    options = runner.provider_options
    assert options["trt_engine_cache_enable"] == "True" and options["trt_timing_cache_enable"] == "True"
    assert options["trt_engine_cache_path"].endswith("engines/ort-tensorrt")


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU (none visible to PyTorch)")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_torch_cuda_precisions_agree_with_cpu(tiny_artifact, precision):
    from benchbox.runtime import create_runner

    x = np.random.default_rng(0).standard_normal((4, 3, 160, 160), dtype=np.float32)
    with (
        create_runner("torch", tiny_artifact, "fp32", "cpu") as cpu,
        create_runner("torch", tiny_artifact, precision, "cuda") as gpu,
    ):
        reference, out = cpu.infer(x), gpu.infer(x)
    tolerance = {"fp32": 1e-3, "fp16": 5e-2, "bf16": 2e-1}[precision]
    assert np.max(np.abs(reference - out)) < tolerance


@pytest.mark.gpu
@pytest.mark.trt
def test_trt_engine_matches_onnxruntime(tiny_full_artifact):
    try:
        from benchbox.runtime.tensorrt import require_tensorrt

        require_tensorrt()
    except UserError as exc:
        pytest.skip(f"TensorRT not usable here: {exc.message}")
    from benchbox.runtime import create_runner

    x = np.random.default_rng(0).standard_normal((8, 3, 160, 160), dtype=np.float32)
    with (
        create_runner("ort", tiny_full_artifact, "fp32") as ort_runner,
        create_runner("trt", tiny_full_artifact, "fp32", "cuda") as trt_runner,
    ):
        assert np.max(np.abs(ort_runner.infer(x) - trt_runner.infer(x))) < 1e-2
