"""Rendering of report data: Markdown, and a self-contained HTML page from a Jinja2 template with autoescaping
(inline SVG, a self-check script, no remote resources). Both open with the verdict and the gate table, then the
cost table, then the detail; both are built from the same (header, rows) tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchbox.reports.tables import METRIC_LABELS, column_order, cost_row_label, delta_text


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return str(value)


def _pval(value: Any) -> str:
    return "" if value is None else f"{value:.3g}"


def _interval(ci) -> str:
    if not ci or ci[0] is None:
        return ""
    return f" [{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _cell_text(cell: dict[str, Any]) -> str:
    text = _fmt(cell["value"]) + _interval(cell.get("ci95"))
    if cell.get("flags"):
        text += f" ({', '.join(cell['flags'])})"
    return text


def _gate_limit(gate) -> str:
    return str(
        gate.limit.get("value") if isinstance(gate.limit, dict) else gate.limit if gate.limit is not None else ""
    )


def _cost_n(entry: dict[str, Any]) -> str:
    rows = [r for r in entry["cells"].values() if r is not None]
    return rows[-1].n_text if rows else ""


def tables(data: dict[str, Any]) -> dict[str, dict[str, list]]:
    """Every detail table as {header, rows} of text."""
    return {
        "accuracy": _accuracy(data["accuracy"]),
        "agreement": _compared(data["detail"]["agreement"], "agreement"),
        "engines": _compared(data["detail"]["engines"], "engines"),
        "c": _compared(data["detail"]["c"], "c"),
        "p": _compared(data["detail"]["p"], "p"),
        "robustness": _robustness(data["robustness"]),
        "latency": _latency(data["latency"]),
        "lint": _lint(data["lint"]),
    }


def _accuracy(matrix: dict[str, Any]) -> dict[str, list]:
    columns = matrix["columns"]
    header = ["set", *[f"{m} {e}/{p}" for m, e, p in columns]]
    rows = []
    for row in matrix["rows"]:
        label = row["testset"] + (f" ({row['variant']})" if row["variant"] else "")
        rows.append([label, *[_cell_text(row["cells"][c]) if c in row["cells"] else "" for c in columns]])
    return {"header": header, "rows": rows}


def _compared(rows, kind: str) -> dict[str, list]:
    """Cost rows of one kind: per model/engine/precision the value [CI], the baseline's, and Δ [CI]."""
    header = [
        "model",
        "engine/precision",
        "vs",
        "set",
        "variant",
        "metric",
        "value [95 % CI]",
        "baseline",
        "Δ [95 % CI]",
        "n",
    ]
    out = []
    for r in rows:
        out.append(
            [
                r.model,
                f"{r.engine}/{r.precision}",
                r.baseline,
                r.set or "",
                r.variant or "",
                METRIC_LABELS.get(r.metric, r.metric),
                _fmt(r.value) + _interval(r.value_ci),
                _fmt(r.baseline_value) + _interval(r.baseline_ci),
                delta_text(r) if r.metric != "agreement_top1" else "",
                r.n_text,
            ]
        )
    return {"header": header, "rows": out}


def _robustness(records) -> dict[str, list]:
    """Rows: set, metric, variant; columns: model engine/precision (the layout of the accuracy matrix)."""
    columns = sorted({(r.cell.model, r.cell.engine, r.cell.precision) for r in records}, key=column_order)
    cells: dict[tuple, dict] = {}
    for r in records:
        cells.setdefault((r.cell.testset, r.metric, r.cell.variant or ""), {})[
            (r.cell.model, r.cell.engine, r.cell.precision)
        ] = r.value
    header = ["set", "metric", "variant", *[f"{m} {e}/{p}" for m, e, p in columns]]
    rows = [
        [testset, metric, variant, *[_fmt(values[c]) if c in values else "" for c in columns]]
        for (testset, metric, variant), values in cells.items()
    ]
    return {"header": header, "rows": rows}


def _latency(rows) -> dict[str, list]:
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
    out = [
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
        for r in rows
    ]
    return {"header": header, "rows": out}


def _lint(rows) -> dict[str, list]:
    header = ["model", "file", "TensorRT", "errors", "warnings", "rules"]
    out = [
        [
            r["model"],
            r["precision"],
            str(r.get("trt") or ""),
            str(r.get("errors", 0)),
            str(r.get("warnings", 0)),
            ", ".join(r["rules"]),
        ]
        for r in rows
    ]
    return {"header": header, "rows": out}


