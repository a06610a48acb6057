"""Test sets and engines, found through entry points: the groups `benchbox.testsets` and `benchbox.engines`.

benchbox's own sets and engines are declared in its pyproject.toml exactly as a plugin declares its own, so a
user's test set (a labelled folder of production images) or engine is the same kind of thing as ImageNet-C or ONNX
Runtime. A registry loads its group once; a plugin that fails to load is one line naming it (`problems`), and the
others still work. Built-ins come first, in the family's order; plugins follow by name.

The module that owns a group (the catalog, the runtime package) tells its registry what a member is and where
its built-ins are; this module imports nothing of benchbox, so it sits below both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

PROBLEMS: list[str] = []  # plugins that could not be loaded, one line each


def _note(line: str) -> None:
    if line not in PROBLEMS:
        PROBLEMS.append(line)


class Registry(Mapping):
    """One entry-point group as a read-only mapping {name: member}, loaded on first use (importing benchbox stays
    cheap).

    `builtins` returns the built-in members in display order (they are used as well when the package is a source
    tree without entry-point metadata); `name_of` says the name a member gives itself; `check` raises when an
    entry point's object is not a member of this group.
    """

    def __init__(
        self,
        group: str,
        builtins: Callable[[], tuple[Any, ...]],
        name_of: Callable[[Any], str],
        check: Callable[[Any], None],
    ) -> None:
        self.group = group
        self._builtins = builtins
        self._name_of = name_of
        self._check = check
        self._loaded: dict[str, Any] | None = None

    def _items(self) -> dict[str, Any]:
        if self._loaded is None:
            self._loaded = self._load_impl()
        return self._loaded

    def _load_impl(self) -> dict[str, Any]:
        from importlib import metadata

        found: dict[str, Any] = {}
        for entry in metadata.entry_points(group=self.group):
            try:
                obj = entry.load()
                if callable(obj) and getattr(obj, "__benchbox_factory__", False):
                    obj = obj()
                self._check(obj)
                if self._name_of(obj) != entry.name:
                    raise ValueError(f"it is registered as {entry.name!r} but names itself {self._name_of(obj)!r}")
            except Exception as exc:  # a broken plugin is reported, never fatal
                _note(
                    f"plugin {entry.name!r} ({entry.value}) of {self.group} could not be loaded: "
                    f"{type(exc).__name__}: {exc}"
                )
                continue
            if entry.name in found and found[entry.name] is not obj:
                _note(f"two {self.group} entry points are named {entry.name!r}; the first one found is used")
                continue
            found[entry.name] = obj
        builtins = self._builtins()
        for obj in builtins:  # not installed (a source tree on sys.path): the built-ins all the same
            found.setdefault(self._name_of(obj), obj)
        ordered = {self._name_of(obj): found[self._name_of(obj)] for obj in builtins}
        ordered.update({name: found[name] for name in sorted(found) if name not in ordered})
        return ordered

    def __getitem__(self, name: str) -> Any:
        return self._items()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __repr__(self) -> str:
        return f"Registry({self.group}: {', '.join(self._items())})"


def problems() -> list[str]:
    """What could not be loaded (after a group was used)."""
    return list(PROBLEMS)
