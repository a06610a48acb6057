"""OrtRunner: ONNX Runtime sessions over the artifact's precision ONNX, with provider verification."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchbox.artifact import artifact_file_for
from benchbox.errors import UserError
from benchbox.runtime.base import BaseRunner

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def tensorrt_provider_options(artifact, precision: str) -> dict[str, str]:
    """ORT TensorRT provider: engine and timing caches next to the artifact (first session builds, later reuse)."""
    cache = artifact.directory / "engines" / "ort-tensorrt"
    cache.mkdir(parents=True, exist_ok=True)
    return {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache),
        "trt_engine_cache_prefix": precision,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache),
        "trt_max_workspace_size": str(4 << 30),
    }


def verify_providers(requested: list[str], active: list[str]) -> None:
    """ONNX Runtime silently falls back to CPU: refuse to go on unless the first requested provider is active."""
    if requested and requested[0] not in active:
        raise UserError(
            f"ONNX Runtime did not activate {requested[0]} (active: {', '.join(active)}); results would come from "
            "a different engine.",
            "Install onnxruntime-gpu with matching CUDA/cuDNN (and TensorRT 10 libraries for the TensorRT "
            "provider), or run benchbox doctor.",
        )


class OrtRunner(BaseRunner):
    engine = "ort"

    def __init__(
        self,
        artifact,
        precision: str = "fp32",
        device: str = "cpu",
        threads: int | None = None,
        provider: str | None = None,
        provider_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(artifact, precision, device)
        self.threads = threads
        self.provider = provider or device
        if self.provider not in PROVIDERS:
            raise UserError(f"Unknown ONNX Runtime device {self.provider!r}.", f"Use one of {sorted(PROVIDERS)}.")
        self.artifact_precision = artifact_file_for("ort", self.provider, precision)
        self.provider_options = provider_options or {}
        if self.provider == "tensorrt" and not self.provider_options:
            self.provider_options = tensorrt_provider_options(artifact, self.artifact_precision)

    def activate_impl(self) -> None:
        import onnxruntime as ort

        path = self.artifact.file_for(self.artifact_precision)
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        requested = PROVIDERS[self.provider]
        providers: list[Any] = [
            (name, self.provider_options) if name == requested[0] and self.provider_options else name
            for name in requested
        ]
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:
            raise UserError(f"ONNX Runtime cannot load {path}: {exc}", "Re-run benchbox export.") from exc
        active = self._session.get_providers()
        verify_providers(requested, active)
        self._input = self._session.get_inputs()[0].name
        self.details = {
            "onnxruntime": ort.__version__,
            "providers": active,
            "artifact_precision": self.artifact_precision,
            "intra_op_num_threads": options.intra_op_num_threads,
        }

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]

    def timed_step(self, batch: np.ndarray, mode: str = "end-to-end"):
        """On a GPU provider, "compute" binds a device-resident input and output with IOBinding."""
        if self.provider == "cpu" or mode != "compute":
            return super().timed_step(batch, mode)
        import onnxruntime as ort

        device_input = ort.OrtValue.ortvalue_from_numpy(batch, "cuda", 0)
        binding = self._session.io_binding()
        binding.bind_ortvalue_input(self._input, device_input)
        binding.bind_output(self._session.get_outputs()[0].name, "cuda", 0)

        def step() -> None:
            self._session.run_with_iobinding(binding)
            binding.synchronize_outputs()

        return step

    def deactivate_impl(self) -> None:
        self._session = None
