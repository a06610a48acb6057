"""A folder tree that lives in archives: the part of pathlib the set readers use, over tar/zip members.

`imagenet-a.tar` is the folder `imagenet-a/<wnid>/<file>` packed; ImageNet-C is five group tars that together are
the folder `<corruption>/<severity>/<wnid>/<file>`. Rather than a second reader per layout, the readers walk a
TreePath as they walk a folder: the same layout detection, the same labels, the same problems, the same order.
A TreePath stacks layers (a real folder and any number of archives); a name resolves to the first layer that has
it and a directory lists the union, so a folder holding some corruptions extracted and others as tars is one tree.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from benchbox.datasets.sources.archives import ArchiveIndex, read_member
from benchbox.locator import Locator, parse

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")  # timm's list, compared lowercased


def natural_key(text: str) -> list:
    """timm's natural sort: digit runs compare as integers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


class Member(NamedTuple):
    """A file found in a tree's directory listing: its name and what a Sample carries for it."""

    name: str
    locator: str

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem


class _Folder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def files(self, rel: str) -> dict[str, str]:
        path = self.root / rel if rel else self.root
        try:
            with os.scandir(path) as entries:
                return {e.name: e.path for e in entries if not _is_dir(e) and e.is_file()}
        except OSError:
            return {}

    def kind(self, rel: str) -> str | None:
        path = self.root / rel if rel else self.root
        return "dir" if path.is_dir() else "file" if path.is_file() else None

    def children(self, rel: str) -> list[tuple[str, bool]]:
        path = self.root / rel if rel else self.root
        try:
            with os.scandir(path) as entries:
                return [(e.name, _is_dir(e)) for e in entries]
        except OSError:
            return []

    def locator(self, rel: str) -> str:
        return str(self.root / rel)

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def shown(self) -> str:
        return str(self.root)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


class _Archive:
    def __init__(self, index: ArchiveIndex, prefix: str = "") -> None:
        self.index = index
        self.prefix = prefix

    def _member(self, rel: str) -> str:
        return "/".join(p for p in (self.prefix, rel) if p)

    def kind(self, rel: str) -> str | None:
        return self.index.kind_of(self._member(rel))

    def files(self, rel: str) -> dict[str, str]:
        directory = self._member(rel)
        container = str(self.index.data_file)
        prefix = f"{directory}/" if directory else ""
        return {
            name: str(Locator(self.index.kind, offset, size, container, prefix + name))
            for name, offset, size in self.index.files(directory)
        }

    def children(self, rel: str) -> list[tuple[str, bool]]:
        return self.index.children(self._member(rel))

    def locator(self, rel: str) -> str:
        return self.index.locator(self._member(rel))

    def read(self, rel: str) -> bytes:
        return read_member(parse(self.locator(rel)), 1 << 40)

    def shown(self) -> str:
        return "/".join(p for p in (str(self.index.archive), self.prefix) if p)


class TreePath:
    """A directory or file in a stack of layers, addressed by its parts below the tree's root."""

    def __init__(self, layers: tuple, parts: tuple[str, ...] = (), outside: Path | None = None) -> None:
        self._layers = layers
        self._parts = parts
        self._outside = outside  # the real folder the tree sits in (the root's parent)

    # --- names -------------------------------------------------------------------------------------------
    @property
    def _rel(self) -> str:
        return "/".join(self._parts)

    @property
    def name(self) -> str:
        return self._parts[-1] if self._parts else PurePosixPath(self._layers[0].shown()).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def parent(self) -> TreePath | Path:
        if self._parts:
            return TreePath(self._layers, self._parts[:-1], self._outside)
        return self._outside if self._outside is not None else self

    def __truediv__(self, other: str | os.PathLike) -> TreePath:
        extra = tuple(p for p in str(other).split("/") if p not in ("", "."))
        return TreePath(self._layers, self._parts + extra, self._outside)

    def joinpath(self, *others: str) -> TreePath:
        path = self
        for other in others:
            path = path / other
        return path

    def __str__(self) -> str:
        return "/".join(p for p in (self._layers[0].shown(), self._rel) if p)

    def __repr__(self) -> str:
        return f"TreePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TreePath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: TreePath) -> bool:
        return str(self) < str(other)

    # --- what is there -----------------------------------------------------------------------------------
    def _kinds(self) -> Iterator[tuple[object, str | None]]:
        for layer in self._layers:
            yield layer, layer.kind(self._rel)

    def is_dir(self) -> bool:
        return any(kind == "dir" for _, kind in self._kinds())

    def is_file(self) -> bool:
        return any(kind == "file" for _, kind in self._kinds())

    def exists(self) -> bool:
        return any(kind is not None for _, kind in self._kinds())

    def is_symlink(self) -> bool:
        return False

    def entries(self) -> list[tuple[str, bool]]:
        """(name, is_dir) of the entries of a directory, over every layer (the first layer's kind wins)."""
        seen: dict[str, bool] = {}
        for layer, kind in self._kinds():
            if kind == "dir":
                for name, is_dir in layer.children(self._rel):
                    seen.setdefault(name, is_dir)
        return list(seen.items())

    def members(self) -> list[Member]:
        """The files of a directory with their locators, over every layer (the first layer's file wins), in one
        query per layer: what the readers list, 50,000 at a time for an ImageNet-C variant."""
        found: dict[str, str] = {}
        for layer, kind in self._kinds():
            if kind == "dir":
                for name, locator in layer.files(self._rel).items():
                    found.setdefault(name, locator)
        return [Member(name, locator) for name, locator in found.items()]

    def iterdir(self) -> Iterator[TreePath]:
        for name, _ in self.entries():
            yield self / name

    # --- reading -----------------------------------------------------------------------------------------
    def _file_layer(self):
        for layer, kind in self._kinds():
            if kind == "file":
                return layer
        raise FileNotFoundError(str(self))

    def locator(self) -> str:
        """What a Sample carries for this file: a real path, or an archive member's locator."""
        return self._file_layer().locator(self._rel)

    def read_bytes(self) -> bytes:
        return self._file_layer().read(self._rel)

    def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        return self.read_bytes().decode(encoding or "utf-8", errors or "strict")

    def open(self, mode: str = "r", newline: str | None = None, encoding: str | None = None, errors=None):
        data = io.BytesIO(self.read_bytes())
        if "b" in mode:
            return data
        return io.TextIOWrapper(data, encoding=encoding or "utf-8", errors=errors, newline=newline)


def sample_path(path: Path | TreePath | Member) -> str:
    """The string a Sample carries for a file found by a reader."""
    if isinstance(path, Member):
        return path.locator
    return path.locator() if isinstance(path, TreePath) else str(path)


def archive_tree(
    indexes: list[ArchiveIndex], folder: Path | None, outside: Path, keep: Callable[[str], bool]
) -> TreePath:
    """The tree of some archives (and a real folder, first, when given). Each archive that holds nothing but one
    folder is entered (`imagenet-a.tar` is `imagenet-a/...`), unless that folder's name is one the layouts read
    (a WNID, a class index, a corruption or perturbation: `keep`)."""
    layers: list = [_Folder(folder)] if folder is not None else []
    for index in indexes:
        prefix = ""
        while True:
            children = index.children(prefix)
            dirs = [name for name, is_dir in children if is_dir]
            files = [name for name, is_dir in children if not is_dir and not name.lower().startswith("readme")]
            if len(dirs) != 1 or files or keep(dirs[0]):
                break
            prefix = "/".join(p for p in (prefix, dirs[0]) if p)
        layers.append(_Archive(index, prefix))
    return TreePath(tuple(layers), (), outside)
