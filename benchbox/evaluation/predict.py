"""Run one set variant through every cell that still needs it: one decode feeds all cells, compact summaries
stream to the store in chunks (an interrupted run resumes from the last chunk), finished cells are read back."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchbox.datasets.cache import CropCache
from benchbox.datasets.loader import DEFAULT_MAX_BYTES, iterate_batches
from benchbox.datasets.readers import SampleSet
from benchbox.datasets.transforms import EvalTransform, UnreadableImage
from benchbox.evaluation.summaries import FRAME, empty, summarize, summarize_frames
from benchbox.records import Cell
from benchbox.store import ResultStore

ProgressFn = Callable[[int, int], None]
FRAME_EMPTY = np.zeros(0, np.dtype(FRAME))


@dataclass
class CellPredictions:
    """A finished cell on one variant: per-sample (or per-frame) summaries and the unreadable samples."""

    summary: np.ndarray
    unreadable: list[tuple[int, str]]  # (sample index, error)


@dataclass
class CellJob:
    """One cell's share of a pass over a variant: where it resumes, what it holds, what went wrong."""

    cell: Cell
    key: str
    runner: Callable[[], Any]  # activates the runner on first use (cached cells never load a model)
    groups: tuple[str, ...] = ()
    keep_logits: bool = False
    digest: str = ""  # the samples digest the key covers
    result: CellPredictions | None = None
    error: BaseException | None = None
    position: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)
    pending_start: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # where it ran, when not here (kept in the run's info)


def _pack(parts: list[dict[str, Any]], none: np.ndarray) -> dict[str, np.ndarray]:
    summaries = [p["summary"] for p in parts if p["summary"].size]
    bad = [b for p in parts for b in p["bad"]]
    arrays = {
        "summary": np.concatenate(summaries) if summaries else none,
        "bad_index": np.asarray([b[0] for b in bad], dtype=np.int64),
        "bad_error": np.asarray(json.dumps([b[1] for b in bad])),
    }
    logits = [p["logits"] for p in parts if p.get("logits") is not None and p["logits"].size]
    if logits:
        arrays["logits"] = np.concatenate(logits)
    return arrays


def _unpack(arrays: dict[str, np.ndarray]) -> CellPredictions:
    errors = json.loads(str(arrays["bad_error"]))
    return CellPredictions(arrays["summary"], list(zip(arrays["bad_index"].tolist(), errors)))


def resume(store: ResultStore, jobs: list[CellJob]) -> list[CellJob]:
    """Fill finished jobs from the store; return the others, each positioned after its stored chunks."""
    active = []
    for job in jobs:
        final = store.load_final(job.key)
        if final is not None:
            job.result = _unpack(final)
            continue
        job.position, _ = store.chunk_files(job.key)
        job.pending_start = job.position
        active.append(job)
    return active


def _flush(store: ResultStore, job: CellJob, stop: int, none: np.ndarray) -> None:
    store.save_chunk(job.key, job.pending_start, stop, _pack(job.pending, none))
    job.pending, job.pending_start = [], stop


def _finish(store: ResultStore, job: CellJob, none: np.ndarray) -> None:
    _, files = store.chunk_files(job.key)
    merged = _pack([_chunk_part(store.load_chunk(job.key, f)) for f in files], none)
    store.save_final(job.key, merged)
    job.result = _unpack(merged)


def assemble(store: ResultStore, job: CellJob, videos: bool) -> None:
    """Merge a job's stored chunks (all of its samples) into its final predictions and fill `job.result`."""
    _finish(store, job, FRAME_EMPTY if videos else empty(job.groups))


