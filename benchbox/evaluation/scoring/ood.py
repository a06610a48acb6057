"""ImageNet-O: AUPR (also AUROC, FPR95, and `aupr_sigmoid`) of detecting O images among val images of the same
200 classes; score = -max softmax over the 200 O classes, O images positive."""

from __future__ import annotations

import numpy as np

from benchbox.datasets.catalog import subset_indices
from benchbox.evaluation.scoring import ScoreContext, default_comparable
from benchbox.evaluation.scoring.classification import unreadable_record
from benchbox.metrics.ood import aupr, auroc, fpr_at_recall
from benchbox.records import Record

comparable = default_comparable


def _sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def variant_records(ctx: ScoreContext) -> list[Record]:
    records = [unreadable_record(ctx)]
    val = ctx.needed("val")
    if val is None:
        ctx.problems.append("o: needs val (the in-distribution images) under the data root")
        return records
    ood = ctx.predictions.summary
    inside = val[1].summary
    inside = inside[np.isin(inside["label"], np.asarray(subset_indices("o")))]
    n = int(inside.size + ood.size)
    out_score, in_score = -ood["o_conf"], -inside["o_conf"]
    records.append(ctx.record("aupr", 100.0 * aupr(out_score, in_score), n, positives=int(ood.size)))
    records.append(ctx.record("auroc", 100.0 * auroc(out_score, in_score), n))
    records.append(ctx.record("fpr95", 100.0 * fpr_at_recall(out_score, in_score), n))
    sig_out, sig_in = -_sigmoid(ood["o_maxlogit"]), -_sigmoid(inside["o_maxlogit"])
    records.append(ctx.record("aupr_sigmoid", 100.0 * aupr(sig_out, sig_in), n))
    return records
