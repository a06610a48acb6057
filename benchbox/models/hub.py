"""timm names, `hf-hub:ORG/NAME` and `torchvision:NAME`: pretrained weights from the local cache, downloaded only
when allowed.

Offline (`export --offline`, or HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set) means the caches are read directly
and nothing reaches for the network; a model whose weights are not cached is one clear error. Online, timm's and
torchvision's own loaders download (with their progress bars) into the usual caches. timm's `test_*` models
without a tag stay seeded random weights (fixtures), unless cached weights exist. The source dict records
where the weights came from: hub repository and revision, file and its sha256, or the checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from benchbox.errors import UserError, unknown_name
from benchbox.models import DataConfig, ResolvedModel, data_config_from_timm, load_checkpoint

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def offline_requested(flag: bool = False) -> bool:
    truthy = ("1", "true", "yes", "on")
    env = any(os.environ.get(name, "").strip().lower() in truthy for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return flag or env


def _sha(path: str | Path) -> str:
    from benchbox.hashing import sha256_file

    return sha256_file(path)


def cached_hub_file(repo_id: str, names: tuple[str, ...] = WEIGHT_FILES) -> tuple[str, str] | None:
    """(path, revision) of the first of `names` in the local Hugging Face cache, without any network access."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for name in names:
        found = try_to_load_from_cache(repo_id, name)
        if isinstance(found, str):
            parts = Path(found).parts
            revision = parts[parts.index("snapshots") + 1] if "snapshots" in parts else None
            return found, revision
    return None


def _offline_error(what: str, where: str) -> UserError:
    return UserError(
        f"{what} is not in the local cache, and downloads are off (--offline or HF_HUB_OFFLINE).",
        f"Download it once on a machine with network access ({where}), or pass --checkpoint PATH.",
    )


HUB_CHECK_TIMEOUT = 8.0  # seconds: a repository that does not exist, or a hub out of reach, is said at once


