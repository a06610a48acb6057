"""`benchbox report`: report.md, a self-contained report.html (inline SVG plots), results.json, results.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.errors import UserError, printable
from benchbox.records import IDENTITY, Cell, Record
from benchbox.reports import plots
from benchbox.reports.render import render_html, render_markdown
from benchbox.reports.tables import (
    accuracy_matrix,
    agreement_matrix,
    latency_table,
    lint_table,
    robustness_table,
    warnings_list,
)
from benchbox.store import ResultStore


def build_report(store_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Read the store (read-only), write the four files, return their paths."""
    store = ResultStore(store_dir, read_only=True)
    records = store.records()
    if not records:
        raise UserError(
            f"The store at {printable(store_dir)} holds no finished results yet.", "Run benchbox eval first."
        )
    runs = store.latest_runs()
    data = {
        "accuracy": accuracy_matrix(records),
        "agreement": agreement_matrix(records),
        "robustness": robustness_table(records),
        "latency": latency_table(records),
        "lint": lint_table(records),
        "warnings": warnings_list(records, runs),
        "environment": _environment(records),
        "plots": _plots(store, records, runs),
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": out_dir / "results.json",
            "csv": out_dir / "results.csv",
            "md": out_dir / "report.md",
            "html": out_dir / "report.html",
        }
        payload = {"records": [r.to_json() for r in records], "warnings": data["warnings"]}
        paths["json"].write_text(json.dumps(payload, indent=2, default=str))
        _write_csv(paths["csv"], records)
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
    """{(engine, precision): summary} of the latest finished real-image cells on a set (for plots)."""
    generated = {r.cell for r in records if "generated" in r.flags}
    found = {}
    for run in runs:
        if run["kind"] != "cell" or run["status"] != "done" or run["testset"] != testset or run["variant"]:
            continue
        cell = Cell(run["model"], run["engine"], run["device"], run["precision"], testset, None)
        if cell in generated:
            continue
        final = store.load_final(run["cell_key"])
        if final is not None and final["summary"].size:
            found[(run["model"], run["engine"], run["precision"])] = final["summary"]
    return found


def _plots(store: ResultStore, records: list[Record], runs: list[dict[str, Any]]) -> dict[str, str]:
    from benchbox.datasets.catalog import subset_indices

    out: dict[str, str] = {}
    made = plots.accuracy_vs_latency(records)
    if made:
        out[made[0]] = made[1]
    svg = plots.ce_per_corruption(records)
    if svg:
        out["CE per corruption by precision"] = svg
    val = _summaries(store, runs, records, "val")
    reliability = {}
    for (_, engine, precision), s in list(val.items())[:6]:
        finite = s["nonfinite"] == 0
        reliability[f"{engine}/{precision}"] = (s["conf"][finite], (s["top5"][:, 0] == s["label"])[finite])
    if reliability:
        out["Reliability diagram"] = plots.reliability_diagram(reliability)
    classes = np.asarray(subset_indices("o"))
    for key, o_summary in _summaries(store, runs, records, "o").items():
        if key in val:
            inside = val[key][np.isin(val[key]["label"], classes)]
            title = f"ImageNet-O confidence, {key[1]}/{key[2]}"
            out[title] = plots.o_confidence_histogram(inside["o_conf"], o_summary["o_conf"], title)
    return out


def _write_csv(path: Path, records: list[Record]) -> None:
    extra = ["reference", "batch_size", "mode", "samples", "flags", "error"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*IDENTITY, "metric", "value", "n", "ci95_lo", "ci95_hi", *extra])
        for r in records:
            ci = r.ci95 or (None, None)
            writer.writerow(
                [getattr(r.cell, k) for k in IDENTITY]
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
            )
