"""`module:callable` sources: a factory returning a torch module, or (module, DataConfig or dict)."""

from __future__ import annotations

import importlib

from benchbox.errors import UserError
from benchbox.models import DataConfig, ResolvedModel, data_config_from_timm


def resolve_callable(spec: str) -> ResolvedModel:
    module_name, attr = spec.split(":", 1)
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # ImportError, AttributeError, the module's own error, even sys.exit at import
        raise UserError(
            f"Cannot import {spec}: {_described(exc)}", "Use module:callable with an importable module."
        ) from exc
    if not callable(factory):
        raise UserError(f"{spec} is a {type(factory).__name__}, not a callable.", "Point at a function or class.")
    try:
        made = factory()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: user code that exits is a failed model, never a verdict
        raise UserError(f"Calling {spec}() raised {_described(exc)}", "Fix the factory function.") from exc
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


def _described(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit (it called exit({exc.code!r}))"
    return f"{type(exc).__name__}: {exc}"
