"""Compact per-sample predictions: what every metric needs, never the 1000 logits (DESIGN §2).

Every image sample keeps: its index in the variant, its label, its content id `sid` (64 bits of the BLAKE2 hash
of the file's bytes: what the image is, wherever it was read from) and group id `gid` (the underlying image:
label and file stem, shared by a val image and its ImageNet-C/P versions, the unit a paired bootstrap resamples),
its val file number `number` (ILSVRC2012_val_NNNNNNNN, 0 for other names: ReaL is keyed by it),
its top-5 classes (best first, ties to the lower index), the max softmax probability and the log-probability of
its label (both float64, so calibration figures equal those computed from the logits), and a non-finite flag
(NaN/Inf rows get top-5 = -1: never right, never in agreement). A test set adds the groups its scorer reads
(`TestSet.summary`):

- `top1:S`   S_top1: top-1 over the class subset S (A/R clean baselines on val)
- `masked:S` S_top1, S_conf, S_logp: top-1, confidence and label log-prob over S's logits (A, R)
- `ood:S`    S_conf, S_maxlogit: max softmax and max logit over S's logits (ImageNet-O; sigmoid is monotone)

53 bytes per sample without groups, 71 at most (A/R). ImageNet-P frames keep only their video, its ids, label
and top-5 (32 bytes a frame): flip probability and top-5 distance need nothing else.

A non-finite output is never an advantage: the helpers at the end give every metric its worst case for such a
row (a miss, confidence 1 on a wrong answer, the smallest label probability float32 has, the least anomalous
score for an anomaly and the most anomalous for an inlier, a flip and the largest top-5 distance between frames).
"""

from __future__ import annotations

import numpy as np

from benchbox.metrics.calibration import confidence_and_label_logprob
from benchbox.metrics.classification import topk_indices

SCHEMA = 3  # bump when a field's meaning changes: it is part of every cell key
BASE = [
    ("index", "<i4"),
    ("label", "<i2"),
    ("sid", "<u8"),
    ("gid", "<u8"),
    ("number", "<i4"),
    ("top5", "<i2", (5,)),
    ("conf", "<f8"),
    ("logp", "<f8"),
    ("nonfinite", "u1"),
]
FRAME = [("video", "<i4"), ("label", "<i2"), ("sid", "<u8"), ("gid", "<u8"), ("top5", "<i2", (5,))]
# the smallest positive normal float32: no finite float32 softmax gives a label a lower probability
WORST_LOGPROB = float(np.log(np.finfo(np.float32).tiny))
MAX_TOP5_DISTANCE = 15  # sum over k < 5 of |k - 5|: none of one frame's top 5 in the other's


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


def summarize(
    logits: np.ndarray,
    indices: np.ndarray,
    labels: np.ndarray,
    groups: tuple[str, ...] = (),
    sids: np.ndarray | None = None,
    gids: np.ndarray | None = None,
    numbers: np.ndarray | None = None,
) -> np.ndarray:
    """Per-sample summaries of a batch of logits (rows in sample order)."""
    from benchbox.datasets.catalog import subset_indices

    logits = np.asarray(logits, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    out = np.zeros(logits.shape[0], summary_dtype(groups))
    out["index"], out["label"] = indices, labels
    if sids is not None:
        out["sid"] = sids
    if gids is not None:
        out["gid"] = gids
    if numbers is not None:
        out["number"] = numbers
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


def summarize_frames(logits: np.ndarray, video: int, label: int, sid: int = 0, gid: int = 0) -> np.ndarray:
    """Per-frame summaries of one video (ImageNet-P)."""
    logits = np.asarray(logits, dtype=np.float32)
    out = np.zeros(logits.shape[0], np.dtype(FRAME))
    out["video"], out["label"], out["sid"], out["gid"] = video, label, sid, gid
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


def group_id(label: int, key: str) -> int:
    """The underlying image of a sample: its label and file stem (a val image, its 95 ImageNet-C versions and
    its ImageNet-P videos share one), as 64 bits of a BLAKE2 hash."""
    import hashlib
    import os

    stem = os.path.splitext(os.path.basename(key))[0]
    text = f"{int(label)}/".encode() + os.fsencode(stem)  # file names are bytes: undecodable ones hash as they are
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def calibration_inputs(summary: np.ndarray, prefix: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(confidence, top-1 correct, label log-probability) with the worst case for non-finite rows:
    confidence 1 on a wrong answer, the lowest label probability float32 can express."""
    bad = summary["nonfinite"].astype(bool)
    top = summary[f"{prefix}_top1"].astype(np.int64) if prefix else summary["top5"][:, 0].astype(np.int64)
    conf = np.where(bad, 1.0, summary[f"{prefix}_conf" if prefix else "conf"])
    logp = np.where(bad, WORST_LOGPROB, summary[f"{prefix}_logp" if prefix else "logp"])
    correct = (top == summary["label"]) & ~bad
    return conf.astype(np.float64), correct, logp.astype(np.float64)


def anomaly_scores(summary: np.ndarray, subset: str, anomalous: bool) -> np.ndarray:
    """ImageNet-O score (-max softmax over the subset), worst case for non-finite rows: an anomaly scores below
    every finite score, an inlier above."""
    score = -summary[f"{subset}_conf"].astype(np.float64)
    return np.where(summary["nonfinite"].astype(bool), -np.inf if anomalous else np.inf, score)


def anomaly_logit_scores(summary: np.ndarray, subset: str, anomalous: bool) -> np.ndarray:
    """Like `anomaly_scores` from the max logit through a sigmoid (`aupr_sigmoid`)."""
    x = summary[f"{subset}_maxlogit"].astype(np.float64)
    score = -0.5 * (1.0 + np.tanh(0.5 * x))
    return np.where(np.isfinite(x), score, -np.inf if anomalous else np.inf)
