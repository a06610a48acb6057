"""Parallel decode and crop with ordered batches and bad-file accounting.

Worker threads read each file, look its crop up in the preprocessed-image cache, and otherwise decode, resize
and crop it (PIL releases the GIL for all three). Batches come out in sample order as uint8 NHWC crops; the
caller normalises each batch once for every cell. Unreadable files are reported, never dropped silently and
never fatal.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from benchbox.datasets.cache import CropCache, content_digest
from benchbox.datasets.transforms import EvalTransform, UnreadableImage, load_rgb


@dataclass
class Batch:
    """uint8 crops (N, H, W, 3) for sample indices `indices` (in order); `bad` holds (index, error)."""

    start: int
    stop: int
    crops: np.ndarray
    indices: np.ndarray
    bad: list[tuple[int, str]] = field(default_factory=list)


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2)))


def prepare(path: str, transform: EvalTransform, cache: CropCache | None = None) -> np.ndarray | str:
    """The uint8 crop of one file, or the reason it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    digest = content_digest(data) if cache is not None else None
    if digest is not None:
        crop = cache.get(digest)
        if crop is not None:
            return crop
    try:
        crop = transform.crop(load_rgb(io.BytesIO(data)))
    except UnreadableImage as exc:
        return str(exc)
    if digest is not None:
        cache.put(digest, crop)
    return crop


def iterate_batches(
    paths: Sequence[str],
    transform: EvalTransform,
    batch_size: int = 32,
    workers: int | None = None,
    start: int = 0,
    stop: int | None = None,
    cache: CropCache | None = None,
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
                pending.append((next_index, pool.submit(prepare, paths[next_index], transform, cache)))
                next_index += 1

        batch_start = start
        while batch_start < stop:
            refill()
            batch_stop = min(batch_start + batch_size, stop)
            crops, indices, bad = [], [], []
            for _ in range(batch_stop - batch_start):
                index, future = pending.popleft()
                result = future.result()
                if isinstance(result, str):
                    bad.append((index, result))
                else:
                    crops.append(result)
                    indices.append(index)
                refill()
            shape = (0, transform.crop_h, transform.crop_w, 3)
            stacked = np.stack(crops) if crops else np.zeros(shape, np.uint8)
            yield Batch(batch_start, batch_stop, stacked, np.asarray(indices, dtype=np.int64), bad)
            batch_start = batch_stop
