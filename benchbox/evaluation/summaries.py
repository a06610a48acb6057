"""Compact per-sample predictions: what every metric needs, never the 1000 logits (DESIGN §2).

Every image sample keeps: its index in the variant, its label, its top-5 classes (best first, ties to the lower
index), the max softmax probability and the log-probability of its label (both float64, so calibration
figures equal those computed from the logits), and a non-finite flag (NaN/Inf rows get top-5 = -1: never right,
never in agreement). A test set adds the groups its scorer reads (`TestSet.summary`):

- `top1:S`   S_top1: top-1 over the class subset S (A/R clean baselines on val)
- `masked:S` S_top1, S_conf, S_logp: top-1, confidence and label log-prob over S's logits (A, R)
- `ood:S`    S_conf, S_maxlogit: max softmax and max logit over S's logits (ImageNet-O; sigmoid is monotone)

33 bytes per sample without groups, 51 at most (A/R). ImageNet-P frames keep only their video, label and top-5
(16 bytes a frame): flip probability and top-5 distance need nothing else.
"""

from __future__ import annotations

import numpy as np

from benchbox.metrics.calibration import confidence_and_label_logprob
from benchbox.metrics.classification import topk_indices

SCHEMA = 2  # bump when a field's meaning changes: it is part of every cell key
BASE = [
    ("index", "<i4"),
    ("label", "<i2"),
    ("top5", "<i2", (5,)),
    ("conf", "<f8"),
    ("logp", "<f8"),
    ("nonfinite", "u1"),
]
FRAME = [("video", "<i4"), ("label", "<i2"), ("top5", "<i2", (5,))]


def _group_fields(group: str) -> list[tuple]:
    kind, subset = group.split(":")
    if kind == "top1":
        return [(f"{subset}_top1", "<i2")]
    if kind == "masked":
        return [(f"{subset}_top1", "<i2"), (f"{subset}_conf", "<f8"), (f"{subset}_logp", "<f8")]
    if kind == "ood":
        return [(f"{subset}_conf", "<f8"), (f"{subset}_maxlogit", "<f4")]
    raise KeyError(group)


def summary_dtype(groups: tuple[str, ...] = ()) -> np.dtype:
    fields = list(BASE)
    for group in groups:
        fields += [f for f in _group_fields(group) if f[0] not in {x[0] for x in fields}]
    return np.dtype(fields)


def empty(groups: tuple[str, ...] = ()) -> np.ndarray:
    return np.zeros(0, summary_dtype(groups))


def summarize(logits: np.ndarray, indices: np.ndarray, labels: np.ndarray, groups: tuple[str, ...] = ()) -> np.ndarray:
    """Per-sample summaries of a batch of logits (rows in sample order)."""
    from benchbox.datasets.catalog import subset_indices

    logits = np.asarray(logits, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    out = np.zeros(logits.shape[0], summary_dtype(groups))
    out["index"], out["label"] = indices, labels
    finite = np.isfinite(logits).all(axis=1)
    out["nonfinite"] = ~finite
    out["top5"] = -1
    out["conf"] = out["logp"] = np.nan
    good = logits[finite]
    if good.shape[0]:
        out["top5"][finite] = topk_indices(good, 5)
        conf, logp = confidence_and_label_logprob(good, labels[finite])
        out["conf"][finite], out["logp"][finite] = conf, logp
    for group in groups:
        kind, subset = group.split(":")
        classes = np.asarray(subset_indices(subset), dtype=np.int64)
        masked = good[:, classes]
        if kind in ("top1", "masked"):
            top = np.full(logits.shape[0], -1, np.int64)
            if masked.shape[0]:
                top[finite] = classes[topk_indices(masked, 1)[:, 0]]
            out[f"{subset}_top1"] = top
        if kind == "masked":
            position = np.full(1000, -1, np.int64)
            position[classes] = np.arange(classes.size)
            conf = np.full(logits.shape[0], np.nan)
            logp = np.full(logits.shape[0], np.nan)
            if masked.shape[0]:
                conf[finite], logp[finite] = confidence_and_label_logprob(masked, position[labels[finite]])
            out[f"{subset}_conf"], out[f"{subset}_logp"] = conf, logp
        if kind == "ood":
            conf = np.full(logits.shape[0], np.nan)
            peak = np.full(logits.shape[0], np.nan, np.float32)
            if masked.shape[0]:
                conf[finite] = confidence_and_label_logprob(masked, np.full(masked.shape[0], -1))[0]
                peak[finite] = masked.max(axis=1)
            out[f"{subset}_conf"], out[f"{subset}_maxlogit"] = conf, peak
    return out


def summarize_frames(logits: np.ndarray, video: int, label: int) -> np.ndarray:
    """Per-frame summaries of one video (ImageNet-P)."""
    logits = np.asarray(logits, dtype=np.float32)
    out = np.zeros(logits.shape[0], np.dtype(FRAME))
    out["video"], out["label"] = video, label
    finite = np.isfinite(logits).all(axis=1)
    out["top5"] = -1
    if finite.any():
        out["top5"][finite] = topk_indices(logits[finite], 5)
    return out


def top1(summary: np.ndarray) -> np.ndarray:
    return np.asarray(summary["top5"][:, 0], dtype=np.int64)


def videos(frames: np.ndarray) -> list[np.ndarray]:
    """Split per-frame summaries into one (frames, 5) top-5 array per video, in video order."""
    if frames.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, frames["video"][1:] != frames["video"][:-1]])
    return [frames["top5"][a:b].astype(np.int64) for a, b in zip(starts, np.r_[starts[1:], frames.size])]
