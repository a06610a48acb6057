"""Runners: one interface (activate / infer / deactivate) over PyTorch, ONNX Runtime and TensorRT."""

from __future__ import annotations

from benchbox.errors import unknown_name

ENGINES = ("torch", "ort", "trt")


def create_runner(engine: str, artifact, precision: str = "fp32", device: str = "cpu", **options):
    """The runner for an engine name (`torch`, `ort`, `trt`) over an artifact at a precision."""
    cuda_backend = options.pop("cuda_backend", None)  # only the TensorRT runner manages CUDA memory itself
    if engine == "torch":
        from benchbox.runtime.torch import TorchRunner

        return TorchRunner(artifact, precision, device, **options)
    if engine == "ort":
        from benchbox.runtime.onnxrt import OrtRunner

        return OrtRunner(artifact, precision, device, **options)
    if cuda_backend:
        options["cuda_backend"] = cuda_backend
    if engine == "trt":
        from benchbox.runtime.tensorrt import TrtRunner

        return TrtRunner(artifact, precision, device, **options)
    raise unknown_name("engine", engine, ENGINES)


def require_artifact_files(artifact, engines: list[str], precisions: list[str], device: str) -> None:
    """Fail early, naming the export command, when an engine needs a precision file the artifact lacks."""
    from benchbox.runtime.onnxrt import artifact_precision_for

    for engine in engines:
        if engine == "torch":  # PyTorch runs the source model, not an ONNX file
            continue
        for precision in precisions:
            artifact.file_for(artifact_precision_for(f"{engine}-{device}", precision), verify=False)
