"""Stores written by hand: cells with chosen per-sample predictions, stored exactly as eval stores them, so the
comparison and the gates can be tested on outcomes we pick (n images, k disagreements, NaN where it would help)."""

from __future__ import annotations

import json

import numpy as np

from benchbox.artifact import content_key
from benchbox.evaluation.planning import identity_digest, set_digest
from benchbox.evaluation.summaries import FRAME, group_id, summary_dtype
from benchbox.records import Cell, Record
from benchbox.store import ResultStore

MODEL, MODEL_ID = "m", "id-m"


def summary(
    labels,
    predicted,
    groups: tuple[str, ...] = (),
    sids=None,
    names=None,
    conf=None,
    nonfinite=None,
    numbers=None,
    **fields,
) -> np.ndarray:
    """Per-sample summaries: `predicted` top-1 (-1 = a NaN output), top-5 = top-1 then four others."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    n = labels.size
    out = np.zeros(n, summary_dtype(groups))
    out["index"], out["label"] = np.arange(n), labels
    out["sid"] = np.arange(1, n + 1, dtype=np.uint64) if sids is None else sids
    names = names or [f"img{i}.JPEG" for i in range(n)]
    out["gid"] = [group_id(int(label), name) for label, name in zip(labels, names)]
    out["number"] = 0 if numbers is None else numbers
    others = (predicted[:, None] + np.arange(1, 5)[None, :] + 1) % 1000
    out["top5"] = np.c_[predicted, others]
    bad = predicted < 0 if nonfinite is None else np.asarray(nonfinite, bool)
    out["top5"][bad] = -1
    out["nonfinite"] = bad
    out["conf"] = 0.8 if conf is None else conf
    out["logp"] = np.where(predicted == labels, np.log(0.8), np.log(0.01))
    out["conf"][bad], out["logp"][bad] = np.nan, np.nan
    for name, values in fields.items():
        out[name] = values
    return out


def frames(videos: list[tuple[int, list[int]]], names=None, sids=None) -> np.ndarray:
    """ImageNet-P frame summaries: (label, per-frame top-1 classes) per video."""
    rows = []
    for v, (label, top) in enumerate(videos):
        name = (names or [f"vid{i}.mp4" for i in range(len(videos))])[v]
        sid = (sids or list(range(1, len(videos) + 1)))[v]
        for cls in top:
            rows.append((v, label, sid, group_id(label, name), cls))
    out = np.zeros(len(rows), np.dtype(FRAME))
    for i, (v, label, sid, gid, cls) in enumerate(rows):
        out[i]["video"], out[i]["label"], out[i]["sid"], out[i]["gid"] = v, label, sid, gid
        out[i]["top5"] = (
            [cls, (cls + 1) % 1000, (cls + 2) % 1000, (cls + 3) % 1000, (cls + 4) % 1000] if cls >= 0 else -1
        )
    return out


def cell(
    precision: str,
    testset: str,
    variant: str | None = None,
    engine: str = "ort",
    model: str = MODEL,
    model_id: str = MODEL_ID,
    device: str = "cpu",
) -> Cell:
    return Cell(model, engine, device, precision, testset, variant, model_id)


def add_cell(store: ResultStore, at: Cell, data: np.ndarray, records=(), info=None, salt: str = "") -> str:
    """A finished cell run holding `data`, as eval leaves it; returns its identity digest."""
    digest = identity_digest(data)
    key = content_key(
        {
            "cell": [
                str(x) for x in (at.model, at.model_id, at.engine, at.precision, at.testset, at.variant, at.device)
            ],
            "d": digest,
            "salt": salt,
        }
    )
    run_id = store.start_run(key, "cell", at, samples=digest)
    store.save_final(
        key, {"summary": data, "bad_index": np.zeros(0, np.int64), "bad_error": np.asarray(json.dumps([]))}
    )
    rows = [r if isinstance(r, Record) else Record(at, r[0], r[1], int(data.size), samples=digest) for r in records]
    store.finish_run(run_id, rows, {"samples": int(data.size), **(info or {})})
    return digest


def add_set(store: ResultStore, at: Cell, digests: list[str], records=(), info=None, needed=()) -> None:
    """A set-level run (mCE, mFR, ReaL) over variants with these digests."""
    digest = set_digest(digests, list(needed))
    run_id = store.start_run(content_key({"set": str(at), "d": digest}), "set", at, samples=digest)
    rows = [r if isinstance(r, Record) else Record(at, r[0], r[1], None, samples=digest) for r in records]
    store.finish_run(run_id, rows, info or {})


def accurate(n: int, wrong: int, label: int = 3, offset: int = 0) -> list[int]:
    """Predictions for n images of `label`: the first `offset` right, then `wrong` wrong, the rest right."""
    top = [label] * n
    for i in range(offset, offset + wrong):
        top[i] = (label + 1) % 1000
    return top
