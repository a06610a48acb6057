"""ImageNet-O: AUPR (also AUROC, FPR95, and `aupr_sigmoid`) of detecting O images among val images of the same
200 classes; score = -max softmax over the 200 O classes, O images positive.

A non-finite output takes the worst rank for its side: an O image scores below every finite score (it is missed
at every threshold), an in-distribution image above (it is a false alarm at every threshold). NaN used to sort
as the highest anomaly score, which made a model that emits NaN on O images look perfect.
"""

from __future__ import annotations

import numpy as np

from benchbox.datasets.catalog import subset_indices
from benchbox.evaluation.estimates import Clusters, Estimate, SetData, Sums
from benchbox.evaluation.scoring import ScoreContext, default_comparable
from benchbox.evaluation.scoring.classification import unreadable_record
from benchbox.evaluation.summaries import anomaly_logit_scores, anomaly_scores
from benchbox.metrics.ood import aupr, auroc, fpr_at_recall
from benchbox.records import Record

comparable = default_comparable
SUBSET = "o"


def in_distribution(val_summary: np.ndarray) -> np.ndarray:
    """The val images of the 200 O classes: the negatives."""
    return val_summary[np.isin(val_summary["label"], np.asarray(subset_indices(SUBSET)))]


def variant_records(ctx: ScoreContext) -> list[Record]:
    ood = ctx.predictions.summary
    records = [unreadable_record(ctx), ctx.record("nonfinite_outputs", float(ood["nonfinite"].sum()), int(ood.size))]
    val = ctx.needed("val")
    if val is None:
        ctx.problems.append("o: needs val (the in-distribution images) under the data root")
        return records
    inside = in_distribution(val[1].summary)
    n = int(inside.size + ood.size)
    out_score, in_score = anomaly_scores(ood, SUBSET, True), anomaly_scores(inside, SUBSET, False)
    records.append(ctx.record("aupr", 100.0 * aupr(out_score, in_score), n, positives=int(ood.size)))
    records.append(ctx.record("auroc", 100.0 * auroc(out_score, in_score), n))
    records.append(ctx.record("fpr95", 100.0 * fpr_at_recall(out_score, in_score), n))
    sig_out, sig_in = anomaly_logit_scores(ood, SUBSET, True), anomaly_logit_scores(inside, SUBSET, False)
    records.append(ctx.record("aupr_sigmoid", 100.0 * aupr(sig_out, sig_in), n))
    return records


def estimates(data: SetData, clusters: Clusters) -> list[Estimate]:
    val = data.needed.get("val")
    if val is None:
        return []
    ood, inside = data.summary(None), in_distribution(val.summary(None))
    scores_out, scores_in = anomaly_scores(ood, SUBSET, True), anomaly_scores(inside, SUBSET, False)
    sums = Sums(clusters, clusters.index(np.r_[ood["gid"], inside["gid"]]))
    n = int(ood.size + inside.size)

    def metric(fn, **kwargs):
        return lambda w: 100.0 * fn(scores_out, scores_in, weights=sums.expand(w), **kwargs)

    return [
        Estimate("aupr", None, n, metric(aupr)),
        Estimate("auroc", None, n, metric(auroc)),
        Estimate("fpr95", None, n, metric(fpr_at_recall), higher_is_better=False),
    ]
