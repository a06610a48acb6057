"""Typed results: SetKey (which images), Cell (which model/engine/device/precision on them), Record (one number).

The JSON form of a record is DESIGN §3's flat object: `model engine device precision testset variant metric value
n ci95`, plus optional fields that are present only when they mean something:
`reference` (what a comparison or parity figure is against, e.g. "ort/fp32"), `batch_size` and `mode` (latency),
`samples` (digest of the images scored: figures pair only on equal digests), `flags` (e.g. "synthesized",
"calibration-overlap", "partial-severities"), `error` (failed or unsupported cells) and free-form extras
(`n10`/`n01` of a paired test, `env`, `runner`, `iterations`, ...). `variant` only ever names the set's variant:
a V2 folder, a C corruption ("fog") or corruption/severity ("fog/3"), a P perturbation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

IDENTITY = ("model", "engine", "device", "precision", "testset", "variant", "model_id")


def base_device(device: str) -> str:
    """The device a runner uses: `cuda@a100` (a cell on a plan's named cluster target) runs on `cuda`."""
    return device.split("@", 1)[0]


OPTIONAL = ("reference", "batch_size", "mode", "samples", "flags", "error")


@dataclass(frozen=True, order=True)
class SetKey:
    """A test set and one of its variants (None for sets without variants)."""

    testset: str
    variant: str | None = None

    @property
    def label(self) -> str:
        """Display text, e.g. 'c/fog/3' (never parsed back)."""
        return self.testset if self.variant is None else f"{self.testset}/{self.variant}"


@dataclass(frozen=True)
class Cell:
    """Model x engine x device x precision, optionally on one set variant.

    `model` is the model's label (a name people read); `model_id` its identity (a short hash of the artifact's
    FP32 file): two sources with one name are two models, and only cells of one `model_id` are ever compared.
    """

    model: str
    engine: str
    device: str
    precision: str
    testset: str | None = None
    variant: str | None = None
    model_id: str | None = None

    def at(self, key: SetKey | None) -> Cell:
        return replace(self, testset=key.testset if key else None, variant=key.variant if key else None)

    def at_variant(self, variant: str | None) -> Cell:
        return replace(self, variant=variant)

    @property
    def column(self) -> str:
        return f"{self.engine}/{self.precision}"

    @property
    def model_key(self) -> tuple[str, str | None]:
        """What identifies the model: its label and its identity (cells pair only within one)."""
        return (self.model, self.model_id)


def clean_number(value: Any) -> Any:
    """numpy scalars to Python; NaN to None (JSON has no NaN)."""
    import numpy as np  # here, not at the top: `benchbox --help` imports this module and must stay light

    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass(frozen=True)
class Record:
    """One number about one cell."""

    cell: Cell
    metric: str
    value: float | None
    n: int | None = None
    ci95: tuple[float | None, float | None] | None = None
    reference: str | None = None
    batch_size: int | None = None
    mode: str | None = None
    samples: str | None = None
    flags: tuple[str, ...] = ()
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", clean_number(self.value))
        object.__setattr__(self, "n", clean_number(self.n))
        if self.ci95 is not None:
            object.__setattr__(self, "ci95", tuple(clean_number(c) for c in self.ci95))
        object.__setattr__(self, "flags", tuple(dict.fromkeys(self.flags)))

    def with_flags(self, *flags: str) -> Record:
        return replace(self, flags=(*self.flags, *flags))

    def __getattr__(self, name: str) -> Any:
        cell = object.__getattribute__(self, "cell")
        if name in IDENTITY:
            return getattr(cell, name)
        raise AttributeError(name)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {key: getattr(self.cell, key) for key in IDENTITY}
        data.update(metric=self.metric, value=self.value, n=self.n, ci95=list(self.ci95) if self.ci95 else None)
        for key in OPTIONAL:
            value = getattr(self, key)
            if value not in (None, ()):
                data[key] = list(value) if key == "flags" else value
        data.update({k: clean_number(v) for k, v in self.extra.items() if v is not None})
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        cell = Cell(*(data.get(key) for key in IDENTITY))
        known = {"metric", "value", "n", "ci95", *IDENTITY, *OPTIONAL}
        ci = data.get("ci95")
        return cls(
            cell,
            data["metric"],
            data.get("value"),
            data.get("n"),
            tuple(ci) if ci else None,
            data.get("reference"),
            data.get("batch_size"),
            data.get("mode"),
            data.get("samples"),
            tuple(data.get("flags") or ()),
            data.get("error"),
            {k: v for k, v in data.items() if k not in known},
        )


def failure_record(cell: Cell, error: str, unsupported: bool = False) -> Record:
    """The record of a cell that could not produce numbers: metric 'unsupported' or 'failed', with the reason."""
    return Record(cell, "unsupported" if unsupported else "failed", None, 0, error=error)
