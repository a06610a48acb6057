"""Run a SampleSet through runners as resumable cells of the results store (one decode for all cells)."""

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


@dataclass
class CellJob:
    """One runner's share of a pass over a SampleSet: where it resumes, what it has, what went wrong."""

    run_id: int
    runner_factory: Callable[[], Any]
    result: Predictions | None = None
    error: Exception | None = None
    position: int = 0
    chunks: list[dict[str, np.ndarray]] = field(default_factory=list)
    pending: list[tuple[Any, ...]] = field(default_factory=list)
    pending_start: int = 0


def predict_cells(
    store: ResultStore,
    jobs: list[CellJob],
    samples: SampleSet,
    transform: Callable,
    batch_size: int = 32,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    chunk_samples: int = CHUNK_SAMPLES,
) -> None:
    """Fill each job's `result` (or `error`) from one decoding pass over the samples.

    Every image is decoded and preprocessed once and fed to every runner still missing it, so N engines x
    precisions cost one decode, not N. Each job keeps its own chunks, so each resumes where it stopped.
    """
    from benchbox.errors import UserError

    total = len(samples.samples)
    active = []
    for job in jobs:
        stored = store.load_predictions(job.run_id)
        if stored is not None:
            job.result = _from_arrays(stored, samples, job.run_id)
            continue
        job.position, job.chunks = store.load_chunks(job.run_id)
        job.pending, job.pending_start = [], job.position
        active.append(job)
    if not active:
        return
    start = min(job.position for job in active)
    if on_progress:
        on_progress(start, total)
    for batch in iterate_batches(samples.paths, transform, batch_size, workers, start=start):
        for job in active:
            if job.error is not None or batch.stop <= job.position:
                continue
            keep = batch.indices >= job.position
            bad = [item for item in batch.bad if item[0] >= job.position]
            try:
                if keep.any():
                    logits = job.runner_factory().infer(np.ascontiguousarray(batch.images[keep]))
                else:
                    logits = np.zeros((0, 0), np.float32)
            except UserError:
                raise
            except Exception as exc:  # this cell fails; the others go on
                job.error = exc
                continue
            job.pending.append((logits, batch.indices[keep], bad))
            if batch.stop - job.pending_start >= chunk_samples or batch.stop == total:
                arrays = _pack(job.pending)
                store.save_chunk(job.run_id, job.pending_start, batch.stop, arrays)
                job.chunks.append(arrays)
                job.pending, job.pending_start = [], batch.stop
        if on_progress:
            on_progress(batch.stop, total)
        if all(job.error is not None for job in active):
            break
    for job in active:
        if job.error is None:
            merged = _merge(job.chunks)
            merged["labels"] = np.asarray([samples.samples[i].label for i in merged["indices"]], dtype=np.int64)
            store.save_predictions(job.run_id, merged)
            store.drop_chunks(job.run_id)
            job.result = _from_arrays(merged, samples, job.run_id)


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
    """Predictions of one runner for every sample (a one-job predict_cells); errors propagate."""
    job = CellJob(run_id, runner_factory)
    predict_cells(store, [job], samples, transform, batch_size, workers, on_progress, chunk_samples)
    if job.error is not None:
        raise job.error
    return job.result


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
