"""One place for the environment: library versions, CPU model and flags, GPU and driver, the fingerprint."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "fma")
VERSIONED_LIBRARIES = (
    "benchbox",
    "torch",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "timm",
    "numpy",
    "pillow",
    "tensorrt",
    "polygraphy",
)


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries that shape an artifact's numbers (None when not installed)."""
    from importlib import metadata

    versions = {}
    for name in VERSIONED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def parse_version(text: str, parts: int = 2) -> tuple[int, ...]:
    """'10.13.2.6' -> (10, 13); missing or non-numeric parts count as 0."""
    numbers = []
    for piece in str(text).split(".")[:parts]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        numbers.append(int(digits) if digits else 0)
    return tuple(numbers + [0] * (parts - len(numbers)))


@functools.cache
def cpu_info() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"model": model, "flags": sorted(f for f in CPU_FLAGS if f in flags), "logical_cores": os.cpu_count()}


def cpu_has_vnni() -> bool:
    """Whether the CPU has 8-bit dot-product instructions (VNNI/AMX); unknown counts as yes."""
    if not Path("/proc/cpuinfo").is_file():
        return True
    return any(flag in cpu_info()["flags"] for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


@functools.cache
def gpu_info() -> dict[str, Any] | None:
    """The first GPU as its driver reports it: name, driver and CUDA versions, compute capability, memory (nvidia-smi,
    no CUDA or PyTorch import), or None when there is no NVIDIA driver or GPU."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,compute_cap,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    parts = [part.strip() for part in out.stdout.splitlines()[0].split(",")]
    if len(parts) < 4:
        return None
    name, driver, capability, memory = parts[:4]
    return {
        "name": name,
        "driver": driver,
        "cuda": _driver_cuda_version(),
        "compute_capability": capability,
        "memory": memory,
        "count": len([line for line in out.stdout.splitlines() if line.strip()]),
    }


def _driver_cuda_version() -> str | None:
    """The CUDA version the driver supports, from nvidia-smi's banner ("CUDA Version: 12.4")."""
    import re

    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"CUDA Version:\s*([0-9.]+)", out.stdout)
    return match.group(1) if match else None


def fingerprint(threads: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """Plain data that identifies where and how a number was measured."""
    versions = {k: v for k, v in library_versions().items() if v}
    return {
        "host": platform.node(),
        "cpu": cpu_info(),
        "gpu": gpu_info() if not str(device).startswith("cpu") else None,
        "threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


TRT_ADVICE = (
    "TensorRT needs an NVIDIA GPU with a recent driver (r535+ for CUDA 12 wheels, r580+ for CUDA 13) and "
    "`pip install -e '.[trt]'` (tensorrt, polygraphy, cuda-python). Run `benchbox doctor` to see what this "
    "machine has."
)


def trt_api_generation(version: str) -> str:
    """'strongly-typed' for TensorRT >= 10.12 (precision from the ONNX graph), 'weakly-typed' before."""
    return "strongly-typed" if parse_version(version) >= (10, 12) else "weakly-typed"


def tensorrt_status() -> dict[str, Any]:
    """What stands between this machine and a TensorRT run: package, version, GPU (asked of the driver)."""
    status: dict[str, Any] = {"available": False, "version": None, "api": None, "reason": None}
    try:
        import tensorrt as trt
    except ImportError:
        status["reason"] = "the tensorrt Python package is not installed"
        return status
    except Exception as exc:  # a wheel whose libraries cannot load
        status["reason"] = f"tensorrt failed to import: {exc}"
        return status
    status["version"] = trt.__version__
    status["api"] = trt_api_generation(trt.__version__)
    gpu = gpu_info()
    if gpu is None:
        status["reason"] = "no NVIDIA GPU is visible (nvidia-smi finds no driver or device)"
        return status
    status.update(available=True, gpu=gpu["name"], driver=gpu["driver"], cuda=gpu.get("cuda"))
    return status


def require_tensorrt() -> dict[str, Any]:
    """Raise a UserError with plain advice unless TensorRT can run here."""
    from benchbox.errors import UserError

    status = tensorrt_status()
    if not status["available"]:
        raise UserError(f"TensorRT is unavailable: {status['reason']}.", TRT_ADVICE)
    return status
