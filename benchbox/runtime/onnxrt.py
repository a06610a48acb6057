"""OrtRunner: ONNX Runtime sessions over the artifact's precision ONNX, with provider verification."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
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
    devices = ("cpu", "cuda", "tensorrt")
    precisions = ("fp32", "fp16", "int8", "int8-cpu", "int8-trt")
    description = "ONNX Runtime: CPU, CUDA or its TensorRT execution provider"

    @classmethod
    def create(cls, artifact, precision: str = "fp32", device: str = "cpu", **options) -> OrtRunner:
        """In eval (`pipeline`) the runner shares the CPU with decoding: idle threads sleep, and a batch is split
        over two single-threaded sessions on two or more cores."""
        pipeline = bool(options.get("pipeline", False))
        lanes = options.get("lanes") or (2 if pipeline and (os.cpu_count() or 1) >= 2 else 1)
        return cls(artifact, precision, device, threads=options.get("threads"), spin=not pipeline, lanes=lanes)

    def __init__(
        self,
        artifact,
        precision: str = "fp32",
        device: str = "cpu",
        threads: int | None = None,
        provider: str | None = None,
        provider_options: dict[str, Any] | None = None,
        spin: bool = True,
        lanes: int = 1,
    ) -> None:
        super().__init__(artifact, precision, device)
        self.threads = threads
        self.spin = spin
        self.lanes = max(1, lanes) if (provider or device) == "cpu" else 1
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
        cores = os.cpu_count() or 1
        if self.lanes > 1:  # each lane a session on its share of the cores; a batch is split across lanes
            options.intra_op_num_threads = max(1, (self.threads or cores) // self.lanes)
        elif self.threads:
            options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        # Idle intra-op threads sleep instead of spinning: during eval the decode threads need those cores.
        # (bench keeps ORT's default: a latency loop never idles, and spinning shaves wake-up time.)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0" if self.spin is False else "1")
        requested = PROVIDERS[self.provider]
        providers: list[Any] = [
            (name, self.provider_options) if name == requested[0] and self.provider_options else name
            for name in requested
        ]
        try:
            self._sessions = [
                ort.InferenceSession(str(path), sess_options=options, providers=providers) for _ in range(self.lanes)
            ]
        except Exception as exc:
            raise UserError(f"ONNX Runtime cannot load {path}: {exc}", "Re-run benchbox export.") from exc
        self._session = self._sessions[0]
        self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="benchbox-ort") if self.lanes > 1 else None
        active = self._session.get_providers()
        verify_providers(requested, active)
        self._input = self._session.get_inputs()[0].name
        self.details = {
            "onnxruntime": ort.__version__,
            "providers": active,
            "artifact_precision": self.artifact_precision,
            "intra_op_num_threads": options.intra_op_num_threads,
            "spinning": self.spin,
            "lanes": self.lanes,
        }

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        if self._pool is None or batch.shape[0] < 2 * self.lanes:
            return self._session.run(None, {self._input: batch})[0]
        parts = np.array_split(batch, self.lanes)
        futures = [self._pool.submit(s.run, None, {self._input: p}) for s, p in zip(self._sessions, parts)]
        return np.concatenate([f.result()[0] for f in futures])

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
        if self._pool is not None:
            self._pool.shutdown()
        self._session, self._sessions, self._pool = None, [], None
