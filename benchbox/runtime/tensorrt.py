"""TensorRT: availability checks now; the TrtRunner is in the same module (name-based I/O, TRT 10 and 11)."""

from __future__ import annotations

from typing import Any

import numpy as np

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


# --------------------------------------------------------------------------------------------------------------
from benchbox.runtime.base import BaseRunner  # noqa: E402  (after the availability helpers the CLI imports)


class TrtRunner(BaseRunner):
    """A TensorRT engine with name-based I/O: set_input_shape, set_tensor_address, execute_async_v3."""

    engine = "trt"

    def __init__(
        self,
        artifact,
        precision: str = "fp32",
        device: str = "cuda",
        cuda_backend: str = "cuda-python",
        max_batch: int = 32,
        opt_batch: int = 8,
        threads: int | None = None,
    ) -> None:
        super().__init__(artifact, precision, "cuda" if device == "cpu" else device)
        self.cuda_backend = cuda_backend
        self.max_batch, self.opt_batch = max_batch, opt_batch

    def activate_impl(self) -> None:
        require_tensorrt()
        import tensorrt as trt

        from benchbox.exporters.tensorrt import EngineFromOnnx
        from benchbox.runtime.cuda_memory import create_cuda_memory

        built = self.artifact.manifest.get("engines", {}).get(self.precision, {})
        builder = EngineFromOnnx(
            self.artifact, self.precision, self.opt_batch, self.max_batch, tf32=bool(built.get("tf32", False))
        )  # the choice made at export time
        path, spec = builder()
        self.mem = create_cuda_memory(self.cuda_backend)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise UserError(f"TensorRT could not deserialize {path}.", "Delete it; benchbox rebuilds it.")
        self._context = self._engine.create_execution_context()
        self._stream = self.mem.stream()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if n not in self._inputs]
        max_shape = tuple(self._engine.get_tensor_profile_shape(self._inputs[0], 0)[2])
        self._buffers: dict[str, tuple[int, np.ndarray]] = {}
        self._context.set_input_shape(self._inputs[0], max_shape)
        for name in names:
            shape = tuple(self._context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            host = self.mem.pinned_empty(shape, dtype)
            self._buffers[name] = (self.mem.malloc(host.nbytes), host)
            self._context.set_tensor_address(name, self._buffers[name][0])
        self.details = {
            "tensorrt": trt.__version__,
            "engine": str(path),
            "cuda_backend": self.mem.name,
            "strongly_typed": spec.extra["flags"] == [],
            "builder_flags": spec.extra["flags"],
            "tf32": spec.tf32,
            "profile": [list(s) for s in spec.profile],
            "notes": builder.notes,
        }

    def _enqueue(self, batch: np.ndarray) -> None:
        name = self._inputs[0]
        if batch.shape[0] > self.max_batch:
            raise ValueError(f"batch {batch.shape[0]} exceeds the engine profile maximum {self.max_batch}")
        self._context.set_input_shape(name, batch.shape)
        device, host = self._buffers[name]
        view = host.reshape(-1)[: batch.size].reshape(batch.shape)
        np.copyto(view, batch.astype(host.dtype, copy=False))
        self.mem.htod_async(device, view, self._stream)
        self._context.execute_async_v3(self.mem.stream_handle(self._stream))

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        self._enqueue(batch)
        out = self._outputs[0]
        device, host = self._buffers[out]
        shape = tuple(self._context.get_tensor_shape(out))
        view = host.reshape(-1)[: int(np.prod(shape))].reshape(shape)
        self.mem.dtoh_async(view, device, self._stream)
        self.mem.synchronize(self._stream)
        return np.array(view, dtype=np.float32)

    def timed_step(self, batch: np.ndarray, mode: str = "end-to-end"):
        """ "compute": the input stays on the device; the enqueue is timed with CUDA events."""
        if mode != "compute":
            return super().timed_step(batch, mode)
        self.infer(batch)
        start, end = self.mem.event(), self.mem.event()
        handle = self.mem.stream_handle(self._stream)

        def step() -> float:
            self.mem.record(start, self._stream)
            self._context.execute_async_v3(handle)
            self.mem.record(end, self._stream)
            return self.mem.elapsed_ms(start, end)

        return step

    def deactivate_impl(self) -> None:
        for device, host in getattr(self, "_buffers", {}).values():
            self.mem.free(device)
            self.mem.free_pinned(host)
        self._buffers = {}
        self._context = self._engine = None
