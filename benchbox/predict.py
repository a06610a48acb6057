"""Run one SampleSet through one runner as a resumable cell of the results store."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchbox.datasets.loader import iterate_batches
from benchbox.datasets.readers import SampleSet
from benchbox.store import ResultStore

CHUNK_SAMPLES = 512


@dataclass
class Predictions:
    """Logits for the readable samples of a SampleSet, in sample order."""

    logits: np.ndarray  # (n_valid, classes) float32
    indices: np.ndarray  # sample index of each row
    labels: np.ndarray  # label of each row
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    run_id: int | None = None

    @property
    def top1(self) -> np.ndarray:
        return np.argmax(self.logits, axis=1)

    @property
    def nonfinite(self) -> int:
        return int((~np.isfinite(self.logits)).any(axis=1).sum())


def predict_cell(
    store: ResultStore,
    run_id: int,
    samples: SampleSet,
    runner_factory: Callable[[], Any],
    transform: Callable,
    batch_size: int = 32,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    chunk_samples: int = CHUNK_SAMPLES,
) -> Predictions:
    """Predictions for every sample, resuming from stored chunks; chunks are written as the run goes."""
    stored = store.load_predictions(run_id)
    if stored is not None:
        return _from_arrays(stored, samples, run_id)
    position, chunks = store.load_chunks(run_id)
    total = len(samples.samples)
    paths = samples.paths
    if on_progress:
        on_progress(position, total)
    pending: list[tuple[Any, ...]] = []
    pending_start = position
    runner = None
    for batch in iterate_batches(paths, transform, batch_size, workers, start=position):
        if batch.images.shape[0]:
            runner = runner or runner_factory()
            logits = runner.infer(batch.images)
        else:
            logits = np.zeros((0, 0), np.float32)
        pending.append((logits, batch.indices, batch.bad))
        if batch.stop - pending_start >= chunk_samples or batch.stop == total:
            arrays = _pack(pending)
            store.save_chunk(run_id, pending_start, batch.stop, arrays)
            chunks.append(arrays)
            pending, pending_start = [], batch.stop
        if on_progress:
            on_progress(batch.stop, total)
    merged = _merge(chunks)
    merged["labels"] = np.asarray([samples.samples[i].label for i in merged["indices"]], dtype=np.int64)
    store.save_predictions(run_id, merged)
    store.drop_chunks(run_id)
    return _from_arrays(merged, samples, run_id)


def _pack(pending: list[tuple[np.ndarray, np.ndarray, list]]) -> dict[str, np.ndarray]:
    logits = [p[0] for p in pending if p[0].size]
    bad = [item for p in pending for item in p[2]]
    return {
        "logits": np.concatenate(logits) if logits else np.zeros((0, 0), np.float32),
        "indices": np.concatenate([p[1] for p in pending]).astype(np.int64),
        "bad_indices": np.asarray([b[0] for b in bad], dtype=np.int64),
        "bad_errors": np.asarray(json.dumps([b[2] for b in bad])),
    }


def _merge(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    logits = [c["logits"] for c in chunks if c["logits"].size]
    errors: list[str] = []
    for c in chunks:
        errors.extend(json.loads(str(c["bad_errors"])))
    return {
        "logits": np.concatenate(logits) if logits else np.zeros((0, 0), np.float32),
        "indices": np.concatenate([c["indices"] for c in chunks]) if chunks else np.zeros(0, np.int64),
        "bad_indices": np.concatenate([c["bad_indices"] for c in chunks]) if chunks else np.zeros(0, np.int64),
        "bad_errors": np.asarray(json.dumps(errors)),
    }


def _from_arrays(arrays: dict[str, np.ndarray], samples: SampleSet, run_id: int) -> Predictions:
    indices = arrays["indices"].astype(np.int64)
    labels = np.asarray([samples.samples[i].label for i in indices], dtype=np.int64)
    errors = json.loads(str(arrays["bad_errors"]))
    unreadable = [(samples.samples[i].path, e) for i, e in zip(arrays["bad_indices"].tolist(), errors)]
    logits = arrays["logits"]
    if logits.size == 0:
        logits = np.zeros((0, 1000), np.float32)
    return Predictions(logits.astype(np.float32), indices, labels, unreadable, run_id)


@dataclass
class VideoPredictions:
    """Per-video frame logits of an ImageNet-P perturbation (readable videos only, in sample order)."""

    logits: list[np.ndarray]
    indices: np.ndarray
    labels: np.ndarray
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    run_id: int | None = None


def predict_video_cell(
    store: ResultStore,
    run_id: int,
    samples: SampleSet,
    runner_factory: Callable[[], Any],
    transform: Callable,
    batch_size: int = 32,
    on_progress: Callable[[int, int], None] | None = None,
    chunk_videos: int = 16,
) -> VideoPredictions:
    """Decode each MP4 (PyAV), run every frame, keep logits per video; resumable by chunks of videos."""
    from PIL import Image

    from benchbox.datasets.synthesize import decode_mp4
    from benchbox.datasets.transforms import UnreadableImage

    stored = store.load_predictions(run_id)
    if stored is None:
        position, chunks = store.load_chunks(run_id)
        total = len(samples.samples)
        pending: list[tuple[np.ndarray, int, tuple | None]] = []
        start = position
        for index in range(position, total):
            path = samples.samples[index].path
            try:
                frames = np.stack([transform(Image.fromarray(f)) for f in decode_mp4(path)])
                runner = runner_factory()
                logits = np.concatenate(
                    [runner.infer(frames[i : i + batch_size]) for i in range(0, len(frames), batch_size)]
                )
                pending.append((logits, index, None))
            except UnreadableImage as exc:
                pending.append((np.zeros((0, 0), np.float32), index, (index, path, str(exc))))
            if index + 1 - start >= chunk_videos or index + 1 == total:
                arrays = _pack_videos(pending)
                store.save_chunk(run_id, start, index + 1, arrays)
                chunks.append(arrays)
                pending, start = [], index + 1
            if on_progress:
                on_progress(index + 1, total)
        stored = {
            k: np.concatenate([c[k] for c in chunks]) if chunks else np.zeros(0)
            for k in ("logits", "frame_counts", "indices", "bad_indices")
        }
        errors = [e for c in chunks for e in json.loads(str(c["bad_errors"]))]
        stored["bad_errors"] = np.asarray(json.dumps(errors))
        stored["labels"] = np.asarray([samples.samples[i].label for i in stored["indices"].astype(int)], np.int64)
        store.save_predictions(run_id, stored)
        store.drop_chunks(run_id)
    counts = stored["frame_counts"].astype(int)
    splits = np.cumsum(counts)[:-1]
    per_video = np.split(stored["logits"], splits) if counts.size else []
    errors = json.loads(str(stored["bad_errors"]))
    unreadable = [(samples.samples[i].path, e) for i, e in zip(stored["bad_indices"].astype(int).tolist(), errors)]
    return VideoPredictions(per_video, stored["indices"].astype(int), stored["labels"], unreadable, run_id)


def _pack_videos(pending: list[tuple[np.ndarray, int, tuple | None]]) -> dict[str, np.ndarray]:
    good = [p for p in pending if p[2] is None]
    bad = [p[2] for p in pending if p[2] is not None]
    return {
        "logits": np.concatenate([p[0] for p in good]).astype(np.float32) if good else np.zeros((0, 1000), np.float32),
        "frame_counts": np.asarray([p[0].shape[0] for p in good], dtype=np.int64),
        "indices": np.asarray([p[1] for p in good], dtype=np.int64),
        "bad_indices": np.asarray([b[0] for b in bad], dtype=np.int64),
        "bad_errors": np.asarray(json.dumps([b[2] for b in bad])),
    }
