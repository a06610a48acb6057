"""Tables built from store records: accuracy matrix with deltas, agreement (generated images), robustness,
latency, warnings."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from benchbox.records import Record

ACCURACY_METRIC = {
    "val": "top1",
    "v2": "top1",
    "sketch": "top1",
    "a": "top1",
    "r": "top1",
    "real": "real_top1",
    "o": "aupr",
}
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
PRECISION_ORDER = ("fp32", "bf16", "fp16", "int8", "int8-cpu", "int8-trt")
SET_ORDER = ("val", "real", "v2", "sketch", "a", "r", "o", "c", "p")


def column_key(record: Record) -> tuple[str, str, str]:
    c = record.cell
    return (c.model or "", c.engine or "", c.precision or "")


def column_order(col: tuple[str, str, str]) -> tuple:
    model, engine, precision = col
    rank = PRECISION_ORDER.index(precision) if precision in PRECISION_ORDER else len(PRECISION_ORDER)
    return (model, engine, rank, precision)


def set_order(name: str | None) -> int:
    return SET_ORDER.index(name) if name in SET_ORDER else len(SET_ORDER)


def generated(record: Record) -> bool:
    return "generated" in record.flags


def _cell(rec: Record, deltas: dict, key: tuple) -> dict[str, Any]:
    return {
        "value": rec.value,
        "ci95": rec.ci95,
        "n": rec.n,
        "flags": list(rec.flags),
        "delta": deltas.get((*key, "top1_delta")),
        "p": deltas.get((*key, "mcnemar_p")),
        "agreement": deltas.get((*key, "agreement_top1")),
    }


def accuracy_matrix(records: list[Record]) -> dict[str, Any]:
    """Rows: set (and variant); columns: model/engine/precision; cells: value, CI, delta vs FP32, its CI, p.

    Sets of generated images are left out: their labels mean nothing (see `agreement_matrix`)."""
    rows: dict[tuple[str, str | None], dict] = defaultdict(dict)
    deltas = {}
    for r in records:
        testset = r.cell.testset
        if testset is None or generated(r):
            continue
        if r.metric == ACCURACY_METRIC.get(testset) and (testset != "c" and testset != "p"):
            rows[(testset, r.cell.variant)][column_key(r)] = r
        if r.metric == "clean_top1":
            rows[(testset, "val-200-clean")][column_key(r)] = r
        if r.metric in ("top1_delta", "mcnemar_p", "agreement_top1") and r.reference == f"{r.cell.engine}/fp32":
            deltas[(testset, r.cell.variant, *column_key(r), r.metric)] = r
    return _matrix(rows, deltas)


def agreement_matrix(records: list[Record]) -> dict[str, Any]:
    """On generated images: each cell's top-1 agreement with fp32 on its engine (and engines with the first)."""
    rows: dict[tuple[str, str | None], dict] = defaultdict(dict)
    for r in records:
        if r.metric == "agreement_top1" and generated(r) and r.cell.testset:
            rows[(r.cell.testset, f"{r.cell.variant or ''} vs {r.reference}".strip())][column_key(r)] = r
    return _matrix(rows, {})


def _matrix(rows, deltas) -> dict[str, Any]:
    columns = sorted({c for row in rows.values() for c in row}, key=column_order)
    table = []
    for (testset, variant), cells in sorted(rows.items(), key=lambda kv: (set_order(kv[0][0]), kv[0][1] or "")):
        table.append(
            {
                "testset": testset,
                "variant": variant,
                "cells": {col: _cell(rec, deltas, (testset, variant, *col)) for col, rec in cells.items()},
            }
        )
    return {"columns": columns, "rows": table}


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
        where = f"{c.engine}/{c.precision} " + "/".join(x for x in (c.testset, c.variant) if x)
        if "calibration-overlap" in r.flags:
            notes.add(f"calibration overlap: {where.strip()} was scored on images it was calibrated on")
        if "synthesized" in r.flags:
            notes.add(f"synthesized data: {c.testset} results come from benchbox-synthesized images")
        if "synthesized-outdated" in r.flags:
            notes.add(
                f"outdated synthesis: {c.testset} was synthesized by an older benchbox generator that deviates from "
                "the official one; re-run make-c/make-p into a new folder"
            )
        if "generated" in r.flags:
            notes.add(f"generated images: {c.testset} shows agreement only (labels of generated images mean nothing)")
        if any(f.startswith("only ") for f in r.flags):
            detail = ", ".join(f for f in r.flags if f.startswith("only ") or f == "partial-severities")
            notes.add(f"partial set: {c.engine}/{c.precision} {c.testset} ({detail})")
        elif "partial-severities" in r.flags and c.variant:
            partial.setdefault((c.engine, c.precision, c.testset), set()).add(c.variant)
        if "unstable" in r.flags:
            notes.add(f"unstable latency: {where.strip()} batch {r.batch_size} (high coefficient of variation)")
        if r.metric == "unreadable_files" and r.value:
            notes.add(f"unreadable files: {int(r.value)} in {where.strip()}")
        if r.metric == "nonfinite_outputs" and r.value:
            notes.add(f"NaN/Inf outputs: {int(r.value)} images in {where.strip()}")
        if r.metric == "trt_lint_errors" and r.value:
            rules = sorted({f["rule"] for f in r.extra.get("findings", [])})
            notes.add(
                f"TensorRT lint: {int(r.value)} error(s) in {c.model} {c.precision} ({', '.join(rules)}): "
                "run benchbox lint for the nodes"
            )
        if r.metric in ("failed", "unsupported"):
            label = "unsupported" if r.metric == "unsupported" else "failed cell"
            notes.add(f"{label}: {where.strip()}: {r.error}")
    for (engine, precision, testset), variants in partial.items():
        notes.add(
            f"partial set: {engine}/{precision} {testset}: {len(variants)} corruptions lack some of the 5 "
            f"severities ({', '.join(sorted(variants)[:4])}{', ...' if len(variants) > 4 else ''})"
        )
    for run in runs:
        if run["status"] == "failed" and run["kind"] == "export":
            notes.add(f"failed export: {run.get('model')}: {run.get('error')}")
    return sorted(notes)
