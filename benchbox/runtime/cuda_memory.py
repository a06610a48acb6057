"""Device memory, streams and events for the TensorRT runner, behind one small adapter.

Two implementations: cuda-python (`cuda.bindings.runtime`, the default: binary wheels, what NVIDIA's own
TensorRT samples use since 10.13) and pycuda (source-built; chosen with `--cuda-backend pycuda`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchbox.errors import UserError

BACKENDS = ("cuda-python", "pycuda")


class CudaMemory:
    """The operations the runner needs. Pointers are ints; host buffers are pinned numpy arrays."""

    name = "base"

    def malloc(self, nbytes: int) -> int:
        raise NotImplementedError

    def free(self, ptr: int) -> None:
        raise NotImplementedError

    def pinned_empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        raise NotImplementedError

    def free_pinned(self, array: np.ndarray) -> None:
        raise NotImplementedError

    def stream(self) -> Any:
        raise NotImplementedError

    def stream_handle(self, stream: Any) -> int:
        raise NotImplementedError

    def htod_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        raise NotImplementedError

    def dtoh_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        raise NotImplementedError

    def synchronize(self, stream: Any) -> None:
        raise NotImplementedError

    def event(self) -> Any:
        raise NotImplementedError

    def record(self, event: Any, stream: Any) -> None:
        raise NotImplementedError

    def elapsed_ms(self, start: Any, end: Any) -> float:
        raise NotImplementedError


def _check(result):
    """cuda-python returns (err, *values); raise on an error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    code = int(getattr(err, "value", err))
    if code != 0:
        raise RuntimeError(f"CUDA error {code} ({err})")
    return values[0] if len(values) == 1 else tuple(values)


class CudaPythonMemory(CudaMemory):
    name = "cuda-python"

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError as exc:
            raise UserError("cuda-python is not installed.", "pip install -e '.[trt]' (cuda-python).") from exc
        self.rt = cudart
        self._pinned: dict[int, int] = {}

    def malloc(self, nbytes: int) -> int:
        return int(_check(self.rt.cudaMalloc(nbytes)))

    def free(self, ptr: int) -> None:
        _check(self.rt.cudaFree(ptr))

    def pinned_empty(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        ptr = int(_check(self.rt.cudaMallocHost(nbytes)))
        import ctypes

        buffer = (ctypes.c_byte * nbytes).from_address(ptr)
        array = np.frombuffer(buffer, dtype=dtype).reshape(shape)
        self._pinned[id(array)] = ptr
        return array

    def free_pinned(self, array: np.ndarray) -> None:
        ptr = self._pinned.pop(id(array), None)
        if ptr is not None:
            _check(self.rt.cudaFreeHost(ptr))

    def stream(self):
        return _check(self.rt.cudaStreamCreate())

    def stream_handle(self, stream) -> int:
        return int(stream)

    def htod_async(self, dst: int, src: np.ndarray, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        _check(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream))

    def dtoh_async(self, dst: np.ndarray, src: int, stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _check(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream))

    def synchronize(self, stream) -> None:
        _check(self.rt.cudaStreamSynchronize(stream))

    def event(self):
        return _check(self.rt.cudaEventCreate())

    def record(self, event, stream) -> None:
        _check(self.rt.cudaEventRecord(event, stream))

    def elapsed_ms(self, start, end) -> float:
        _check(self.rt.cudaEventSynchronize(end))
        return float(_check(self.rt.cudaEventElapsedTime(start, end)))


class PycudaMemory(CudaMemory):
    name = "pycuda"

    def __init__(self) -> None:
        try:
            import pycuda.autoinit  # noqa: F401  (creates the context)
            import pycuda.driver as cuda
        except ImportError as exc:
            raise UserError("pycuda is not installed.", "pip install -e '.[pycuda]' (needs the CUDA toolkit).") from exc
        self.cuda = cuda
        self._allocations: dict[int, Any] = {}

    def malloc(self, nbytes: int) -> int:
        allocation = self.cuda.mem_alloc(nbytes)
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, ptr: int) -> None:
        allocation = self._allocations.pop(ptr, None)
        if allocation is not None:
            allocation.free()

    def pinned_empty(self, shape, dtype) -> np.ndarray:
        return self.cuda.pagelocked_empty(shape, dtype)

    def free_pinned(self, array: np.ndarray) -> None:
        base = getattr(array, "base", None)
        if base is not None and hasattr(base, "free"):
            base.free()

    def stream(self):
        return self.cuda.Stream()

    def stream_handle(self, stream) -> int:
        return int(stream.handle)

    def htod_async(self, dst: int, src: np.ndarray, stream) -> None:
        self.cuda.memcpy_htod_async(dst, src, stream)

    def dtoh_async(self, dst: np.ndarray, src: int, stream) -> None:
        self.cuda.memcpy_dtoh_async(dst, src, stream)

    def synchronize(self, stream) -> None:
        stream.synchronize()

    def event(self):
        return self.cuda.Event()

    def record(self, event, stream) -> None:
        event.record(stream)

    def elapsed_ms(self, start, end) -> float:
        end.synchronize()
        return float(start.time_till(end))


def create_cuda_memory(backend: str = "cuda-python") -> CudaMemory:
    if backend == "cuda-python":
        return CudaPythonMemory()
    if backend == "pycuda":
        return PycudaMemory()
    from benchbox.errors import unknown_name

    raise unknown_name("CUDA backend", backend, BACKENDS)
