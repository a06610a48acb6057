"""Tables built from store records: accuracy matrix with deltas, agreement (generated images), robustness,
latency, warnings."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from benchbox.records import Record
from benchbox.vocabulary import precision_rank

ROBUSTNESS_METRICS = (
    "mce",
    "relative_mce",
    "mfr",
    "mt5d",
    "aupr",
    "auroc",
    "fpr95",
    "aupr_sigmoid",
    "ece",
    "rms_calib",
    "nll",
    "flip_prob",
    "top5_dist",
)
LATENCY_METRICS = ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_cv", "throughput_ips")


def column_key(record: Record) -> tuple[str, str, str]:
    c = record.cell
    return (c.model or "", c.engine or "", c.precision or "")


def column_order(col: tuple[str, str, str]) -> tuple:
    model, engine, precision = col
    return (model, engine, precision_rank(precision), precision)


def set_order(name: str | None) -> int:
    from benchbox.datasets.catalog import set_rank

    return set_rank(name)


def headline_metric(testset: str) -> str | None:
    """The metric that sums a set up in the accuracy table (its spec's headline; C and P are robustness)."""
    from benchbox.datasets.catalog import TESTSETS

    spec = TESTSETS.get(testset)
    return None if spec is None or spec.layout in ("c", "p") else spec.headline


def generated(record: Record) -> bool:
    return "generated" in record.flags


def _cell(rec: Record) -> dict[str, Any]:
    return {"value": rec.value, "ci95": rec.ci95, "n": rec.n, "flags": list(rec.flags)}


def accuracy_matrix(records: list[Record]) -> dict[str, Any]:
    """Rows: set (and variant); columns: model/engine/precision; cells: value and its 95 % interval.

    Sets of generated images are left out: their labels mean nothing (the cost table's agreement rows say how
    far precisions and engines agree there). Differences live in the cost table."""
    rows: dict[tuple[str, str | None], dict] = defaultdict(dict)
    for r in records:
        testset = r.cell.testset
        if testset is None or generated(r):
            continue
        if r.metric == headline_metric(testset):
            rows[(testset, r.cell.variant)][column_key(r)] = r
        if r.metric == "clean_top1":
            rows[(testset, "val-200-clean")][column_key(r)] = r
    columns = sorted({c for row in rows.values() for c in row}, key=column_order)
    table = []
    for (testset, variant), cells in sorted(rows.items(), key=lambda kv: (set_order(kv[0][0]), kv[0][1] or "")):
        table.append({"testset": testset, "variant": variant, "cells": {col: _cell(rec) for col, rec in cells.items()}})
    return {"columns": columns, "rows": table}


def detail_tables(cost_rows) -> dict[str, list]:
    """Per-corruption CE (C), per-perturbation flip probability and top-5 distance (P), and top-1 agreement with
    the baseline per set: each lower precision's value [95 % CI] and Δ [95 % CI], from the cost table."""
    tables: dict[str, list] = {"c": [], "p": [], "agreement": [], "engines": []}
    for row in cost_rows:
        if row.kind == "engine":
            if row.headline or (row.metric == "agreement_top1" and row.variant is None):
                tables["engines"].append(row)
        elif row.metric == "agreement_top1" and row.variant is None:
            tables["agreement"].append(row)
        elif row.set == "c" and row.metric == "ce":
            tables["c"].append(row)
        elif row.set == "p" and row.metric in ("flip_prob", "top5_dist"):
            tables["p"].append(row)
    return tables


def robustness_table(records: list[Record]) -> list[Record]:
    """Set-level robustness and calibration rows, plus CE per corruption (C's per-severity figures stay in
    results.json/csv: 95 variants would drown the table). Generated images are left out."""
    rows = []
    for r in records:
        if r.cell.testset is None or generated(r):
            continue
        per_severity = r.cell.testset == "c" and r.cell.variant and r.metric != "ce"
        if (r.metric in ROBUSTNESS_METRICS and not per_severity) or r.metric == "ce":
            rows.append(r)
    return sorted(rows, key=lambda r: (set_order(r.cell.testset), column_key(r), r.metric, r.cell.variant or ""))


def lint_table(records: list[Record]) -> list[dict[str, Any]]:
    """One row per model and TensorRT-bound file: errors, warnings and the rules they broke."""
    rows: dict[tuple, dict] = {}
    for r in records:
        if r.metric in ("trt_lint_errors", "trt_lint_warnings"):
            key = (r.cell.model, r.cell.precision)
            blank = {"model": key[0], "precision": key[1], "trt": r.extra.get("trt"), "rules": set()}
            row = rows.setdefault(key, blank)
            row["errors" if r.metric == "trt_lint_errors" else "warnings"] = int(r.value or 0)
            row["rules"].update(f["rule"] for f in r.extra.get("findings", []))
    return [dict(v, rules=sorted(v["rules"])) for _, v in sorted(rows.items())]


def latency_table(records: list[Record]) -> list[dict[str, Any]]:
    """One row per (model, engine, precision, device, batch size, mode) with its latency metrics side by side."""
    rows: dict[tuple, dict] = {}
    for r in records:
        if r.metric in LATENCY_METRICS and r.batch_size:
            key = (*column_key(r), r.cell.device, r.batch_size, r.mode or "")
            row = rows.setdefault(
                key,
                {
                    "model": key[0],
                    "engine": key[1],
                    "precision": key[2],
                    "device": key[3],
                    "batch_size": key[4],
                    "mode": key[5],
                    "flags": set(),
                },
            )
            row[r.metric] = r.value
            row["flags"].update(r.flags)
    ordered = sorted(rows.items(), key=lambda kv: (column_order(kv[0][:3]), kv[0][3], kv[0][4], kv[0][5]))
    return [dict(v, flags=sorted(v["flags"])) for _, v in ordered]


def warnings_list(records: list[Record], runs: list[dict[str, Any]]) -> list[str]:
    """Calibration overlap, unreadable files, partial sets, synthesized or generated data, unstable latency,
    failed and unsupported cells."""
    notes: set[str] = set()
    partial: dict[tuple, set[str]] = {}
    for r in records:
        c = r.cell
        where = f"{c.model} {c.engine}/{c.precision} " + "/".join(x for x in (c.testset, c.variant) if x)
        if "calibration-overlap" in r.flags:
            notes.add(f"calibration overlap: {where.strip()} was scored on images it was calibrated on")
        if "synthesized" in r.flags:
            notes.add(f"synthesized data: {c.model} {c.testset} results come from benchbox-synthesized images")
        if "synthesized-outdated" in r.flags:
            notes.add(
                f"outdated synthesis: {c.testset} was synthesized by an older benchbox generator that deviates from "
                "the official one; re-run make-c/make-p into a new folder"
            )
        if "generated" in r.flags:
            notes.add(f"generated images: {c.testset} shows agreement only (labels of generated images mean nothing)")
        if any(f.startswith("only ") for f in r.flags):
            detail = ", ".join(f for f in r.flags if f.startswith("only ") or f == "partial-severities")
            notes.add(f"partial set: {c.model} {c.engine}/{c.precision} {c.testset} ({detail})")
        elif "partial-severities" in r.flags and c.variant:
            partial.setdefault((c.model, c.engine, c.precision, c.testset), set()).add(c.variant)
        if "unstable" in r.flags:
            notes.add(f"unstable latency: {where.strip()} batch {r.batch_size} (high coefficient of variation)")
        if r.metric == "unreadable_files" and r.value:
            notes.add(f"unreadable files: {int(r.value)} in {where.strip()}")
        if r.metric == "nonfinite_outputs" and r.value and (c.testset not in ("c", "p") or c.variant is None):
            unit = r.extra.get("unit") or "images"
            notes.add(f"NaN/Inf outputs: {int(r.value)} of {r.n} {unit} in {where.strip()}")
        if r.metric == "trt_lint_errors" and r.value:
            rules = sorted({f["rule"] for f in r.extra.get("findings", [])})
            notes.add(
                f"TensorRT lint: {int(r.value)} error(s) in {c.model} {c.precision} ({', '.join(rules)}): "
                "run benchbox lint for the nodes"
            )
        if r.metric == "calibration_note" and r.extra.get("note"):
            notes.add(f"calibration: {c.model} {c.precision}: {r.extra['note']}")
        if r.metric in ("failed", "unsupported"):
            label = "unsupported" if r.metric == "unsupported" else "failed cell"
            notes.add(f"{label}: {where.strip()}: {r.error}")
    for (model, engine, precision, testset), variants in partial.items():
        notes.add(
            f"partial set: {model} {engine}/{precision} {testset}: {len(variants)} corruptions lack some of the 5 "
            f"severities ({', '.join(sorted(variants)[:4])}{', ...' if len(variants) > 4 else ''})"
        )
    for run in runs:
        if run["status"] == "failed" and run["kind"] == "export":
            notes.add(f"failed export: {run.get('model')}: {run.get('error')}")
    return sorted(notes)


METRIC_LABELS = {
    "top1": "top-1 %",
    "top5": "top-5 %",
    "real_top1": "ReaL top-1 %",
    "ece": "ECE %",
    "nll": "NLL",
    "aupr": "AUPR %",
    "auroc": "AUROC %",
    "fpr95": "FPR95 %",
    "mce": "mCE %",
    "relative_mce": "relative mCE %",
    "mfr": "mFR %",
    "mt5d": "mT5D %",
    "ce": "CE %",
    "flip_prob": "flip prob. %",
    "top5_dist": "top-5 distance",
    "clean_top1": "clean top-1 %",
    "agreement_top1": "agreement %",
    "latency_p50_ms": "p50 latency ms",
    "throughput_ips": "throughput img/s",
    "file_mb": "file MB",
}


def set_title(testset: str | None) -> str:
    """How tables name a set (its spec's short label)."""
    from benchbox.datasets.catalog import TESTSETS

    return TESTSETS[testset].label if testset in TESTSETS else (testset or "deployment")


def _num(value, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.3g}"


def delta_text(row) -> str:
    """'-1.67 [-3.21, -0.12] *' (the mark: the interval excludes 0), or why there is no Δ."""
    if not row.paired:
        return "not paired"
    if row.ratio is not None:
        return f"×{row.ratio:.2f}"
    if row.delta is None:
        return "—"
    values = [v for v in (row.delta, row.ci_low, row.ci_high) if v is not None]
    small = all(abs(v) < 0.005 for v in values) and any(v != 0 for v in values)
    form = "{:+.2g}" if small else "{:+.2f}"  # tiny differences (FP16 rounding) keep their digits
    text = form.format(row.delta)
    if row.ci_low is not None and row.ci_high is not None:
        text += f" [{form.format(row.ci_low)}, {form.format(row.ci_high)}]"
    if row.significant:
        text += " *"
    return text


def cost_tables(rows, headline_only: bool = True) -> list[dict[str, Any]]:
    """The cost table per model x engine x device: one row per (set, variant, metric), the baseline's value, then
    per lower precision its value and Δ [95 % CI] (* when the interval excludes 0), p-value and n; then
    latency, throughput and file size against the baseline where benched."""
    groups: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        if row.kind not in ("precision", "model") or (headline_only and not row.headline and row.set is not None):
            continue
        if row.generated and row.metric != "agreement_top1":
            continue  # generated images: their labels mean nothing (the agreement table has them)
        key = (row.model, row.model_id, row.engine if row.set is not None or row.metric != "file_mb" else "export")
        group = groups.setdefault(
            key,
            {
                "model": row.model,
                "model_id": row.model_id,
                "engine": key[2],
                "device": row.device,
                "baseline": row.baseline,
                "precisions": [],
                "rows": {},
            },
        )
        if row.precision not in group["precisions"]:
            group["precisions"].append(row.precision)
        label = (row.set, row.variant, row.metric, row.batch_size)
        entry = group["rows"].setdefault(
            label,
            {
                "set": row.set,
                "variant": row.variant,
                "metric": row.metric,
                "batch_size": row.batch_size,
                "baseline_value": row.baseline_value,
                "baseline_ci": row.baseline_ci,
                "cells": {},
            },
        )
        entry["cells"][row.precision] = row
    out = []
    for group in groups.values():
        group["precisions"].sort(key=precision_rank)
        group["rows"] = list(group["rows"].values())
        out.append(group)
    return out


def cost_row_label(entry: dict[str, Any]) -> tuple[str, str]:
    """(set, metric) labels of a cost-table row."""
    where = set_title(entry["set"])
    if entry["variant"]:
        where += f" ({entry['variant']})"
    metric = METRIC_LABELS.get(entry["metric"], entry["metric"])
    if entry.get("batch_size"):
        metric += f", batch {entry['batch_size']}"
    return where, metric
