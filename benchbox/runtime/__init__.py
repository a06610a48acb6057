"""Runners: one interface (activate / infer / deactivate) over PyTorch, ONNX Runtime and TensorRT."""

from __future__ import annotations

from benchbox.errors import unknown_name

ENGINES = ("torch", "ort", "trt")


def create_runner(engine: str, artifact, precision: str = "fp32", device: str = "cpu", **options):
    """The runner for an engine name (`torch`, `ort`, `trt`) over an artifact at a precision."""
    if engine == "torch":
        from benchbox.runtime.torch import TorchRunner

        return TorchRunner(artifact, precision, device, **options)
    if engine == "ort":
        from benchbox.runtime.onnxrt import OrtRunner

        return OrtRunner(artifact, precision, device, **options)
    if engine == "trt":
        from benchbox.runtime.tensorrt import TrtRunner

        return TrtRunner(artifact, precision, device, **options)
    raise unknown_name("engine", engine, ENGINES)
