"""`benchbox report`: report.md, a self-contained report.html (inline SVG plots), results.json, results.csv.

Both reports open with the verdict (READY / NOT READY / CANNOT DECIDE) and the gate table, then the cost table
(what each lower precision costs on every set, Δ with paired 95 % intervals), then the detail. results.json holds
the records, the cost table as `precision_cost` rows and the verdict object `check --json` writes; results.csv
the same records and cost rows, told apart by its first column.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.errors import UserError, printable
from benchbox.records import IDENTITY, Cell, Record
from benchbox.reports import plots
from benchbox.reports.comparison import CostRow
from benchbox.reports.render import render_html, render_markdown
from benchbox.reports.tables import (
    accuracy_matrix,
    cost_tables,
    detail_tables,
    latency_table,
    lint_table,
    robustness_table,
    warnings_list,
)
from benchbox.store import ResultStore


def build_report(store_dir: Path, out_dir: Path, policy: Path | None = None, result=None) -> dict[str, Path]:
    """Read the store (read-only), decide the policy (unless `result` is given), write the four files."""
    from benchbox.reports.check import load_policy
    from benchbox.reports.comparison import current_cells
    from benchbox.reports.verdict import decide

    store = ResultStore(store_dir, read_only=True)
    current = current_cells(store)
    records = store.records(exclude=current.stale_runs)
    if not records:
        raise UserError(
            f"The store at {printable(store_dir)} holds no finished results yet.", "Run benchbox eval first."
        )
    if result is None:
        result = decide(store, load_policy(policy), records)
    runs = store.latest_runs()
    data = {
        "verdict": result,
        "cost": cost_tables(result.cost),
        "detail": detail_tables(result.cost),
        "accuracy": accuracy_matrix(records),
        "robustness": robustness_table(records),
        "latency": latency_table(records),
        "lint": lint_table(records),
        "warnings": warnings_list(records, runs) + [p for p in result.problems],
        "environment": _environment(records),
        "plots": _plots(store, records, runs, result),
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": out_dir / "results.json",
            "csv": out_dir / "results.csv",
            "md": out_dir / "report.md",
            "html": out_dir / "report.html",
        }
        payload = {
            "verdict": result.to_json(),
            "records": [r.to_json() for r in records],
            "precision_cost": [row.to_json() for row in result.cost],
            "warnings": data["warnings"],
        }
        paths["json"].write_text(json.dumps(payload, indent=2, default=str))
        _write_csv(paths["csv"], records, result.cost)
        paths["md"].write_text(render_markdown(data, out_dir))
        paths["html"].write_text(render_html(data))
    except OSError as exc:
        raise UserError(
            f"Cannot write the report to {printable(out_dir)}: {exc.strerror or exc}.",
            "Pass --out DIR to a writable folder.",
        ) from exc
    return paths


def _environment(records: list[Record]) -> dict[str, Any] | None:
    for r in records:
        if isinstance(r.extra.get("env"), dict):
            return r.extra["env"]
    return None


def _summaries(store: ResultStore, runs: list[dict[str, Any]], records: list[Record], testset: str) -> dict:
    """{(model, engine, precision): summary} of the latest finished real-image cells on a set (for plots)."""
    generated = {r.cell for r in records if "generated" in r.flags}
    found = {}
    for run in runs:
        if run["kind"] != "cell" or run["status"] != "done" or run["testset"] != testset or run["variant"]:
            continue
        cell = Cell(run["model"], run["engine"], run["device"], run["precision"], testset, None, run["model_id"])
        if cell in generated:
            continue
        final = store.load_final(run["cell_key"])
        if final is not None and final["summary"].size:
            found[(run["model"], run["engine"], run["precision"])] = final["summary"]
    return found


def _plots(store: ResultStore, records: list[Record], runs: list[dict[str, Any]], result) -> dict[str, str]:
    from benchbox.datasets.catalog import subset_indices
    from benchbox.evaluation.summaries import calibration_inputs

    out: dict[str, str] = {}
    for title, svg in plots.forest_plots(result.cost, result.policy):
        out[title] = svg
    made = plots.accuracy_vs_latency(records, result.cost)
    if made:
        out[made[0]] = made[1]
    svg = plots.ce_per_corruption(records)
    if svg:
        out["CE per corruption by precision"] = svg
    val = _summaries(store, runs, records, "val")
    reliability = {}
    for (_, engine, precision), s in list(val.items())[:6]:
        conf, correct, _ = calibration_inputs(s)
        reliability[(engine, precision)] = (conf, correct)
    if reliability:
        out["Reliability diagram (val)"] = plots.reliability_diagram(reliability)
    classes = np.asarray(subset_indices("o"))
    for key, o_summary in _summaries(store, runs, records, "o").items():
        if key in val:
            inside = val[key][np.isin(val[key]["label"], classes)]
            title = f"ImageNet-O confidence, {key[1]}/{key[2]}"
            finite_in, finite_out = inside[inside["nonfinite"] == 0], o_summary[o_summary["nonfinite"] == 0]
            out[title] = plots.o_confidence_histogram(finite_in["o_conf"], finite_out["o_conf"], title)
    return out


def _write_csv(path: Path, records: list[Record], cost: list[CostRow]) -> None:
    """Records, then the cost table's rows, in one file: the first column says which."""
    extra = ["reference", "batch_size", "mode", "samples", "flags", "error"]
    cost_columns = ["baseline", "baseline_value", "delta", "ci_low", "ci_high", "p_value", "ratio"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", *IDENTITY, "metric", "value", "n", "ci95_lo", "ci95_hi", *extra, *cost_columns])
        for r in records:
            ci = r.ci95 or (None, None)
            writer.writerow(
                ["record"]
                + [getattr(r.cell, k) for k in IDENTITY]
                + [
                    r.metric,
                    r.value,
                    r.n,
                    *ci,
                    r.reference,
                    r.batch_size,
                    r.mode,
                    r.samples,
                    ";".join(r.flags),
                    r.error,
                ]
                + [""] * len(cost_columns)
            )
        for row in cost:
            data = row.to_json()
            cell = {
                "model": row.model,
                "engine": row.engine,
                "device": row.device,
                "precision": row.precision,
                "testset": row.set,
                "variant": row.variant,
                "model_id": row.model_id,
            }
            writer.writerow(
                ["precision_cost"]
                + [cell[k] for k in IDENTITY]
                + [
                    row.metric,
                    data["value"],
                    row.n,
                    *(data["value_ci"] or (None, None)),
                    row.baseline,
                    row.batch_size,
                    None,
                    None,
                    "significant" if row.significant else "",
                    row.reason or None,
                ]
                + [data.get(c) for c in cost_columns]
            )
