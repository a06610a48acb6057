"""Test sets and engines, found through entry points: the groups `benchbox.testsets` and `benchbox.engines`.

benchbox's own sets and engines are declared in its pyproject.toml exactly as a plugin declares its own, so a
user's test set (a labelled folder of production images) or engine is the same kind of thing as ImageNet-C or ONNX
Runtime. A registry loads its group once; a plugin that fails to load is one line naming it (`problems`), and the
others still work. Built-ins come first, in the family's order; plugins follow by name.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

GROUPS = {"testsets": "benchbox.testsets", "engines": "benchbox.engines"}
# Where the built-ins live, for a source tree that is not installed (no entry-point metadata): the same objects
# the entry points name.
BUILTIN = {
    "testsets": ("benchbox.datasets.catalog", "BUILTIN_SETS"),
    "engines": ("benchbox.runtime", "BUILTIN_ENGINES"),
}
PROBLEMS: list[str] = []  # plugins that could not be loaded, one line each


@functools.cache
def load(kind: str) -> dict[str, Any]:
    """{name: object} of one group: a TestSet per test set, a runner class per engine."""
    import importlib
    from importlib import metadata

    found: dict[str, Any] = {}
    builtin_module, builtin_name = BUILTIN[kind]
    for entry in metadata.entry_points(group=GROUPS[kind]):
        try:
            obj = entry.load()
            if callable(obj) and getattr(obj, "__benchbox_factory__", False):
                obj = obj()
            _check(kind, entry.name, obj)
        except Exception as exc:  # a broken plugin is reported, never fatal
            why = f"{type(exc).__name__}: {exc}"
            line = f"plugin {entry.name!r} ({entry.value}) of {GROUPS[kind]} could not be loaded: {why}"
            if line not in PROBLEMS:
                PROBLEMS.append(line)
            continue
        if entry.name in found and found[entry.name] is not obj:
            line = f"two {GROUPS[kind]} entry points are named {entry.name!r}; the first one found is used"
            if line not in PROBLEMS:
                PROBLEMS.append(line)
            continue
        found[entry.name] = obj
    builtins = getattr(importlib.import_module(builtin_module), builtin_name)
    for obj in builtins:  # not installed (a source tree on sys.path): the built-ins all the same
        found.setdefault(_name(kind, obj), obj)
    builtin_names = [_name(kind, obj) for obj in builtins]
    ordered = {name: found[name] for name in builtin_names if name in found}
    ordered.update({name: found[name] for name in sorted(found) if name not in ordered})
    return ordered


def _name(kind: str, obj: Any) -> str:
    return obj.name if kind == "testsets" else obj.engine


def _check(kind: str, name: str, obj: Any) -> None:
    """A plugin object must be what its group holds, under the name it is registered as."""
    if kind == "testsets":
        from benchbox.datasets.catalog import TestSet

        if not isinstance(obj, TestSet):
            raise TypeError(f"it is a {type(obj).__name__}, not a benchbox TestSet")
        if obj.name != name:
            raise ValueError(f"it is registered as {name!r} but names itself {obj.name!r}")
    else:
        from benchbox.runtime.base import BaseRunner

        if not (isinstance(obj, type) and issubclass(obj, BaseRunner)):
            raise TypeError(f"it is a {type(obj).__name__}, not a subclass of benchbox.runtime.base.BaseRunner")
        if obj.engine != name:
            raise ValueError(f"it is registered as {name!r} but its engine is {obj.engine!r}")


class Registry(Mapping):
    """A group as a read-only mapping, loaded on first use (importing benchbox stays cheap)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def _items(self) -> dict[str, Any]:
        return load(self.kind)

    def __getitem__(self, name: str) -> Any:
        return self._items()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return f"Registry({self.kind}: {', '.join(self._items())})"


def problems() -> list[str]:
    """What could not be loaded (after a group was used)."""
    return list(PROBLEMS)
