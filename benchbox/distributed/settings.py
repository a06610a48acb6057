"""A plan's [ray] table, checked before any work: the cluster address, how work is cut (shard size), retried
and placed (CPUs per unit, device targets with Ray resources). Nothing here imports Ray."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from benchbox.errors import UserError

DEVICES = ("cpu", "cuda", "tensorrt")
TARGET_KEYS = ("device", "num_cpus", "num_gpus", "resources")


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class RaySettings:
    """How to reach the cluster and how to cut and place the work (the plan's [ray] table, --ray on top).

    `targets`: a device name (`cuda`) sets the resources of that device's units; any other name (`a100`, with
    `device = "cuda"`) is a target of its own: the plan's cells on that device run once per such target, as
    device `cuda@a100`, so two GPU types give two sets of records (a TensorRT engine only runs where it was built).
    """

    address: str
    shard_size: int = 2048
    max_retries: int = 3
    cpus_per_unit: float = 1.0
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def devices(self, device: str) -> list[str]:
        """The cell devices a plan's `device` becomes on this cluster: one per named target, else itself."""
        named = [name for name, t in self.targets.items() if name not in DEVICES and t["device"] == device]
        return [f"{device}@{name}" for name in named] or [device]

    def resources(self, device: str) -> dict[str, Any]:
        """Ray resource requests of a unit on `device` (`cuda`, `cuda@a100`): its target's, or one CPU (and GPU)."""
        base, _, name = device.partition("@")
        request: dict[str, Any] = {"num_cpus": self.cpus_per_unit}
        if base != "cpu":
            request["num_gpus"] = 1
        request.update({k: v for k, v in self.targets.get(name or base, {}).items() if k != "device"})
        return request


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
        raise UserError(f"{name} = {value!r} in {where}: expected a number of at least 0.")
    return value


def _target(name: str, table: Any, where: str) -> dict[str, Any]:
    where = f"[ray.targets.{name}] of {where}"
    example = 'e.g. device = "cuda", resources = { a100 = 1 }'
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table, {example}.")
    if not NAME.match(name):
        raise UserError(f"Target name {name!r} in {where}: use letters, digits, '_', '.' and '-'.")
    target: dict[str, Any] = {"device": name} if name in DEVICES else {}
    for key, value in table.items():
        if key not in TARGET_KEYS:
            from benchbox.options import did_you_mean

            raise UserError(f"Unknown option {key!r} in {where}.{did_you_mean(key, list(TARGET_KEYS))}")
        if key == "device":
            if value not in DEVICES or (name in DEVICES and value != name):
                raise UserError(f"device = {value!r} in {where}: expected one of {', '.join(DEVICES)}.")
            target[key] = value
        elif key == "resources":
            if not isinstance(value, dict) or not value:
                raise UserError(f"resources in {where} must be a table of Ray custom resources, {example}.")
            target[key] = {str(k): _number(v, where, f"resources.{k}") for k, v in value.items()}
        else:
            target[key] = _number(value, where, key)
    if "device" not in target:
        raise UserError(
            f"Target {name!r} in {where} names no device.",
            f"Add device = one of {', '.join(DEVICES)} (a target named after a device needs none), {example}.",
        )
    return target


def ray_settings(table: dict[str, Any], where: str, address: str | None = None) -> RaySettings | None:
    """Validate a plan's [ray] table; None when neither it nor --ray names a cluster (the run stays local)."""
    from benchbox.options import RayOptions, parse_options

    targets = table.get("targets", {})
    if not isinstance(targets, dict):
        raise UserError(f"[ray.targets] of {where} must be a table of device targets.")
    values = {k: v for k, v in table.items() if k != "targets"}
    options = parse_options(RayOptions, values, f"[ray] of {where}", plan=True)
    parsed = {name: _target(name, value, where) for name, value in targets.items()}
    address = address or options.address
    if not address:
        return None
    return RaySettings(address, options.shard_size, options.max_retries, options.cpus_per_unit, parsed)
