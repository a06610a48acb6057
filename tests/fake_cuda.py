"""A stand-in CUDA runtime under Polygraphy's `polygraphy.cuda` wrapper, for CPU machines: "device" memory is host
memory, streams are counters, copies are memmoves. Polygraphy's own Stream, DeviceArray, DeviceView and TrtRunner
run on it unchanged, calling the cudart functions they call on a GPU (cudaMalloc, cudaFree, cudaMemcpy[Async],
cudaStream{Create,Synchronize,Destroy}) with the ctypes arguments they pass; `allocations` and `streams` say what
was not given back."""

from __future__ import annotations

import ctypes
import itertools

allocations: dict[int, object] = {}
streams: set[int] = set()
_ids = itertools.count(0x1000)


def _value(arg) -> int:
    return int(getattr(arg, "value", arg) or 0)


class FakeCudart:
    """The cudart functions Polygraphy's wrapper calls, with their ctypes signatures and 0 for success."""

    def cudaMalloc(self, pointer_ref, nbytes) -> int:  # noqa: N802 - cudart's names
        size = max(_value(nbytes), 1)
        buffer = (ctypes.c_char * size)()
        address = ctypes.addressof(buffer)
        allocations[address] = buffer
        pointer_ref._obj.value = address
        return 0

    def cudaFree(self, pointer) -> int:  # noqa: N802
        address = _value(pointer)
        if address and allocations.pop(address, None) is None:
            return 1  # cudaErrorInvalidValue: not an allocation of ours
        return 0

    def cudaMemcpy(self, dst, src, nbytes, kind) -> int:  # noqa: N802
        ctypes.memmove(_value(dst), _value(src), _value(nbytes))
        return 0

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream) -> int:  # noqa: N802
        if _value(stream) not in streams:
            return 400  # cudaErrorInvalidResourceHandle
        return self.cudaMemcpy(dst, src, nbytes, kind)

    def cudaStreamCreate(self, pointer_ref) -> int:  # noqa: N802
        handle = next(_ids)
        streams.add(handle)
        pointer_ref._obj.value = handle
        return 0

    def cudaStreamSynchronize(self, stream) -> int:  # noqa: N802
        return 0 if _value(stream) in streams else 400

    def cudaStreamDestroy(self, stream) -> int:  # noqa: N802
        if _value(stream) not in streams:
            return 400
        streams.discard(_value(stream))
        return 0


def install() -> None:
    """Make Polygraphy's global CUDA wrapper run on the stand-in runtime."""
    from polygraphy.cuda import cuda

    wrapper = object.__new__(cuda.Cuda)
    wrapper.handle = FakeCudart()
    cuda.G_CUDA = wrapper
    allocations.clear()
    streams.clear()


def remove() -> None:
    from polygraphy.cuda import cuda

    cuda.G_CUDA = None
