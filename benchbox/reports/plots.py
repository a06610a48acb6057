"""Report plots as inline SVG (matplotlib, headless): accuracy vs latency with its Pareto front, CE per
corruption by precision, ImageNet-O confidence histograms, reliability diagrams."""

from __future__ import annotations

import io
import re

import numpy as np

from benchbox.records import Record
from benchbox.reports.tables import column_key


def _figure(width: float = 6.4, height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    text = re.sub(r"<metadata>.*?</metadata>", "", buffer.getvalue(), flags=re.S)  # RDF namespaces only
    return text[text.index("<svg") :]


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated by another (lower latency and higher accuracy), sorted by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def accuracy_vs_latency(records: list[Record]) -> tuple[str, str] | None:
    """(title, svg): val top-1 against p50 latency, or on generated images top-1 agreement with fp32 instead."""
    real = [
        r
        for r in records
        if r.metric == "top1"
        and r.cell.testset == "val"
        and r.cell.variant is None
        and r.value is not None
        and "generated" not in r.flags
    ]
    agreement = [
        r
        for r in records
        if r.metric == "agreement_top1"
        and r.cell.testset == "val"
        and r.value is not None
        and r.reference == f"{r.cell.engine}/fp32"
    ]
    if real:
        score = {column_key(r): r.value for r in real}
        ylabel, title = "val top-1 (%)", "Accuracy vs latency"
    elif agreement:
        score = {column_key(r): r.value for r in agreement}
        score.update({(m, e, "fp32"): 100.0 for m, e, _ in list(score)})
        ylabel, title = "val top-1 agreement with fp32 (%)", "Agreement vs latency (generated images)"
    else:
        return None
    latency: dict[tuple, tuple[int, float]] = {}
    for r in records:
        if r.metric == "latency_p50_ms" and r.value is not None:
            key = column_key(r)
            if key not in latency or r.batch_size < latency[key][0]:
                latency[key] = (r.batch_size, r.value)
    keys = [k for k in score if k in latency]
    if not keys:
        return None
    points = [(latency[k][1], score[k]) for k in keys]
    fig, ax = _figure()
    for k, (x, y) in zip(keys, points):
        ax.scatter([x], [y], s=40)
        ax.annotate(f"{k[1]}/{k[2]}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    front = pareto_front(points)
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "k--", lw=1, label="Pareto front")
    batch = sorted({latency[k][0] for k in keys})
    ax.set_xlabel(f"p50 latency (ms, batch {','.join(map(str, batch))})")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return title, _svg(fig)


def ce_per_corruption(records: list[Record]) -> str | None:
    ce = [r for r in records if r.metric == "ce" and r.value is not None and "generated" not in r.flags]
    if not ce:
        return None
    corruptions = sorted({r.cell.variant for r in ce})
    series = sorted({(r.cell.engine, r.cell.precision) for r in ce})
    fig, ax = _figure(8.0, 4.0)
    width = 0.8 / len(series)
    for j, (engine, precision) in enumerate(series):
        values = {r.cell.variant: r.value for r in ce if (r.cell.engine, r.cell.precision) == (engine, precision)}
        xs = np.arange(len(corruptions)) + j * width
        ax.bar(xs, [values.get(c, np.nan) for c in corruptions], width, label=f"{engine}/{precision}")
    ax.set_xticks(np.arange(len(corruptions)) + 0.4 - width / 2, corruptions, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("CE (% of AlexNet)")
    ax.set_title("ImageNet-C corruption error by precision")
    ax.legend(fontsize=8)
    return _svg(fig)


def o_confidence_histogram(in_conf: np.ndarray, out_conf: np.ndarray, title: str) -> str:
    """Max softmax over the 200 O classes: val images of those classes vs ImageNet-O images."""
    fig, ax = _figure()
    bins = np.linspace(0, 1, 21)
    ax.hist(in_conf, bins=bins, alpha=0.6, density=True, label=f"in-distribution (val, n={in_conf.size})")
    ax.hist(out_conf, bins=bins, alpha=0.6, density=True, label=f"ImageNet-O (n={out_conf.size})")
    ax.set_xlabel("max softmax over the 200 O classes")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _svg(fig)


def reliability_diagram(series: dict[str, tuple[np.ndarray, np.ndarray]], num_bins: int = 15) -> str:
    """Accuracy per confidence bin (15 equal-width bins, as ECE) for each engine/precision: (confidence, correct)."""
    fig, ax = _figure(5.0, 5.0)
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect calibration")
    edges = np.linspace(0, 1, num_bins + 1)
    for name, (conf, correct) in series.items():
        bins = np.clip(np.floor(conf * num_bins).astype(int), 0, num_bins - 1)
        xs, ys = [], []
        for b in range(num_bins):
            member = bins == b
            if member.any():
                xs.append(conf[member].mean())
                ys.append(correct[member].mean())
        ax.plot(xs, ys, "o-", ms=3, label=name)
    ax.set_xticks(edges[::3])
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram (val)")
    ax.legend(fontsize=8)
    return _svg(fig)
