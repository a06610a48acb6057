"""Rendering of report data: Markdown and a self-contained HTML page (inline SVG, a self-check script, no
remote resources)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from benchbox.reports.tables import column_order


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return str(value)


def _cell_text(cell: dict[str, Any]) -> str:
    text = _fmt(cell["value"])
    if cell.get("ci95") and cell["ci95"][0] is not None:
        text += f" [{_fmt(cell['ci95'][0])}, {_fmt(cell['ci95'][1])}]"
    delta = cell.get("delta")
    if delta and delta.value is not None:
        lo, hi = delta.ci95 or (None, None)
        text += f"; Δ {delta.value:+.2f} [{_fmt(lo)}, {_fmt(hi)}]"
        if cell.get("p") and cell["p"].value is not None:
            text += f", p={cell['p'].value:.3g}"
    if cell.get("flags"):
        text += f" ({', '.join(cell['flags'])})"
    return text


def _accuracy_rows(data: dict[str, Any], table: str = "accuracy") -> tuple[list[str], list[list[str]]]:
    columns = data[table]["columns"]
    header = ["set", *[f"{m} {e}/{p}" for m, e, p in columns]]
    rows = []
    for row in data[table]["rows"]:
        label = row["testset"] + (f" ({row['variant']})" if row["variant"] else "")
        rows.append([label, *[_cell_text(row["cells"][c]) if c in row["cells"] else "" for c in columns]])
    return header, rows


def _robustness_rows(data):
    """Rows: set, metric, variant; columns: engine/precision (the same layout as the accuracy matrix)."""
    rows_data = data["robustness"]
    columns = sorted({(r.cell.model, r.cell.engine, r.cell.precision) for r in rows_data}, key=column_order)
    cells: dict[tuple, dict] = {}
    for r in rows_data:
        cells.setdefault((r.cell.testset, r.metric, r.cell.variant or ""), {})[
            (r.cell.model, r.cell.engine, r.cell.precision)
        ] = {"value": r.value}
    header = ["set", "metric", "variant", *[f"{m} {e}/{p}" for m, e, p in columns]]
    rows = [
        [
            testset,
            metric,
            variant,
            *[
                _fmt(cells[(testset, metric, variant)][c]["value"]) if c in cells[(testset, metric, variant)] else ""
                for c in columns
            ],
        ]
        for (testset, metric, variant) in cells
    ]
    return header, rows


def _latency_rows(data):
    header = [
        "model",
        "engine",
        "precision",
        "device",
        "batch",
        "mode",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "CV",
        "images/s",
        "flags",
    ]
    rows = [
        [
            r["model"],
            r["engine"],
            r["precision"],
            r["device"],
            str(r["batch_size"]),
            r["mode"] or "",
            _fmt(r.get("latency_p50_ms")),
            _fmt(r.get("latency_p90_ms")),
            _fmt(r.get("latency_p99_ms")),
            _fmt(r.get("latency_cv"), 3),
            _fmt(r.get("throughput_ips"), 1),
            ", ".join(r["flags"]),
        ]
        for r in data["latency"]
    ]
    return header, rows


def _lint_rows(data):
    header = ["model", "file", "TensorRT", "errors", "warnings", "rules"]
    rows = [
        [
            r["model"],
            r["precision"],
            str(r.get("trt") or ""),
            str(r.get("errors", 0)),
            str(r.get("warnings", 0)),
            ", ".join(r["rules"]),
        ]
        for r in data["lint"]
    ]
    return header, rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "_none recorded_\n"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_markdown(data: dict[str, Any], out_dir: Path) -> str:
    parts = [
        "# benchbox report\n",
        "Accuracy-type values are percentages with Wilson 95 % intervals; Δ is the paired difference against "
        "FP32 on the same engine with its 95 % interval and the exact McNemar p-value.\n",
    ]
    parts += ["## Warnings\n", "\n".join(f"- {w}" for w in data["warnings"]) + "\n" if data["warnings"] else "_none_\n"]
    parts += ["## Accuracy\n", _md_table(*_accuracy_rows(data))]
    if data["agreement"]["rows"]:
        parts += [
            "## Agreement on generated images\n",
            "Generated images have no meaningful labels: these are top-1 "
            "agreements between engines and precisions, not accuracies.\n",
            _md_table(*_accuracy_rows(data, "agreement")),
        ]
    parts += ["## Robustness and calibration\n", _md_table(*_robustness_rows(data))]
    parts += ["## Latency\n", _md_table(*_latency_rows(data))]
    parts += ["## TensorRT readiness (benchbox lint)\n", _md_table(*_lint_rows(data))]
    parts += ["## Plots\n"]
    for i, (title, svg) in enumerate(data["plots"].items()):
        name = f"plot{i + 1}.svg"
        (out_dir / name).write_text(svg)
        parts.append(f"![{title}]({name})\n")
    parts += [
        "## Environment\n",
        "```json\n" + json.dumps(data["environment"], indent=2) + "\n```\n"
        if data["environment"]
        else "_no latency runs recorded_\n",
    ]
    return "\n".join(parts)


SELF_CHECK = """
window.benchboxErrors = [];
window.addEventListener('error', function (e) { window.benchboxErrors.push(String(e.message)); });
window.addEventListener('load', function () {
  var figures = document.querySelectorAll('figure.plot svg');
  var drawn = 0;
  figures.forEach(function (svg) {
    var box = svg.getBBox();
    if (box.width > 10 && box.height > 10 && svg.querySelectorAll('path, rect, use').length > 3) { drawn += 1; }
  });
  document.body.setAttribute('data-plots', String(figures.length));
  document.body.setAttribute('data-plots-drawn', String(drawn));
  document.body.setAttribute('data-errors', String(window.benchboxErrors.length));
});
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.warn { color: #a04000; }
figure.plot { display: inline-block; margin: 1em; }
figure.plot svg { max-width: 100%; height: auto; }
"""


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p><em>none recorded</em></p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(data: dict[str, Any]) -> str:
    warnings = "".join(f"<li class='warn'>{html.escape(w)}</li>" for w in data["warnings"]) or "<li>none</li>"
    figures = "".join(
        f"<figure class='plot'><figcaption>{html.escape(t)}</figcaption>{svg}</figure>"
        for t, svg in data["plots"].items()
    )
    environment = html.escape(json.dumps(data["environment"], indent=2)) if data["environment"] else "not recorded"
    agreement = ""
    if data["agreement"]["rows"]:
        agreement = (
            "<h2>Agreement on generated images</h2><p>Generated images have no meaningful labels: these are top-1 "
            f"agreements between engines and precisions, not accuracies.</p>"
            f"{_html_table(*_accuracy_rows(data, 'agreement'))}"
        )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>benchbox report</title>"
        f"<style>{CSS}</style><script>{SELF_CHECK}</script></head><body>"
        "<h1>benchbox report</h1>"
        "<p>Accuracy-type values are percentages with Wilson 95 % intervals; Δ is the paired difference against FP32 "
        "on the same engine (95 % interval, exact McNemar p).</p>"
        f"<h2>Warnings</h2><ul>{warnings}</ul>"
        f"<h2>Accuracy</h2>{_html_table(*_accuracy_rows(data))}"
        f"{agreement}"
        f"<h2>Robustness and calibration</h2>{_html_table(*_robustness_rows(data))}"
        f"<h2>Latency</h2>{_html_table(*_latency_rows(data))}"
        f"<h2>TensorRT readiness (benchbox lint)</h2>{_html_table(*_lint_rows(data))}"
        f"<h2>Plots</h2>{figures or '<p><em>no plots: nothing to draw yet</em></p>'}"
        f"<h2>Environment</h2><pre>{environment}</pre>"
        "</body></html>"
    )
