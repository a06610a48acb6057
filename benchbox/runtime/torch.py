"""TorchRunner: the source model in PyTorch eager mode (CPU, or CUDA with fp16/bf16 autocast-free casts)."""

from __future__ import annotations

import numpy as np

from benchbox.errors import UnsupportedPrecision, UserError
from benchbox.runtime.base import BaseRunner


class TorchRunner(BaseRunner):
    engine = "torch"
    devices = ("cpu", "cuda")
    precisions = ("fp32", "fp16", "bf16")
    description = "PyTorch eager: the source model itself (fp16/bf16 on CUDA)"

    @classmethod
    def create(cls, artifact, precision: str = "fp32", device: str = "cpu", **options) -> TorchRunner:
        return cls(artifact, precision, device, threads=options.get("threads"))

    def __init__(self, artifact, precision: str = "fp32", device: str = "cpu", threads: int | None = None) -> None:
        super().__init__(artifact, precision, device)
        self.threads = threads
        if precision not in self.precisions:
            raise UnsupportedPrecision(
                f"PyTorch eager has no {precision} path in benchbox.",
                "Quantized INT8 runs through ONNX Runtime (--engine ort) or TensorRT (--engine trt).",
            )
        if precision in ("fp16", "bf16") and device != "cuda":
            raise UnsupportedPrecision(f"torch {precision} is only measured on CUDA.", "Use --device cuda.")
        if artifact.source_kind == "onnx":
            raise UnsupportedPrecision(
                "This artifact starts from an ONNX file: there is no PyTorch model to run.",
                "Use --engine ort (or trt); parity is measured against the FP32 ONNX file.",
            )

    def activate_impl(self) -> None:
        import torch

        from benchbox.models import resolve_model

        if self.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but PyTorch sees no CUDA GPU.", "Run benchbox doctor.")
        if self.threads:
            torch.set_num_threads(self.threads)
        source = self.artifact.manifest["source"]
        resolved = resolve_model(self.artifact.model, source.get("checkpoint"), offline=True)  # never downloads
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]
        self._dtype = dtype
        self._module = resolved.module.to(device=self.device, dtype=dtype).eval()
        self.details = {"torch": torch.__version__, "threads": torch.get_num_threads()}

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, non_blocking=True).to(self._dtype)
            return self._module(x).float().cpu().numpy()

    def timed_step(self, batch: np.ndarray, mode: str = "end-to-end"):
        """On CUDA, "compute" keeps the input on the device and times the forward pass with CUDA events."""
        if self.device != "cuda" or mode != "compute":
            return super().timed_step(batch, mode)
        import torch

        x = torch.from_numpy(batch).to("cuda").to(self._dtype)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def step() -> float:
            with torch.inference_mode():
                start.record()
                self._module(x)
                end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        return step

    def deactivate_impl(self) -> None:
        self._module = None
