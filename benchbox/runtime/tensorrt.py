"""TrtRunner: a TensorRT engine run by NVIDIA Polygraphy's TrtRunner, its device memory and stream from
`polygraphy.cuda` (no hand-written CUDA memory code in benchbox).

benchbox keeps what is its own: the engine loader (`EngineFromOnnx`: built or taken from benchbox's cache by
content key, a foreign engine refused and rebuilt), the batch checks, the `--mode compute` loop and the record of
what ran. Polygraphy deserializes the engine, owns the execution context, the name-based I/O
(`set_input_shape`, `set_tensor_address`, an output allocator) and `execute_async_v3`, and frees its buffers and
stream when deactivated. With `--cuda-backend pycuda` (where pycuda is installed) the compute-mode input is a
pycuda allocation, viewed through Polygraphy's DeviceView: the runner is the same either way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.environment import require_tensorrt
from benchbox.errors import UserError
from benchbox.runtime.base import BaseRunner

CUDA_BACKENDS = ("cuda-python", "polygraphy", "pycuda")  # cuda-python: the name of the default before Polygraphy


class TrtRunner(BaseRunner):
    engine = "trt"
    devices = ("cuda",)
    accepted_devices = ("cuda", "cpu")  # --device defaults to cpu; a TensorRT cell is always recorded as cuda
    precisions = ("fp32", "fp16", "int8", "int8-trt")
    description = "TensorRT engines built from the artifact's ONNX files (NVIDIA GPU), run by Polygraphy"

    @classmethod
    def create(cls, artifact, precision: str = "fp32", device: str = "cuda", **options) -> TrtRunner:
        """The engine loader (cached by content key; refused and rebuilt when foreign) and a runner over it."""
        from benchbox.exporters.tensorrt import EngineFromOnnx

        max_batch = max(int(options.get("max_batch") or 32), 1)
        built = (artifact.manifest.get("engines") or {}).get(precision) or {}
        loader = EngineFromOnnx(
            artifact, precision, opt_batch=min(8, max_batch), max_batch=max_batch, tf32=bool(built.get("tf32", False))
        )
        return cls(artifact, loader, precision, cuda_backend=options.get("cuda_backend") or "polygraphy")

    def __init__(
        self,
        artifact,
        loader: Callable[[], tuple[Path, Any]],
        precision: str = "fp32",
        cuda_backend: str = "polygraphy",
    ) -> None:
        super().__init__(artifact, precision, "cuda")
        if cuda_backend not in CUDA_BACKENDS:
            raise UserError(f"Unknown CUDA backend {cuda_backend!r}.", f"Use one of {', '.join(CUDA_BACKENDS)}.")
        self.loader = loader
        self.cuda_backend = "polygraphy" if cuda_backend == "cuda-python" else cuda_backend
        self.max_batch = int(getattr(loader, "max_batch", 32))
        self._runner = None
        self._device_inputs: list[Any] = []

    def activate_impl(self) -> None:
        require_tensorrt()
        import tensorrt as trt
        from polygraphy.backend.trt import EngineFromBytes
        from polygraphy.backend.trt import TrtRunner as PolygraphyTrtRunner

        path, spec = self.loader()
        self._runner = PolygraphyTrtRunner(EngineFromBytes(Path(path).read_bytes()), name=f"benchbox-{self.precision}")
        try:
            self._runner.activate()
        except Exception as exc:  # Polygraphy logs and raises its own exception type on a bad engine
            self._runner = None
            raise UserError(f"TensorRT could not run {path}: {exc}", "Delete it; benchbox rebuilds it.") from exc
        engine = self._runner.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not outputs:
            raise UserError(f"{path} has inputs {inputs} and outputs {outputs}; benchbox runs one image input.")
        self._input, self._output = inputs[0], outputs[0]
        self.max_batch = int(tuple(engine.get_tensor_profile_shape(self._input, 0)[2])[0])
        self.details = {
            "tensorrt": trt.__version__,
            "engine": str(path),
            "runner": "polygraphy.backend.trt.TrtRunner",
            "cuda_backend": self.cuda_backend,
            "profile": [list(s) for s in spec.profile],
            "tf32": spec.tf32,
            "notes": list(getattr(self.loader, "notes", [])),
        }

    def _check_batch(self, batch: np.ndarray) -> None:
        if batch.shape[0] > self.max_batch:
            raise ValueError(f"batch {batch.shape[0]} exceeds the engine profile maximum {self.max_batch}")

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        """Host in, host out: Polygraphy copies the batch to the device, runs, copies the logits back, syncs."""
        self._check_batch(batch)
        outputs = self._runner.infer({self._input: batch}, check_inputs=False)  # checked by BaseRunner.infer
        return np.array(outputs[self._output], dtype=np.float32)

    def timed_step(self, batch: np.ndarray, mode: str = "end-to-end"):
        """`compute`: the input is copied to the device once and stays there; each step runs the engine and leaves
        the logits on the device. Timed on the host clock: Polygraphy's runner synchronises its stream at the end
        of every inference (it has no CUDA-event API to time the device alone)."""
        if mode != "compute":
            return super().timed_step(batch, mode)
        self.infer(batch)  # validates the batch and warms the engine up
        device_input = self._device_copy(np.ascontiguousarray(batch))
        feed = {self._input: device_input}

        def step() -> None:
            self._runner.infer(feed, check_inputs=False, copy_outputs_to_host=False)

        return step

    def _device_copy(self, batch: np.ndarray):
        """The batch in device memory, as a Polygraphy DeviceView (from pycuda with that backend)."""
        from polygraphy import cuda

        if self.cuda_backend == "pycuda":
            try:
                import pycuda.autoinit  # noqa: F401 - creates the CUDA context pycuda allocates in
                import pycuda.driver as driver
            except ImportError as exc:
                raise UserError("--cuda-backend pycuda needs pycuda.", "pip install -e '.[pycuda]'") from exc
            allocation = driver.to_device(batch)
            self._device_inputs.append(allocation)  # freed when the runner deactivates
            return cuda.DeviceView(int(allocation), batch.shape, batch.dtype)
        array = cuda.DeviceArray(shape=batch.shape, dtype=batch.dtype)
        array.copy_from(batch, stream=self._runner.stream)
        self._runner.stream.synchronize()
        self._device_inputs.append(array)
        return array

    def deactivate_impl(self) -> None:
        for buffer in self._device_inputs:
            free = getattr(buffer, "free", None)
            if free is not None:
                free()
        self._device_inputs = []
        if self._runner is not None:
            # hand-written because Polygraphy (0.53) frees its input and context memory on deactivate but not the
            # buffers of its output allocator: without this, every activation would leak the output's memory
            allocator = getattr(self._runner, "output_allocator", None)
            for buffer in getattr(allocator, "buffers", {}).values():
                if hasattr(buffer, "free"):
                    buffer.free()
            self._runner.deactivate()  # frees Polygraphy's other buffers and destroys its stream
            self._runner = None
