"""The environment fingerprint every latency record carries: CPU, threads, GPU and driver, library versions."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from benchbox.exporters.manifest import library_versions

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "fma")


@functools.cache
def cpu_info() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"model": model, "flags": sorted(f for f in CPU_FLAGS if f in flags), "logical_cores": os.cpu_count()}


@functools.cache
def gpu_info() -> dict[str, Any] | None:
    """GPU name, compute capability and driver via nvidia-smi (no CUDA import), or None."""
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
    name, driver, capability, memory = (part.strip() for part in out.stdout.splitlines()[0].split(","))
    return {"name": name, "driver": driver, "compute_capability": capability, "memory": memory}


def fingerprint(threads: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """Plain data that identifies where and how a latency number was measured."""
    versions = {k: v for k, v in library_versions().items() if v}
    return {
        "cpu": cpu_info(),
        "gpu": gpu_info() if device != "cpu" else None,
        "threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }
