"""`benchbox doctor`: what this machine can run, and plain advice for what is missing. Always exits 0."""

from __future__ import annotations

from typing import Any


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def diagnose() -> list[dict[str, Any]]:
    """Rows: component, status, detail, advice."""
    from benchbox.environment import TRT_ADVICE, cpu_info, gpu_info, tensorrt_status

    rows = []
    cpu = cpu_info()
    rows.append(
        {
            "component": "CPU",
            "status": "ok",
            "detail": f"{cpu['model']}, {cpu['logical_cores']} cores, {' '.join(cpu['flags'])}",
            "advice": "",
        }
    )
    gpu = gpu_info()
    rows.append(
        {
            "component": "NVIDIA GPU / driver",
            "status": "ok" if gpu else "missing",
            "detail": f"{gpu['name']} (sm {gpu['compute_capability']}), driver {gpu['driver']}"
            if gpu
            else "nvidia-smi not found or no GPU",
            "advice": "" if gpu else "CPU engines only (ort, torch).",
        }
    )
    try:
        import torch

        cuda = torch.cuda.is_available()
        rows.append(
            {
                "component": "PyTorch",
                "status": "ok",
                "detail": f"{torch.__version__}, CUDA {'available' if cuda else 'not available'}",
                "advice": "" if cuda else "torch fp16/bf16 need a CUDA build of torch and a GPU.",
            }
        )
    except ImportError:
        rows.append({"component": "PyTorch", "status": "missing", "detail": "", "advice": "pip install -e ."})
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
        gpu_eps = [p for p in providers if p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")]
        rows.append(
            {
                "component": "ONNX Runtime",
                "status": "ok",
                "detail": f"{ort.__version__}: {', '.join(providers)}",
                "advice": ""
                if gpu_eps
                else "GPU providers: pip install -e '.[gpu]' (onnxruntime-gpu); its "
                "TensorRT provider needs TensorRT 10 libraries.",
            }
        )
    except ImportError:
        rows.append({"component": "ONNX Runtime", "status": "missing", "detail": "", "advice": "pip install -e ."})
    status = tensorrt_status()
    rows.append(
        {
            "component": "TensorRT",
            "status": "ok" if status["available"] else "unavailable",
            "detail": f"{status['version']} ({status['api']})" if status["version"] else status["reason"],
            "advice": "" if status["available"] else f"TensorRT is unavailable: {status['reason']}. {TRT_ADVICE}",
        }
    )
    for name, extra in (("polygraphy", "[trt]"), ("cuda-python", "[trt]"), ("pycuda", "[pycuda]")):
        version = _version(name)
        rows.append(
            {
                "component": name,
                "status": "ok" if version else "missing",
                "detail": version or "",
                "advice": "" if version else f"pip install -e '.{extra}'",
            }
        )
    return rows