# -- Markdown ---------------------------------------------------------------------------------------------
def _md_escape(text: Any) -> str:
    """A table cell: pipes escaped (a model named `a|b` must not split the row), newlines flattened."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(table: dict[str, list]) -> str:
    if not table["rows"]:
        return "_none recorded_\n"
    lines = ["| " + " | ".join(_md_escape(h) for h in table["header"]) + " |", "|" + "---|" * len(table["header"])]
    lines += ["| " + " | ".join(_md_escape(cell) for cell in row) + " |" for row in table["rows"]]
    return "\n".join(lines) + "\n"


def _md_gates(verdict) -> dict[str, list]:
    rows = [
        [
            g.gate + ("" if g.scope == "[gates]" else f" {g.scope}"),
            g.subject,
            g.value_text(),
            _gate_limit(g),
            g.status.upper() if g.status in ("fail",) else str(g.status),
            g.reason,
        ]
        for g in verdict.gates
    ]
    return {"header": ["gate", "subject", "value [95 % CI]", "limit", "result", "why"], "rows": rows}


def _md_cost(group: dict[str, Any]) -> dict[str, list]:
    header = ["set", "metric", group["baseline"]]
    for p in group["precisions"]:
        header += [p, f"Δ {p} [95 % CI]", "p"]
    header.append("n")
    rows = []
    for entry in group["rows"]:
        where, metric = cost_row_label(entry)
        row = [where, metric, _fmt(entry["baseline_value"])]
        for p in group["precisions"]:
            cell = entry["cells"].get(p)
            row += [_fmt(cell.value), delta_text(cell), _pval(cell.p_value)] if cell else ["", "", ""]
        row.append(_cost_n(entry))
        rows.append(row)
    return {"header": header, "rows": rows}


def render_markdown(data: dict[str, Any], out_dir: Path) -> str:
    verdict = data["verdict"]
    detail = tables(data)
    parts = [
        "# benchbox report\n",
        f"## Verdict: **{verdict.verdict.words}**\n",
        f"{verdict.why}. Policy: {verdict.policy.source}, baseline {verdict.policy.baseline_precision}, decision "
        f"rule `{verdict.policy.decide}`; exit code of `benchbox check`: {verdict.exit_code}.\n",
        "## Gates\n",
        _md_table(_md_gates(verdict)),
        "## What each precision costs\n",
        "Each lower precision against the baseline on the same model, engine and device, paired on the same images: "
        "Δ = value − baseline with its 95 % interval (top-1: Bonett–Price paired interval and exact McNemar p; other "
        "metrics: paired bootstrap over images, for C by image over every corruption and severity, for P by video). "
        "`*` marks an interval that excludes 0.\n",
    ]
    for group in data["cost"]:
        ident = f" [{group['model_id']}]" if group.get("model_id") else ""
        parts += [
            f"### {_md_escape(group['model'])}{ident} · {group['engine']} on {group['device']} "
            f"(vs {group['baseline']})\n",
            _md_table(_md_cost(group)),
        ]
    if not data["cost"]:
        parts.append("_no lower precision was scored beside its baseline_\n")
    parts += ["## Warnings\n", "\n".join(f"- {w}" for w in data["warnings"]) + "\n" if data["warnings"] else "_none_\n"]
    parts += ["## Accuracy\n", _md_table(detail["accuracy"])]
    for key, title in (
        ("agreement", "Top-1 agreement with the baseline"),
        ("engines", "Engines against the first"),
        ("c", "ImageNet-C: CE per corruption"),
        ("p", "ImageNet-P: per perturbation"),
    ):
        if detail[key]["rows"]:
            parts += [f"## {title}\n", _md_table(detail[key])]
    parts += ["## Robustness and calibration\n", _md_table(detail["robustness"])]
    parts += ["## Latency\n", _md_table(detail["latency"])]
    parts += ["## TensorRT readiness (benchbox lint)\n", _md_table(detail["lint"])]
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


# -- HTML -------------------------------------------------------------------------------------------------
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
  var verdict = document.querySelector('#verdict .word');
  document.body.setAttribute('data-verdict', verdict ? verdict.textContent : '');
});
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.warn { color: #a04000; }
.small { font-size: 12px; color: #555; }
.verdict { border: 4px solid; border-radius: 8px; padding: 0.5em 1.5em; margin: 1em 0 2em; }
.verdict .word { font-size: 32px; font-weight: bold; margin: 0.2em 0; }
tr.fail td.status { color: #cf222e; font-weight: bold; }
tr.pass td.status { color: #1a7f37; }
tr.undecided td.status { color: #9a6700; font-weight: bold; }
tr.skipped td, tr.info td { color: #666; }
td.sig { font-weight: bold; }
figure.plot { display: inline-block; margin: 1em; vertical-align: top; }
figure.plot svg { max-width: 100%; height: auto; }
"""


def render_html(data: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=_fmt,
        delta=delta_text,
        pval=_pval,
        cost_label=cost_row_label,
        cost_n=_cost_n,
        gate_limit=_gate_limit,
    )
    environment = json.dumps(data["environment"], indent=2) if data["environment"] else "not recorded"
    return env.get_template("report.html.j2").render(
        verdict=data["verdict"],
        gates=data["verdict"].gates,
        cost=data["cost"],
        detail=data["detail"],
        tables=tables(data),
        warnings=data["warnings"],
        plots=data["plots"],
        environment=environment,
        css=CSS,
        self_check=SELF_CHECK,
    )
