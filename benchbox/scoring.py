"""Turn predictions into records for each test set, using the one implementation of each metric."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchbox.datasets.catalog import subset_indices
from benchbox.metrics.calibration import ece, nll, rms_calibration_error, softmax
from benchbox.metrics.classification import accuracy, agreement_top1, mask_logits, real_correct, topk_correct
from benchbox.metrics.ood import aupr, auroc, fpr_at_recall
from benchbox.metrics.robustness import corruption_errors, mce
from benchbox.metrics.stats import mcnemar_exact, paired_difference
from benchbox.predict import Predictions
from benchbox.store import make_record


def classification_records(
    cell: dict[str, Any], pred: Predictions, subset: str | None = None, top5: bool = True
) -> list[dict[str, Any]]:
    """top1/top5 with 95 % intervals, calibration (ece, rms_calib, nll) and the count of non-finite outputs.

    With `subset` (a, r), logits are masked to the 200 classes first, as the reference evaluations do.
    """
    logits, labels = pred.logits, pred.labels
    if subset is not None:
        logits, labels = mask_logits(logits, labels, subset_indices(subset))
        keep = labels >= 0
        logits, labels = logits[keep], labels[keep]
    records = []
    n = int(labels.size)
    if n == 0:
        return [make_record(cell, "top1", math.nan, 0)]
    correct1 = topk_correct(logits, labels, 1)
    acc = accuracy(correct1)
    records.append(make_record(cell, "top1", acc["value"], n, acc["ci95"]))
    if top5:
        acc5 = accuracy(topk_correct(logits, labels, 5))
        records.append(make_record(cell, "top5", acc5["value"], n, acc5["ci95"]))
    finite = np.isfinite(logits).all(axis=1)
    if finite.any():
        confidence = softmax(logits[finite]).max(axis=1)
        records.append(make_record(cell, "ece", 100.0 * ece(confidence, correct1[finite]), int(finite.sum())))
        records.append(
            make_record(
                cell,
                "rms_calib",
                100.0 * rms_calibration_error(confidence, correct1[finite]),
                int(finite.sum()),
            )
        )
        records.append(make_record(cell, "nll", nll(logits[finite], labels[finite]), int(finite.sum())))
    records.append(make_record(cell, "nonfinite_outputs", float(pred.nonfinite), n))
    return records


def clean_subset_records(cell: dict[str, Any], val: Predictions, subset: str) -> list[dict[str, Any]]:
    """The val-200 "clean" baseline for A or R: val images of those classes, logits masked the same way."""
    classes = set(subset_indices(subset))
    keep = np.asarray([label in classes for label in val.labels], dtype=bool)
    clean = Predictions(val.logits[keep], val.indices[keep], val.labels[keep])
    return classification_records({**cell, "variant": "val-200-clean"}, clean, subset, top5=False)[:1]


def real_records(
    cell: dict[str, Any], val: Predictions, val_keys: Sequence[str], real_lists: Sequence[Sequence[int]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """ReaL top-1 keyed by the val file number (so any subset of val works); empty label lists are skipped."""
    from benchbox.datasets.readers import val_file_number

    top1, lists, unkeyed = [], [], 0
    for row, sample_index in enumerate(val.indices):
        number = val_file_number(val_keys[sample_index])
        if number is None or number > len(real_lists):
            unkeyed += 1
            continue
        top1.append(int(np.argmax(val.logits[row])))
        lists.append(real_lists[number - 1])
    problems = (
        [f"real: {unkeyed} val images are not named ILSVRC2012_val_XXXXXXXX and have no ReaL labels"] if unkeyed else []
    )
    correct = real_correct(np.asarray(top1, dtype=np.int64), lists)
    if correct.size == 0:  # nothing to score: say why instead of recording an empty number
        return [], problems + ["real: no val image could be keyed to real.json, so ReaL was not scored"]
    acc = accuracy(correct)
    return [make_record(cell, "real_top1", acc["value"], acc["n"], acc["ci95"])], problems


def ood_records(cell: dict[str, Any], ood: Predictions, val: Predictions) -> list[dict[str, Any]]:
    """ImageNet-O: score = -max softmax over the 200 O classes; O images positive, val images of those classes
    negative. Also `aupr_sigmoid`: the same with the max sigmoid of the (masked) logits as confidence."""
    classes = subset_indices("o")
    in_keep = np.isin(val.labels, classes)
    in_logits = val.logits[in_keep][:, classes]
    out_logits = ood.logits[:, classes]
    records = []
    n = int(in_logits.shape[0] + out_logits.shape[0])
    out_score = -softmax(out_logits).max(axis=1)
    in_score = -softmax(in_logits).max(axis=1)
    records.append(make_record(cell, "aupr", 100.0 * aupr(out_score, in_score), n, positives=len(out_score)))
    records.append(make_record(cell, "auroc", 100.0 * auroc(out_score, in_score), n))
    records.append(make_record(cell, "fpr95", 100.0 * fpr_at_recall(out_score, in_score), n))
    sig_out = -_sigmoid(out_logits).max(axis=1)
    sig_in = -_sigmoid(in_logits).max(axis=1)
    records.append(make_record(cell, "aupr_sigmoid", 100.0 * aupr(sig_out, sig_in), n))
    return records


def _sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def corruption_records(
    cell: dict[str, Any], per_variant: dict[str, Predictions], clean_top1: float | None
) -> list[dict[str, Any]]:
    """ImageNet-C: error per corruption/severity, CE per corruption, mCE over the 15, relative mCE."""
    errors, records = {}, []
    for variant, pred in per_variant.items():
        corruption, severity = variant.split("/")
        n = int(pred.labels.size)
        if n == 0:
            continue
        err = 1.0 - float(topk_correct(pred.logits, pred.labels, 1).mean())
        errors[(corruption, int(severity))] = err
        records.append(make_record({**cell, "variant": variant}, "error", 100.0 * err, n))
        calibration = classification_records({**cell, "variant": variant}, pred, top5=False)
        records += [r for r in calibration if r["metric"] in ("ece", "rms_calib", "nll")]
    per_corruption = corruption_errors(errors)
    for corruption, info in per_corruption.items():
        flags = [] if info["complete"] else ["partial-severities"]
        records.append(
            make_record(
                {**cell, "variant": corruption},
                "ce",
                info["ce"],
                None,
                None,
                error=info["error"],
                flags=flags or None,
            )
        )
    clean_error = None if clean_top1 is None else 1.0 - clean_top1 / 100.0
    summary = mce(per_corruption, clean_error)
    flags = [] if summary["n_corruptions"] == 15 else [f"only {summary['n_corruptions']} of 15 corruptions"]
    value = summary["mce"] if not flags else summary["mce_partial"]
    if any(not info["complete"] for info in per_corruption.values()):
        flags.append("partial-severities")
    records.append(make_record(cell, "mce", value, summary["n_corruptions"], flags=flags or None))
    if clean_error is not None:
        rel = summary["relative_mce"] if not flags else summary["relative_mce_partial"]
        records.append(make_record(cell, "relative_mce", rel, summary["n_corruptions"], flags=flags or None))
    return records


def agreement_records(cell: dict[str, Any], reference: Predictions, other: Predictions) -> list[dict[str, Any]]:
    """Lower precision vs FP32 on the same engine: top-1 agreement, paired top-1 difference, McNemar p."""
    common, ref_rows, other_rows = np.intersect1d(reference.indices, other.indices, return_indices=True)
    if common.size == 0:
        return []
    ref_logits, oth_logits = reference.logits[ref_rows], other.logits[other_rows]
    labels = reference.labels[ref_rows]
    agree = agreement_top1(ref_logits.argmax(1), oth_logits.argmax(1))
    acc = accuracy(agree)
    records = [make_record(cell, "agreement_top1", acc["value"], acc["n"], acc["ci95"])]
    ref_correct = topk_correct(ref_logits, labels, 1)
    other_correct = topk_correct(oth_logits, labels, 1)
    paired = paired_difference(ref_correct, other_correct)
    records.append(
        make_record(
            cell,
            "top1_delta",
            100.0 * paired["diff"],
            paired["n"],
            [100.0 * paired["lo"], 100.0 * paired["hi"]],
            n10=paired["n10"],
            n01=paired["n01"],
        )
    )
    records.append(make_record(cell, "mcnemar_p", mcnemar_exact(paired["n10"], paired["n01"]), paired["n"]))
    return records


def perturbation_records(
    cell: dict[str, Any], per_perturbation: dict[str, Any], baseline: dict[str, dict[str, float]] | None
) -> list[dict[str, Any]]:
    """ImageNet-P: flip probability (percent) and top-5 distance per perturbation; mFR and mT5D over the 10 test
    perturbations, normalised by a baseline when one is given (no AlexNet values are invented)."""
    from benchbox.datasets.catalog import P_PERTURBATIONS
    from benchbox.metrics.robustness import flip_probability, normalised_mean, top5_distance

    records, fp, t5d = [], {}, {}
    for name, pred in per_perturbation.items():
        if not pred.logits:
            continue
        noise = "noise" in name  # as test.py: noise frames are compared with frame 0 (also `_2`, `_3` levels)
        fp[name] = 100.0 * flip_probability([v.argmax(axis=1) for v in pred.logits], noise)
        t5d[name] = top5_distance(pred.logits, noise)
        n = len(pred.logits)
        records.append(make_record({**cell, "variant": name}, "flip_prob", fp[name], n))
        records.append(make_record({**cell, "variant": name}, "top5_dist", t5d[name], n))
    test = [p for p in P_PERTURBATIONS if p in fp]
    flags = None if len(test) == len(P_PERTURBATIONS) else [f"only {len(test)} of 10 perturbations"]
    if baseline:
        for metric, values, key in (("mfr", fp, "flip_prob"), ("mt5d", t5d, "top5_dist")):
            value = normalised_mean({p: values[p] for p in test}, baseline.get(key))
            records.append(make_record(cell, metric, value, len(test), flags=flags))
    return records
