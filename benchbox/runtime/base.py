"""BaseRunner: public methods validate, `*_impl` methods do the work (Polygraphy's shape)."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchbox.errors import UnsupportedPrecision, UserError

__all__ = ["BaseRunner", "UnsupportedPrecision"]


class BaseRunner:
    """Runs float32 NCHW batches through one engine at one precision and returns float32 logits.

    An engine is a subclass registered under the entry-point group `benchbox.engines` (docs/plugins.md): it names
    itself (`engine`), says where it runs (`devices`; `accepted_devices` adds what --device may say for it) and at
    which precisions (`precisions`), and is made by `create`. Public methods check, `*_impl` methods work.
    """

    engine = "base"
    devices: tuple[str, ...] = ("cpu",)
    precisions: tuple[str, ...] = ("fp32",)
    description = ""

    accepted_devices: tuple[str, ...] = ("cpu",)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "accepted_devices" not in cls.__dict__:
            cls.accepted_devices = cls.devices

    @classmethod
    def create(cls, artifact, precision: str = "fp32", device: str = "cpu", **options) -> BaseRunner:
        """The runner for an artifact at a precision on a device; `options` as benchbox.runtime.create_runner's
        (an engine takes the ones it knows: threads, max_batch, pipeline, cuda_backend)."""
        return cls(artifact, precision, device)

    def __init__(self, artifact, precision: str = "fp32", device: str = "cpu") -> None:
        self.artifact = artifact
        self.precision = precision
        self.device = device
        self.is_active = False
        self.details: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return f"{self.engine}-{self.device}-{self.precision}"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.artifact.data_config.input_size)

    def activate(self) -> BaseRunner:
        if self.is_active:
            return self
        self.activate_impl()
        self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def __enter__(self) -> BaseRunner:
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits (N, classes) float32 for a float32 (N, C, H, W) batch."""
        if not self.is_active:
            raise RuntimeError(f"{self.name} is not active; call activate() first")
        if not isinstance(batch, np.ndarray) or batch.dtype != np.float32:
            raise TypeError(f"expected a float32 numpy batch, got {type(batch).__name__} {getattr(batch, 'dtype', '')}")
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self.input_shape:
            raise ValueError(f"expected shape (N, {', '.join(map(str, self.input_shape))}), got {batch.shape}")
        out = self.infer_impl(np.ascontiguousarray(batch))
        if not isinstance(out, np.ndarray) or out.ndim != 2 or out.shape[0] != batch.shape[0]:
            raise RuntimeError(f"{self.name} returned {getattr(out, 'shape', type(out))} for batch {batch.shape}")
        return out.astype(np.float32, copy=False)

    def timed_step(self, batch: np.ndarray, mode: str = "end-to-end"):
        """A no-argument callable running one inference for the latency loop.

        It returns its own latency in ms when it can time the device precisely (CUDA events), else None
        (the host clock around the call then counts, the device synchronised inside). On the CPU there are
        no transfers, so "compute" and "end-to-end" are the same loop.
        """
        if mode not in ("end-to-end", "compute"):
            raise UserError(f"Unknown latency mode {mode!r}.", "Use end-to-end or compute.")
        self.infer(batch)  # validates once; the loop then skips the checks
        batch = np.ascontiguousarray(batch)
        return lambda: (self.infer_impl(batch), None)[1]

    def activate_impl(self) -> None:
        raise NotImplementedError

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def deactivate_impl(self) -> None:
        pass
