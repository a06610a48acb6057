"""Runners: one interface (activate / infer / deactivate) over PyTorch, ONNX Runtime and TensorRT."""

from __future__ import annotations

import os

from benchbox.errors import UserError, unknown_name
from benchbox.records import base_device

ENGINES = ("torch", "ort", "trt")
# TensorRT runs on the GPU whatever --device says (its cells are labelled cuda): "cpu" is accepted for it only as
# the option's default, never recorded.
DEVICES = {"torch": ("cpu", "cuda"), "ort": ("cpu", "cuda", "tensorrt"), "trt": ("cuda", "cpu")}


def check_engine_device(engine: str, device: str) -> None:
    """Refuse engine/device pairs that do not exist (before any work). `cuda@a100`: cuda on a named target."""
    if engine not in ENGINES:
        raise unknown_name("engine", engine, ENGINES)
    device = base_device(device)
    if device not in DEVICES[engine]:
        raise UserError(f"{engine} does not run on device {device!r}.", f"Use one of {', '.join(DEVICES[engine])}.")


def create_runner(engine: str, artifact, precision: str = "fp32", device: str = "cpu", **options):
    """The runner for an engine name over an artifact at a precision (nothing is loaded until `activate`).

    options: threads, cuda_backend (TensorRT), max_batch (the TensorRT profile's largest batch), pipeline
    (True for eval: the runner shares the CPU with decoding, so ONNX Runtime's idle threads must not spin).
    """
    check_engine_device(engine, device)
    device = base_device(device)
    threads = options.get("threads")
    if engine == "torch":
        from benchbox.runtime.torch import TorchRunner

        return TorchRunner(artifact, precision, device, threads=threads)
    if engine == "ort":
        from benchbox.runtime.onnxrt import OrtRunner

        pipeline = bool(options.get("pipeline", False))
        lanes = options.get("lanes") or (2 if pipeline and (os.cpu_count() or 1) >= 2 else 1)
        return OrtRunner(artifact, precision, device, threads=threads, spin=not pipeline, lanes=lanes)
    from benchbox.exporters.tensorrt import EngineFromOnnx
    from benchbox.runtime.tensorrt import TrtRunner

    max_batch = max(int(options.get("max_batch") or 32), 1)
    built = (artifact.manifest.get("engines") or {}).get(precision) or {}
    loader = EngineFromOnnx(
        artifact, precision, opt_batch=min(8, max_batch), max_batch=max_batch, tf32=bool(built.get("tf32", False))
    )
    return TrtRunner(artifact, loader, precision, cuda_backend=options.get("cuda_backend") or "cuda-python")
