"""Parallel decode and crop with ordered batches and bad-file accounting.

Worker threads read each file (at most `max_bytes` of it: a larger file is a counted "too large" skip, never a
2 GB read), hash its bytes (the sample's content identity, and the preprocessed-image cache's key), look its
crop up in the cache, and otherwise decode, resize and crop it (PIL releases the GIL for all three). Batches come
out in sample order as uint8 NHWC crops with each image's content id; the caller normalises each batch once for
every cell. Unreadable files are reported, never dropped silently and never fatal.
"""

from __future__ import annotations

import io
import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from benchbox.datasets.cache import CropCache, content_digest
from benchbox.datasets.transforms import EvalTransform, UnreadableImage, load_rgb
from benchbox.locator import is_locator

DEFAULT_MAX_BYTES = 256 << 20  # the largest ImageNet-family image is ~15 MB; a video of ImageNet-P ~0.2 MB
_decoding = threading.local()  # the file a decode thread is on, so a library warning can name it


class DecoderWarnings:
    """Warnings libraries raise while decoding (PIL's "Possibly corrupt EXIF data", numpy's casts), collected with
    the file each came from instead of printed raw on stderr. Installed for the length of an eval."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []
        self._previous = None
        self._lock = threading.Lock()

    def __enter__(self) -> DecoderWarnings:
        import warnings

        self._previous = warnings.showwarning
        self._saved = warnings.catch_warnings()  # restores the filters and showwarning on exit
        self._saved.__enter__()
        warnings.simplefilter("always")  # every file's warning, not only the first of each kind
        warnings.showwarning = self._show
        return self

    def __exit__(self, *exc) -> None:
        self._saved.__exit__(*exc)

    def _show(self, message, category, filename, lineno, file=None, line=None) -> None:
        where = getattr(_decoding, "path", None)
        if where is None:  # not from a decode: as before
            self._previous(message, category, filename, lineno, file, line)
            return
        with self._lock:
            self.found.append((where, f"{category.__name__}: {message}"))

    def summary(self, limit: int = 3) -> list[str]:
        """One line per kind of warning, naming up to `limit` files."""
        from benchbox.errors import printable

        by_text: dict[str, list[str]] = {}
        for path, text in self.found:
            by_text.setdefault(text, []).append(path)
        return [
            f"{len(paths)} file(s) decoded with a warning, {text} (e.g. "
            f"{', '.join(printable(p) for p in dict.fromkeys(paths[:limit]))})"
            for text, paths in by_text.items()
        ]


@dataclass
class Batch:
    """uint8 crops (N, H, W, 3) for sample indices `indices` (in order), their content ids `sids`; `bad`
    holds (index, error)."""

    start: int
    stop: int
    crops: np.ndarray
    indices: np.ndarray
    bad: list[tuple[int, str]] = field(default_factory=list)
    sids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2)))


def content_id(digest: str) -> int:
    """A sample's 64-bit content identity: the first 8 bytes of its BLAKE2 digest."""
    return int(digest[:16], 16)


def read_sample_bytes(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """A sample's bytes (a file, or a member of an archive or parquet file: benchbox.locator), refusing
    (UnreadableImage) one larger than `max_bytes` before reading it."""
    if is_locator(path):
        from benchbox.datasets.sources import read_bytes

        try:
            return read_bytes(path, max_bytes)
        except ValueError as exc:
            raise UnreadableImage(
                f"too large: {exc} is over the {max_bytes / 2**20:.0f} MB read per sample "
                "(raise --max-image-mb if it is a real image)"
            ) from exc
        except OSError as exc:
            raise UnreadableImage(f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise UnreadableImage(
                    f"too large: {size / 2**20:.0f} MB is over the {max_bytes / 2**20:.0f} MB read per sample "
                    "(raise --max-image-mb if it is a real image)"
                )
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UnreadableImage(f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise UnreadableImage(f"too large: grew past {max_bytes / 2**20:.0f} MB while it was read")
    return data


def prepare(
    path: str, transform: EvalTransform, cache: CropCache | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[np.ndarray, int] | str:
    """(uint8 crop, content id) of one file, or the reason it cannot be read."""
    _decoding.path = path
    try:
        return _prepare(path, transform, cache, max_bytes)
    finally:
        _decoding.path = None


def _prepare(path: str, transform: EvalTransform, cache: CropCache | None, max_bytes: int):
    try:
        data = read_sample_bytes(path, max_bytes)
    except UnreadableImage as exc:
        return str(exc)
    digest = content_digest(data)
    if cache is not None:
        crop = cache.get(digest)
        if crop is not None:
            return crop, content_id(digest)
    try:
        crop = transform.crop(load_rgb(io.BytesIO(data)))
    except UnreadableImage as exc:
        return str(exc)
    if cache is not None:
        cache.put(digest, crop)
    return crop, content_id(digest)


def iterate_batches(
    paths: Sequence[str],
    transform: EvalTransform,
    batch_size: int = 32,
    workers: int | None = None,
    start: int = 0,
    stop: int | None = None,
    cache: CropCache | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[Batch]:
    """Yield Batches covering paths[start:stop] in order, decoding ahead on `workers` threads."""
    stop = len(paths) if stop is None else min(stop, len(paths))
    workers = workers or default_workers()
    ahead = max(batch_size * 2, workers * 4)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="benchbox-decode") as pool:
        pending: deque = deque()
        next_index = start

        def refill() -> None:
            nonlocal next_index
            while next_index < stop and len(pending) < ahead:
                pending.append((next_index, pool.submit(prepare, paths[next_index], transform, cache, max_bytes)))
                next_index += 1

        batch_start = start
        while batch_start < stop:
            refill()
            batch_stop = min(batch_start + batch_size, stop)
            crops, indices, bad, sids = [], [], [], []
            for _ in range(batch_stop - batch_start):
                index, future = pending.popleft()
                result = future.result()
                if isinstance(result, str):
                    bad.append((index, result))
                else:
                    crops.append(result[0])
                    sids.append(result[1])
                    indices.append(index)
                refill()
            shape = (0, transform.crop_h, transform.crop_w, 3)
            stacked = np.stack(crops) if crops else np.zeros(shape, np.uint8)
            ids = np.asarray(sids, dtype=np.uint64)
            yield Batch(batch_start, batch_stop, stacked, np.asarray(indices, dtype=np.int64), bad, ids)
            batch_start = batch_stop
