"""Parallel decode + preprocess with ordered batches and bad-file accounting.

PIL decoding and resizing release the GIL, so a thread pool overlaps decoding with inference without the
start-up cost of processes. Batches come out in sample order; unreadable files are reported, never dropped
silently and never fatal.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from benchbox.datasets.transforms import EvalTransform, UnreadableImage, load_rgb


@dataclass
class Batch:
    """Preprocessed images for sample indices `indices` (in order); `bad` holds (index, path, error)."""

    start: int
    stop: int
    images: np.ndarray
    indices: np.ndarray
    bad: list[tuple[int, str, str]] = field(default_factory=list)


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2)))


def _prepare(path: str, transform: Callable) -> np.ndarray | str:
    try:
        return transform(load_rgb(path))
    except UnreadableImage as exc:
        return str(exc)


def iterate_batches(
    paths: Sequence[str],
    transform: EvalTransform | Callable,
    batch_size: int = 32,
    workers: int | None = None,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[Batch]:
    """Yield Batch objects covering paths[start:stop] in order, decoding ahead on `workers` threads."""
    stop = len(paths) if stop is None else min(stop, len(paths))
    workers = workers or default_workers()
    ahead = max(batch_size * 2, workers * 4)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="benchbox-decode") as pool:
        pending: deque = deque()
        next_index = start
        batch_start = start
        while batch_start < stop:
            while next_index < stop and len(pending) < ahead:
                pending.append((next_index, pool.submit(_prepare, paths[next_index], transform)))
                next_index += 1
            batch_stop = min(batch_start + batch_size, stop)
            images, indices, bad = [], [], []
            for _ in range(batch_stop - batch_start):
                index, future = pending.popleft()
                result = future.result()
                if isinstance(result, str):
                    bad.append((index, paths[index], result))
                else:
                    images.append(result)
                    indices.append(index)
                if next_index < stop:
                    pending.append((next_index, pool.submit(_prepare, paths[next_index], transform)))
                    next_index += 1
            stacked = np.stack(images) if images else np.zeros((0, 0), np.float32)
            yield Batch(batch_start, batch_stop, stacked, np.asarray(indices, dtype=np.int64), bad)
            batch_start = batch_stop
