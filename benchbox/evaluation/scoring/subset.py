"""ImageNet-A and -R: accuracy over the logits of their 200 classes (without the mask A scores ~0 %), with the
val-200 "clean" baseline beside it (`clean_top1`: val images of those classes, masked the same way). A
non-finite output is a miss, and the worst case for calibration (classification.accuracy_records)."""

from __future__ import annotations

import numpy as np

from benchbox.datasets.catalog import TESTSETS, subset_indices
from benchbox.evaluation.estimates import Clusters, Estimate, SetData, Sums, proportion
from benchbox.evaluation.scoring import ScoreContext
from benchbox.evaluation.scoring.classification import accuracy_estimates, accuracy_records, unreadable_record
from benchbox.metrics.classification import accuracy
from benchbox.records import Record


def _in_subset(labels: np.ndarray, subset: str) -> np.ndarray:
    return np.isin(labels, np.asarray(subset_indices(subset)))


def comparable(summary: np.ndarray, subset: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample index, masked top-1, is it the label) for the samples of the subset's classes."""
    subset = subset or next(n[: -len("_top1")] for n in summary.dtype.names if n.endswith("_top1"))
    keep = _in_subset(summary["label"], subset)
    predicted = summary[f"{subset}_top1"][keep].astype(np.int64)
    return summary["index"][keep].astype(np.int64), predicted, predicted == summary["label"][keep]


def variant_records(ctx: ScoreContext) -> list[Record]:
    subset = TESTSETS[ctx.cell.testset].class_subset
    s = ctx.predictions.summary
    s = s[_in_subset(s["label"], subset)]
    records = accuracy_records(ctx, s, prefix=subset, top5=False)
    records.append(unreadable_record(ctx))
    val = ctx.needed("val")
    if val is not None:
        _, val_predictions = val
        _, predicted, correct = comparable(val_predictions.summary, subset)
        if predicted.size:
            acc = accuracy(correct)
            records.append(ctx.record("clean_top1", acc["value"], acc["n"], acc["ci95"], reference="val-200-clean"))
    return records


def estimates(data: SetData, clusters: Clusters) -> list[Estimate]:
    subset = TESTSETS[data.cell.testset].class_subset
    s = data.summary(None)
    out = accuracy_estimates(None, s[_in_subset(s["label"], subset)], clusters, prefix=subset, top5=False)
    val = data.needed.get("val")
    if val is not None:
        v = val.summary(None)
        keep = _in_subset(v["label"], subset)
        if keep.any():
            _, _, correct = comparable(v, subset)
            out.append(
                proportion("clean_top1", "val-200-clean", correct, Sums(clusters, clusters.index(v["gid"][keep])))
            )
    return out
