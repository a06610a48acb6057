"""TrtRunner: a TensorRT engine with name-based I/O (set_input_shape, set_tensor_address, execute_async_v3).

The runner does not build engines: it receives a loader (`EngineFromOnnx`, Polygraphy's composition) that
returns the path of a cached or freshly built engine for this GPU, and deserializes it on activation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.environment import require_tensorrt
from benchbox.errors import UserError
from benchbox.runtime.base import BaseRunner


class TrtRunner(BaseRunner):
    engine = "trt"

    def __init__(
        self,
        artifact,
        loader: Callable[[], tuple[Path, Any]],
        precision: str = "fp32",
        cuda_backend: str = "cuda-python",
    ) -> None:
        super().__init__(artifact, precision, "cuda")
        self.loader = loader
        self.cuda_backend = cuda_backend
        self.max_batch = int(getattr(loader, "max_batch", 32))

    def activate_impl(self) -> None:
        require_tensorrt()
        import tensorrt as trt

        from benchbox.runtime.cuda_memory import create_cuda_memory

        path, spec = self.loader()
        self.mem = create_cuda_memory(self.cuda_backend)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self._engine is None:
            raise UserError(f"TensorRT could not deserialize {path}.", "Delete it; benchbox rebuilds it.")
        self._context = self._engine.create_execution_context()
        self._stream = self.mem.stream()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if n not in self._inputs]
        max_shape = tuple(self._engine.get_tensor_profile_shape(self._inputs[0], 0)[2])
        self.max_batch = int(max_shape[0])
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
            "profile": [list(s) for s in spec.profile],
            "tf32": spec.tf32,
            "notes": list(getattr(self.loader, "notes", [])),
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
