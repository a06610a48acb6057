"""TensorRT: availability checks now; the TrtRunner is in the same module (name-based I/O, TRT 10 and 11)."""

from __future__ import annotations

from typing import Any

from benchbox.errors import UserError

TRT_ADVICE = (
    "TensorRT needs an NVIDIA GPU with a recent driver (r535+ for CUDA 12 wheels, r580+ for CUDA 13) and "
    "`pip install -e '.[trt]'` (tensorrt + cuda-python). Run `benchbox doctor` to see what this machine has."
)


def tensorrt_status() -> dict[str, Any]:
    """What stands between this machine and a TensorRT run: package, version, GPU."""
    status: dict[str, Any] = {"available": False, "version": None, "api": None, "reason": None}
    try:
        import tensorrt as trt  # noqa: F401
    except ImportError:
        status["reason"] = "the tensorrt Python package is not installed"
        return status
    except Exception as exc:  # a wheel whose libraries cannot load
        status["reason"] = f"tensorrt failed to import: {exc}"
        return status
    status["version"] = trt.__version__
    status["api"] = trt_api_generation(trt.__version__)
    gpu = cuda_gpu_name()
    if gpu is None:
        status["reason"] = "no CUDA GPU is visible"
        return status
    status.update(available=True, gpu=gpu)
    return status


def trt_api_generation(version: str) -> str:
    """'strongly-typed' for TensorRT >= 10.12 (precision from the ONNX graph), 'weakly-typed' before."""
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    major, minor = (parts + [0, 0])[:2]
    return "strongly-typed" if (major, minor) >= (10, 12) else "weakly-typed"


def cuda_gpu_name() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:
        return None
    return None


def require_tensorrt() -> dict[str, Any]:
    """Raise a UserError with plain advice unless TensorRT can run here."""
    status = tensorrt_status()
    if not status["available"]:
        raise UserError(f"TensorRT is unavailable: {status['reason']}.", TRT_ADVICE)
    return status
