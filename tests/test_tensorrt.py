"""TensorRT path without a GPU: cache keys, profiles, version dispatch against the real API names, refusal of
foreign engines, doctor, provider verification. GPU tests are marked and skip with a reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from benchbox.environment import trt_api_generation
from benchbox.errors import UserError
from benchbox.exporters.tensorrt import (
    EngineFromOnnx,
    EngineSpec,
    check_cached,
    profile_shapes,
    source_precision,
    strongly_typed,
)

GPU = {"name": "NVIDIA H200", "compute_capability": "9.0"}


@pytest.fixture
def fake_trt():
    """Install the stand-in `tensorrt` for one test and remove it afterwards."""
    pytest.importorskip("polygraphy", reason="polygraphy is in the [trt] extra")
    import fake_tensorrt

    yield fake_tensorrt.configure
    fake_tensorrt.remove()


@pytest.fixture
def fake_gpu(fake_trt, monkeypatch):
    """The stand-in TensorRT, a stand-in CUDA runtime under polygraphy.cuda, and a GPU the driver reports."""
    import fake_cuda

    import benchbox.environment as environment

    fake_cuda.install()
    monkeypatch.setattr(environment, "gpu_info", lambda: {**GPU, "driver": "580.1", "cuda": "13.0", "count": 1})
    yield fake_trt
    fake_cuda.remove()


def engine_builder(artifact, precision, version, gpu=GPU):
    return EngineFromOnnx(artifact, precision, gpu=gpu, trt_version=version)


def test_version_dispatch():
    assert trt_api_generation("10.11.0.33") == "weakly-typed"
    assert trt_api_generation("10.12.0.36") == "strongly-typed"
    assert trt_api_generation("11.4.0.106") == "strongly-typed"
    assert strongly_typed("10.16.1") and not strongly_typed("10.1.0")
    assert source_precision("11.4.0", "fp16") == ("fp16", [])  # FP16 baked into the graph
    assert source_precision("11.4.0", "int8") == ("int8", [])  # symmetric Q/DQ flavour
    assert source_precision("10.8.0", "fp16") == ("fp32", ["fp16"])  # weak typing: flag on the FP32 graph
    assert source_precision("10.8.0", "int8") == ("int8", ["int8", "fp16"])  # explicit quantization, weakly typed
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
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_polygraphy_build_path_per_version(version, precision, tiny_full_artifact, tmp_path, fake_trt):
    """The build goes through Polygraphy's real loaders; the stand-in records what they asked TensorRT for."""
    import fake_tensorrt

    fake_trt(version)
    builder = engine_builder(tiny_full_artifact, precision, version)
    spec = builder.spec()
    plan = builder.build_impl(spec, tmp_path / "timing.cache")
    calls = dict(reversed(fake_tensorrt.calls))
    assert json.loads(plan)["onnx"] == calls["parser.parse_from_file"][0]
    strong = strongly_typed(version)
    assert calls["builder.create_network"] == ((1 << 1,) if strong else (0,))  # STRONGLY_TYPED is bit 1
    parsed = calls["parser.parse_from_file"][0]  # from the path: external data works
    expected_file = {
        "fp32": "model.fp32.onnx",
        "fp16": "model.fp16.onnx" if strong else "model.fp32.onnx",
        "int8": "model.int8.onnx",
    }[precision]
    assert parsed.endswith(expected_file)
    flags_at_build = calls["builder.build_serialized_network"][0]
    assert "TF32" not in flags_at_build  # FP32 maths stays FP32 unless asked
    expected = {"fp32": [], "fp16": ["FP16"], "int8": ["FP16", "INT8"]}[precision]
    assert [f for f in flags_at_build if f in ("FP16", "INT8", "BF16")] == ([] if strong else expected)
    assert ("config.set_memory_pool_limit", ("WORKSPACE", spec.workspace_bytes)) in fake_tensorrt.calls
    assert ("profile.set_shape", ("input", (1, 3, 160, 160), (8, 3, 160, 160), (32, 3, 160, 160))) in (
        fake_tensorrt.calls
    )
    assert calls["config.builder_optimization_level"] == (3,)
    assert (tmp_path / "timing.cache").read_bytes() == b"timing-cache"  # saved for the next build