def check_hub_repo(repo: str, what: str) -> None:
    """Ask the hub once, with a short timeout and no retries, whether `repo` exists: a mistyped name or an
    unreachable hub is one line in seconds, not a download library retrying for half a minute."""
    import urllib.error
    import urllib.request

    url = f"{_hub_endpoint()}/api/models/{repo}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=HUB_CHECK_TIMEOUT).close()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 404):
            raise UserError(
                f"There is no model {repo!r} on the Hugging Face hub ({what}).",
                "Check the name (https://huggingface.co/models), or pass --checkpoint PATH.",
            ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise UserError(
            f"Cannot reach the Hugging Face hub for {what} ({getattr(exc, 'reason', exc)}).",
            "Check the network, set HF_HUB_OFFLINE=1 to use only the local cache, or pass --checkpoint PATH.",
        ) from exc


def _hub_endpoint() -> str:
    import os

    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _download_error(what: str, exc: BaseException) -> UserError:
    return UserError(
        f"Could not download the weights of {what}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
        "Check the network (or set HF_HUB_OFFLINE=1 and use a cached model), or pass --checkpoint PATH.",
    )


def resolve_timm(name: str, checkpoint: str | Path | None, offline: bool) -> ResolvedModel:
    import timm
    import torch

    if not timm.is_model(name):
        matches = timm.list_models(name) if any(c in name for c in "*?[") else []
        if matches:
            raise UserError(f"{name!r} is a pattern, not one model.", f"Matches: {', '.join(matches[:10])}")
        from benchbox.models.lite import LITE_PACKAGES

        raise unknown_name(
            "model",
            name,
            [*LITE_PACKAGES, *timm.list_models()],
            shown=[
                *LITE_PACKAGES,
                "any timm name",
                "hf-hub:ORG/NAME",
                "torchvision:NAME",
                "module:callable",
                "PATH.onnx",
            ],
        )
    source: dict[str, Any] = {"kind": "timm", "timm": name}
    if checkpoint is not None:
        model = timm.create_model(name, pretrained=False)
        load_checkpoint(model, checkpoint, source)
    else:
        model = _timm_pretrained(name, offline_requested(offline), source)
        if model is None:
            torch.manual_seed(0)  # random-init fixtures must be identical in every process
            model = timm.create_model(name, pretrained=False)
            source["pretrained"] = "random (timm test model)"
    return ResolvedModel(name, model, data_config_from_timm(model.pretrained_cfg), source)


def _timm_pretrained(name: str, offline: bool, source: dict[str, Any]):
    """A timm model with pretrained weights (cache first, then a download when allowed), or None for a bare
    `test_*` fixture with nothing cached."""
    import timm

    cfg = timm.get_pretrained_cfg(name)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    cached = cached_hub_file(hub_id) if hub_id else None
    if cached is None and cfg is not None and getattr(cfg, "url", None):
        import torch

        candidate = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        cached = (str(candidate), None) if candidate.is_file() else None
    if cached is not None:
        path, revision = cached
        source.update(hub=hub_id, revision=revision, file=path, weights_sha256=_sha(path), pretrained="local cache")
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": path})
    if name.startswith("test_") and "." not in name:
        return None
    if cfg is None or not (hub_id or getattr(cfg, "url", None)):
        raise UserError(f"timm has no pretrained weights for {name!r}.", "Pass --checkpoint PATH.")
    if offline:
        raise _offline_error(f"Pretrained weights for {name!r}", f"hub {hub_id}" if hub_id else cfg.url)
    if hub_id:
        check_hub_repo(hub_id, name)
    try:
        model = timm.create_model(name, pretrained=True)
    except Exception as exc:
        raise _download_error(name, exc) from exc
    found = cached_hub_file(hub_id) if hub_id else None
    source.update(hub=hub_id, pretrained="downloaded", url=getattr(cfg, "url", None) or None)
    if found:
        source.update(revision=found[1], file=found[0], weights_sha256=_sha(found[0]))
    return model


def resolve_hf_hub(name: str, checkpoint: str | Path | None, offline: bool) -> ResolvedModel:
    """`hf-hub:ORG/NAME`, the timm-format models on the Hugging Face hub (config.json + weights)."""
    import timm

    repo = name.split(":", 1)[1]
    source: dict[str, Any] = {"kind": "hf-hub", "hub": repo}
    config = cached_hub_file(repo, ("config.json",))
    weights = cached_hub_file(repo)
    if config is not None and (weights is not None or checkpoint is not None):
        settings = json.loads(Path(config[0]).read_text())
        architecture = settings.get("architecture") or settings.get("model_type")
        if not architecture:
            raise UserError(f"{config[0]} names no timm architecture.", "hf-hub: serves timm-format repositories.")
        overlay = dict(settings.get("pretrained_cfg") or {})
        kwargs = {"num_classes": settings["num_classes"]} if "num_classes" in settings else {}
        if checkpoint is None:
            overlay["file"] = weights[0]
            source.update(
                revision=weights[1], file=weights[0], weights_sha256=_sha(weights[0]), pretrained="local cache"
            )
        model = timm.create_model(architecture, pretrained=checkpoint is None, pretrained_cfg_overlay=overlay, **kwargs)
    elif offline_requested(offline):
        raise _offline_error(f"{name}", f"huggingface.co/{repo}")
    else:
        check_hub_repo(repo, name)
        try:
            model = timm.create_model(name, pretrained=checkpoint is None)
        except Exception as exc:
            raise _download_error(name, exc) from exc
        found = cached_hub_file(repo)
        source.update(pretrained="downloaded")
        if found:
            source.update(revision=found[1], file=found[0], weights_sha256=_sha(found[0]))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, source)
    return ResolvedModel(name, model, data_config_from_timm(model.pretrained_cfg), source)


def resolve_torchvision(name: str, checkpoint: str | Path | None, offline: bool) -> ResolvedModel:
    """`torchvision:NAME` with its DEFAULT weights enum (downloaded when allowed) or a checkpoint."""
    import torch
    import torchvision

    try:
        model = torchvision.models.get_model(name, weights=None)
    except ValueError as exc:
        raise unknown_name("torchvision model", name, torchvision.models.list_models()) from exc
    source: dict[str, Any] = {"kind": "torchvision", "torchvision": name}
    config = DataConfig(interpolation="bilinear")
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, source)
    else:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        config = _torchvision_config(weights)
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not path.is_file():
            if offline_requested(offline):
                raise _offline_error(f"torchvision weights {weights}", weights.url)
            try:
                torch.hub.load_state_dict_from_url(weights.url, progress=True, check_hash=True)
            except Exception as exc:
                raise _download_error(f"torchvision:{name}", exc) from exc
        load_checkpoint(model, path, source)
        source.update(weights=str(weights), url=weights.url, pretrained="local cache")
    return ResolvedModel(f"torchvision:{name}", model, config, source)


def _torchvision_config(weights) -> DataConfig:
    """The eval preprocessing of a torchvision weights enum (resize, crop, mean, std, interpolation)."""
    import math

    transform = weights.transforms()
    crop = int(getattr(transform, "crop_size", [224])[0])
    resize = int(getattr(transform, "resize_size", [256])[0])
    interpolation = str(getattr(transform, "interpolation", "bilinear")).split(".")[-1].lower()
    crop_pct = crop / resize
    if math.floor(crop / crop_pct) != resize:  # 224/232 rounds to 231.99...: aim between the integers instead
        crop_pct = crop / (resize + 0.5)
    return DataConfig(
        input_size=(3, crop, crop),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        crop_pct=crop_pct,
        interpolation=interpolation,
    )