def _chunk_part(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    errors = json.loads(str(arrays["bad_error"]))
    return {
        "summary": arrays["summary"],
        "bad": list(zip(arrays["bad_index"].tolist(), errors)),
        "logits": arrays.get("logits"),
    }


def _infer(job: CellJob, images: np.ndarray) -> np.ndarray | None:
    """The cell's logits, or None after recording its error (one broken cell never stops the others)."""
    try:
        return job.runner().infer(images)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # UserErrors too: a TensorRT build failure fails this cell, not the run
        job.error = exc
        return None


def _image_pass(
    active: list[CellJob],
    samples: SampleSet,
    transform: EvalTransform,
    batch_size: int,
    workers: int | None,
    start: int,
    stop: int,
    cache: CropCache | None,
    emit: Callable[[CellJob, dict[str, Any], int], None],
    on_progress: ProgressFn | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> None:
    """Decode samples[start:stop] once and hand each job its part of every batch (`emit(job, part, batch_stop)`)."""
    labels, gids, numbers = samples.labels, samples.group_ids, samples.val_numbers
    batches = iterate_batches(
        samples.paths, transform, batch_size, workers, start=start, stop=stop, cache=cache, max_bytes=max_bytes
    )
    for batch in batches:
        images = transform.normalize_batch(batch.crops) if batch.crops.shape[0] else None
        for job in active:
            if job.error is not None or batch.stop <= job.position:
                continue
            keep = batch.indices >= job.position
            part: dict[str, Any] = {"bad": [b for b in batch.bad if b[0] >= job.position], "logits": None}
            if keep.any():
                logits = _infer(job, images if keep.all() else np.ascontiguousarray(images[keep]))
                if logits is None:
                    continue
                indices = batch.indices[keep]
                part["summary"] = summarize(
                    logits, indices, labels[indices], job.groups, batch.sids[keep], gids[indices], numbers[indices]
                )
                if job.keep_logits:
                    part["logits"] = logits
            else:
                part["summary"] = empty(job.groups)
            emit(job, part, batch.stop)
        if on_progress:
            on_progress(batch.stop, stop)
        if all(job.error is not None for job in active):
            break


def _video_pass(
    active: list[CellJob],
    samples: SampleSet,
    transform: EvalTransform,
    batch_size: int,
    start: int,
    stop: int,
    emit: Callable[[CellJob, dict[str, Any], int], None],
    on_progress: ProgressFn | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> None:
    """ImageNet-P: decode each video of samples[start:stop] once (PyAV), run its frames through every job. A video
    with fewer than two frames has no frame pair to compare: it is an unreadable file, counted, not a NaN."""
    import io

    from PIL import Image

    from benchbox.datasets.cache import content_digest
    from benchbox.datasets.loader import content_id, read_sample_bytes
    from benchbox.datasets.synthesize import decode_mp4

    gids = samples.group_ids
    for index in range(start, stop):
        sample = samples.samples[index]
        sid = 0
        try:
            data = read_sample_bytes(sample.path, max_bytes)
            sid = content_id(content_digest(data))
            decoded = decode_mp4(io.BytesIO(data))
            if len(decoded) < 2:
                raise UnreadableImage(f"{len(decoded)} frame(s): a video needs at least 2 to compare")
            crops = np.stack([transform.crop(Image.fromarray(f)) for f in decoded])
            frames, bad = transform.normalize_batch(crops), []
        except UnreadableImage as exc:
            frames, bad = None, [(index, str(exc))]
        for job in active:
            if job.error is not None or index < job.position:
                continue
            part: dict[str, Any] = {"bad": bad, "summary": FRAME_EMPTY, "logits": None}
            if frames is not None:
                pieces = []
                for i in range(0, len(frames), batch_size):
                    logits = _infer(job, np.ascontiguousarray(frames[i : i + batch_size]))
                    if logits is None:
                        break
                    pieces.append(logits)
                if job.error is not None:
                    continue
                logits = np.concatenate(pieces)
                part["summary"] = summarize_frames(logits, index, sample.label, sid, int(gids[index]))
                part["logits"] = logits if job.keep_logits else None
            emit(job, part, index + 1)
        if on_progress:
            on_progress(index + 1, stop)
        if all(job.error is not None for job in active):
            break


def _chunk_writer(store: ResultStore, chunk: int, total: int, none: np.ndarray):
    """What a local pass does with each job's part: keep it, and store a chunk every `chunk` samples."""

    def emit(job: CellJob, part: dict[str, Any], stop: int) -> None:
        job.pending.append(part)
        if stop - job.pending_start >= chunk or stop == total:
            _flush(store, job, stop, none)

    return emit


def predict_images(
    store: ResultStore,
    jobs: list[CellJob],
    samples: SampleSet,
    transform: EvalTransform,
    batch_size: int,
    workers: int | None,
    chunk_samples: int,
    cache: CropCache | None = None,
    on_progress: ProgressFn | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    stop: int | None = None,
) -> None:
    """Fill each job's `result` (or `error`) from one decoding pass over an image variant. With `stop` below the
    variant's size, only samples[:stop] are predicted and stored as chunks (a sequential round): `result` stays
    None and `prefix` reads them back."""
    total = len(samples.samples)
    end = total if stop is None else min(stop, total)
    active = [job for job in resume(store, jobs) if job.position < end or end == total]
    if not active:
        return
    start = min(job.position for job in active)
    if on_progress:
        on_progress(start, end)
    none = empty(active[0].groups)
    emit = _chunk_writer(store, chunk_samples, end, none)
    if start < end:
        _image_pass(active, samples, transform, batch_size, workers, start, end, cache, emit, on_progress, max_bytes)
    _finish_all(store, active, end, none, final=end == total)


def predict_videos(
    store: ResultStore,
    jobs: list[CellJob],
    samples: SampleSet,
    transform: EvalTransform,
    batch_size: int,
    chunk_videos: int = 16,
    on_progress: ProgressFn | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    stop: int | None = None,
) -> None:
    """ImageNet-P: per-frame top-5 of every video for every job, in chunks of `chunk_videos` videos (`stop`: as
    predict_images)."""
    total = len(samples.samples)
    end = total if stop is None else min(stop, total)
    active = [job for job in resume(store, jobs) if job.position < end or end == total]
    if not active:
        return
    emit = _chunk_writer(store, chunk_videos, end, FRAME_EMPTY)
    start = min(job.position for job in active)
    if start < end:
        _video_pass(active, samples, transform, batch_size, start, end, emit, on_progress, max_bytes)
    _finish_all(store, active, end, FRAME_EMPTY, final=end == total)


def _finish_all(store: ResultStore, active: list[CellJob], end: int, none: np.ndarray, final: bool = True) -> None:
    for job in active:
        if job.error is None:
            if job.pending:
                _flush(store, job, end, none)
            if final:
                _finish(store, job, none)


def prefix(store: ResultStore, job: CellJob, stop: int, videos: bool = False) -> CellPredictions:
    """A job's predictions of samples[:stop] from its stored chunks, or from its final predictions (a finished
    cell read as a prefix)."""
    final = store.load_final(job.key)
    if final is not None:
        whole = _unpack(final)
    else:
        _, files = store.chunk_files(job.key)
        whole = _unpack(_pack([_chunk_part(store.load_chunk(job.key, f)) for f in files], _none(job, videos)))
    position = whole.summary["video"] if videos else whole.summary["index"]
    return CellPredictions(whole.summary[position < stop], [(i, e) for i, e in whole.unreadable if i < stop])


def save_prefix(store: ResultStore, key: str, predictions: CellPredictions, videos: bool, groups=()) -> None:
    """A stopped set's prefix predictions, stored under the prefix's own key (what report and check read)."""
    part = {"summary": predictions.summary, "bad": predictions.unreadable, "logits": None}
    store.save_final(key, _pack([part], FRAME_EMPTY if videos else empty(groups)))


def _none(job: CellJob, videos: bool) -> np.ndarray:
    return FRAME_EMPTY if videos else empty(job.groups)


def predict_shard(
    job: CellJob,
    samples: SampleSet,
    transform: EvalTransform,
    batch_size: int,
    workers: int | None,
    start: int,
    stop: int,
    videos: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, np.ndarray]:
    """One cell's predictions for samples[start:stop], packed as one store chunk (a cluster work unit).

    Raises the cell's error: the caller decides whether it is a failed unit or a failed run."""
    parts: list[dict[str, Any]] = []
    job.position = start
    emit = lambda _job, part, _stop: parts.append(part)  # noqa: E731
    if videos:
        _video_pass([job], samples, transform, batch_size, start, stop, emit, None, max_bytes)
        none = FRAME_EMPTY
    else:
        _image_pass([job], samples, transform, batch_size, workers, start, stop, None, emit, None, max_bytes)
        none = empty(job.groups)
    if job.error is not None:
        raise job.error
    return _pack(parts, none)