@pytest.mark.parametrize("version", ["10.16.1.11", "11.4.0.106"])
def test_trt_runner_runs_through_polygraphy(version, tiny_full_artifact, fake_gpu, tmp_path, monkeypatch):
    """The runner is Polygraphy's TrtRunner over benchbox's engine loader: logits equal ONNX Runtime's on the same
    file, compute mode keeps its input on the device, and deactivation gives back every buffer and the stream."""
    import fake_cuda
    import fake_tensorrt

    from benchbox.runtime import create_runner
    from benchbox.runtime.timing import synthetic_input

    fake_gpu(version)
    batch = synthetic_input((5, 3, 160, 160))
    with create_runner("ort", tiny_full_artifact, "fp32") as ort_runner:
        expected = ort_runner.infer(batch)
    runner = create_runner("trt", tiny_full_artifact, "fp32", "cpu", max_batch=16)  # --device left at its default
    assert runner.device == "cuda"  # TensorRT runs on the GPU whatever --device said
    with runner:
        assert np.allclose(runner.infer(batch), expected, atol=1e-5)
        assert runner.details["runner"] == "polygraphy.backend.trt.TrtRunner" and runner.max_batch == 16
        step = runner.timed_step(batch, "compute")
        before = len([c for c in fake_tensorrt.calls if c[0] == "context.execute_async_v3"])
        step()
        step()
        assert len([c for c in fake_tensorrt.calls if c[0] == "context.execute_async_v3"]) == before + 2
        with pytest.raises(ValueError, match="exceeds the engine profile maximum 16"):
            runner.infer(synthetic_input((17, 3, 160, 160)))
    assert fake_cuda.allocations == {} and fake_cuda.streams == set()  # everything given back, stream destroyed


def test_the_profile_follows_the_eval_batch_size(tiny_full_artifact, fake_trt):
    from benchbox.runtime import create_runner

    fake_trt("11.4.0")
    runner = create_runner("trt", tiny_full_artifact, "fp32", "cuda", max_batch=64)
    assert runner.max_batch == 64 and runner.loader.max_batch == 64
    runner.loader._gpu, runner.loader._trt_version = GPU, "11.4.0"
    assert runner.loader.spec().profile[2] == (64, 3, 160, 160)


def test_parser_errors_are_reported_in_full(tiny_full_artifact, tmp_path, fake_trt):
    fake_trt("11.4.0", parser_errors=["error 0: bad node", "error 1: worse node"])
    builder = engine_builder(tiny_full_artifact, "fp32", "11.4.0")
    with pytest.raises(UserError) as err:
        builder.build_impl(builder.spec(), tmp_path / "t.cache")
    assert "error 0: bad node" in str(err.value) and "error 1: worse node" in str(err.value)
    assert "benchbox lint" in str(err.value)


def test_foreign_engine_is_refused_and_rebuilt(tiny_full_artifact, tmp_path, fake_trt):
    fake_trt("11.4.0")
    path, spec = engine_builder(tiny_full_artifact, "fp32", "11.4.0")()
    assert json.loads(path.read_bytes())["onnx"].endswith("model.fp32.onnx")
    again, _ = engine_builder(tiny_full_artifact, "fp32", "11.4.0")()
    assert again == path  # cache hit
    other_gpu = engine_builder(tiny_full_artifact, "fp32", "11.4.0", {"name": "NVIDIA L4", "compute_capability": "8.9"})
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
        from benchbox.environment import require_tensorrt

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


def test_gpu_check_on_a_cpu_machine_exits_0_and_says_what_it_skipped(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**__import__("os").environ, "PATH": f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}"}
    proc = subprocess.run(
        [str(repo / "scripts" / "gpu-check.sh"), str(tmp_path)], capture_output=True, text=True, timeout=600, env=env
    )
    summary = json.loads((tmp_path / "gpu-check.json").read_text())
    if summary["imports"].get("cuda_device"):
        pytest.skip("this machine has a GPU: the check really ran")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = summary["steps"]
    assert steps["doctor"]["status"] == "ran" and steps["pytest"]["status"] == "ran"
    for name in ("torch-cuda", "bench", "cuda-memory", "tensorrt", "ort-gpu"):
        assert steps[name]["status"] == "skipped" and "no CUDA GPU" in steps[name]["why"]
    assert "missing" in steps["tensorrt"]["why"]  # and it names what else is missing
