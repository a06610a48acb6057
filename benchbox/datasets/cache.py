"""Persistent preprocessed-image cache: the decoded, resized and cropped uint8 image, per (file content, geometry).

A second eval of the same images — another precision, another model with the same input geometry, a CI re-run
into an empty results store — reads 150 KB of raw pixels instead of decoding and resizing a JPEG. Entries are
keyed by a BLAKE2 hash of the file's bytes (a changed file is a different entry, never a stale hit) and by the
geometry (resize size, crop, interpolation), not by normalisation. It lives outside the results store: by
default `$XDG_CACHE_HOME/benchbox/crops` (else `~/.cache/benchbox/crops`); `BENCHBOX_CACHE=DIR` or `--cache-dir`
moves it, `BENCHBOX_CACHE=off` or `--no-cache` disables it. Oldest entries go first when it outgrows its bound.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from benchbox.artifact import content_key

DISABLED = ("off", "0", "none", "false", "no")
TRANSFORM_VERSION = 1  # bump when benchbox's resize/crop code changes a pixel


def _pixels_version() -> str:
    """What decides the pixels of a crop besides its geometry: Pillow's resampling code and benchbox's."""
    from importlib import metadata

    try:
        pillow = metadata.version("pillow")
    except metadata.PackageNotFoundError:  # pragma: no cover - Pillow is a dependency
        pillow = "unknown"
    return f"pillow-{pillow}/transform-{TRANSFORM_VERSION}"


PIXELS_VERSION = _pixels_version()


def default_cache_dir() -> Path | None:
    """Where the cache lives unless told otherwise, or None when the environment disables it."""
    configured = os.environ.get("BENCHBOX_CACHE", "").strip()
    if configured.lower() in DISABLED:
        return None
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "benchbox" / "crops"


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class CropCache:
    """Crops of one geometry under `root/<geometry key>/<aa>/<digest>.rgb` as raw HWC uint8 bytes.

    Raw bytes of a known shape, not .npy: parsing .npy headers (ast) in many threads at once trips a CPython
    3.11 bug, and raw reads are faster anyway. A file of the wrong size is a miss."""

    def __init__(self, root: Path, geometry: dict, max_bytes: int) -> None:
        self.root = Path(root)
        self.folder = self.root / content_key({**geometry, "pixels": PIXELS_VERSION})
        self.shape = (int(geometry["crop"][0]), int(geometry["crop"][1]), 3)
        self.max_bytes = int(max_bytes)
        self.hits = self.misses = self.written_bytes = 0
        self._lock = threading.Lock()

    def _path(self, digest: str) -> Path:
        return self.folder / digest[:2] / f"{digest}.rgb"

    def get(self, digest: str) -> np.ndarray | None:
        path = self._path(digest)
        size = self.shape[0] * self.shape[1] * 3
        try:
            with open(path, "rb") as handle:
                data = handle.read(size + 1)
            if len(data) != size:
                raise ValueError("wrong size")
            os.utime(path)  # most recently used: trimmed last
        except (OSError, ValueError):
            with self._lock:
                self.misses += 1
            return None
        with self._lock:
            self.hits += 1
        return np.frombuffer(data, dtype=np.uint8).reshape(self.shape)

    def put(self, digest: str, crop: np.ndarray) -> None:
        path = self._path(digest)
        tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(np.ascontiguousarray(crop, dtype=np.uint8).tobytes())
            os.replace(tmp, path)
        except OSError:  # a full or read-only cache never fails an eval
            tmp.unlink(missing_ok=True)
            return
        with self._lock:
            self.written_bytes += crop.nbytes

    def trim(self) -> int:
        """Delete the least recently used entries (all geometries) until the cache fits its bound; bytes freed."""
        entries = []
        for path in self.root.glob("*/*/*.rgb"):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        freed = 0
        for _, size, path in sorted(entries):
            if total - freed <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            freed += size
        return freed


def open_cache(cache_dir: Path | None, disabled: bool, size_gb: float, geometry: dict) -> CropCache | None:
    """The cache for a geometry, honouring the flags and the environment; None when disabled."""
    if disabled:
        return None
    root = cache_dir or default_cache_dir()
    if root is None:
        return None
    return CropCache(root, geometry, int(size_gb * 1e9))
