"""Tables built from store records: accuracy matrix with deltas, robustness, latency, warnings."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

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
)
LATENCY_METRICS = ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_cv", "throughput_ips")


def column_key(record: dict[str, Any]) -> tuple[str, str, str]:
    return (record.get("model") or "", record.get("engine") or "", record.get("precision") or "")


def accuracy_matrix(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows: set (and variant); columns: model/engine/precision; cells: value, CI, delta vs FP32, its CI, p."""
    rows: dict[tuple[str, str | None], dict] = defaultdict(dict)
    deltas = {}
    for r in records:
        testset = r.get("testset")
        if testset is None:
            continue
        if r["metric"] == ACCURACY_METRIC.get(testset) and r.get("variant") in (
            None,
            "matched-frequency",
            "threshold0.7",
            "top-images",
            "val-200-clean",
        ):
            rows[(testset, r.get("variant"))][column_key(r)] = r
        same_engine_fp32 = r.get("reference") == f"{r.get('engine')}/fp32"
        if r["metric"] in ("top1_delta", "mcnemar_p", "agreement_top1") and same_engine_fp32:
            deltas[(testset, r.get("variant"), *column_key(r), r["metric"])] = r
    columns = sorted({c for row in rows.values() for c in row}, key=column_order)
    table = []
    for (testset, variant), cells in sorted(rows.items(), key=lambda kv: (_set_order(kv[0][0]), kv[0][1] or "")):
        row = {"testset": testset, "variant": variant, "cells": {}}
        for col in columns:
            rec = cells.get(col)
            if rec is None:
                continue
            key = (testset, variant, *col)
            row["cells"][col] = {
                "value": rec["value"],
                "ci95": rec.get("ci95"),
                "n": rec.get("n"),
                "flags": rec.get("flags") or [],
                "delta": deltas.get((*key, "top1_delta")),
                "p": deltas.get((*key, "mcnemar_p")),
                "agreement": deltas.get((*key, "agreement_top1")),
            }
        table.append(row)
    return {"columns": columns, "rows": table}


PRECISION_ORDER = ("fp32", "bf16", "fp16", "int8", "int8-cpu", "int8-trt")


def column_order(col: tuple[str, str, str]) -> tuple:
    model, engine, precision = col
    rank = PRECISION_ORDER.index(precision) if precision in PRECISION_ORDER else len(PRECISION_ORDER)
    return (model, engine, rank, precision)


def _set_order(name: str) -> int:
    order = ["val", "real", "v2", "sketch", "a", "r", "o", "c", "p"]
    return order.index(name) if name in order else len(order)


def robustness_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set-level robustness and calibration rows, plus CE per corruption (C's per-severity calibration stays in
    results.json/csv: 95 variants would drown the table)."""
    rows = []
    for r in records:
        per_severity = r.get("testset") == "c" and r.get("variant") and r["metric"] != "ce"
        if (r["metric"] in ROBUSTNESS_METRICS and r.get("testset") and not per_severity) or r["metric"] == "ce":
            rows.append(r)
    return sorted(rows, key=lambda r: (_set_order(r["testset"]), column_key(r), r["metric"], r.get("variant") or ""))


def latency_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, engine, precision, batch size, mode) with its latency metrics side by side."""
    rows: dict[tuple, dict] = {}
    for r in records:
        if r["metric"] in LATENCY_METRICS and r.get("batch_size"):
            key = (*column_key(r), r["device"], r["batch_size"], r.get("variant"))
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
            row[r["metric"]] = r["value"]
            row["flags"].update(r.get("flags") or [])
    return [dict(v, flags=sorted(v["flags"])) for _, v in sorted(rows.items(), key=lambda kv: str(kv[0]))]


def warnings_list(records: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[str]:
    """Calibration overlap, unreadable files, partial sets, synthesized data, unstable latency, failed cells."""
    notes: set[str] = set()
    partial: dict[tuple, set[str]] = {}
    for r in records:
        flags = r.get("flags") or []
        where = " ".join(
            str(x)
            for x in (
                f"{r.get('engine')}/{r.get('precision')}",
                "/".join(x for x in (r.get("testset"), r.get("variant")) if x),
            )
            if x
        )
        if "calibration-overlap" in flags:
            notes.add(f"calibration overlap: {where} was scored on images it was calibrated on")
        if "synthesized" in flags:
            notes.add(f"synthesized data: {r.get('testset')} results come from benchbox-generated images")
        if any(f.startswith("only ") for f in flags):  # set-level records say how much of the set there was
            detail = ", ".join(f for f in flags if f.startswith("only ") or f == "partial-severities")
            notes.add(f"partial set: {r.get('engine')}/{r.get('precision')} {r.get('testset')} ({detail})")
        elif "partial-severities" in flags and r.get("variant"):
            partial.setdefault((r.get("engine"), r.get("precision"), r.get("testset")), set()).add(r["variant"])
        if "unstable" in flags:
            notes.add(f"unstable latency: {where} batch {r.get('batch_size')} (high coefficient of variation)")
        if r["metric"] == "unreadable_files" and r.get("value"):
            notes.add(f"unreadable files: {int(r['value'])} in {where}")
        if r["metric"] == "nonfinite_outputs" and r.get("value"):
            notes.add(f"NaN/Inf outputs: {int(r['value'])} images in {where}")
    for (engine, precision, testset), variants in partial.items():
        notes.add(
            f"partial set: {engine}/{precision} {testset}: {len(variants)} corruptions lack some of the 5 "
            f"severities ({', '.join(sorted(variants)[:4])}{', ...' if len(variants) > 4 else ''})"
        )
    unsupported = {(r.get("engine"), r.get("precision")) for r in records if r["metric"] == "unsupported"}
    for run in runs:
        if run["status"] == "failed":
            label = "unsupported" if (run.get("engine"), run.get("precision")) in unsupported else "failed cell"
            where = f"{run.get('engine')}/{run.get('precision')} {run.get('testset') or ''}".rstrip()
            notes.add(f"{label}: {where}: {run.get('error')}")
    return sorted(notes)
