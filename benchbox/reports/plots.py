"""Report plots as inline SVG (matplotlib, headless): a forest plot per set (Δ with its 95 % interval per lower
precision, the zero line and the policy's limit), accuracy vs latency with error bars and the Pareto front, CE per
corruption by precision, ImageNet-O confidence histograms, reliability diagrams. Every precision has one colour
in every plot (benchbox.vocabulary.Precision.colour); axes are labelled with their units."""

from __future__ import annotations

import io
import re

import numpy as np

from benchbox.records import Record
from benchbox.reports.tables import METRIC_LABELS, column_key, set_title
from benchbox.vocabulary import precision_colour, precision_rank

FOREST_GATES = {  # metric -> (gate, direction): where the policy's limit line goes on the Δ axis
    "top1": ("max_top1_drop", "drop"),
    "real_top1": ("max_top1_drop", "drop"),
    "mce": ("max_mce_increase", "increase"),
    "relative_mce": ("max_relative_mce_increase", "increase"),
    "mfr": ("max_mfr_increase", "increase"),
    "aupr": ("max_aupr_drop", "drop"),
    "ece": ("max_ece_increase", "increase"),
}


def _figure(width: float = 6.4, height: float = 4.0, rows: int | None = None):
    """A figure and its axes (`rows`: a column of that many axes, returned as a list)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if rows is None:
        return plt.subplots(figsize=(width, height))
    fig, axes = plt.subplots(rows, 1, figsize=(width, height), squeeze=False)
    return fig, list(axes[:, 0])


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


def forest_plots(cost_rows, policy) -> list[tuple[str, str]]:
    """(title, svg) per model x engine x set: each headline metric's Δ [95 % CI] per lower precision."""
    groups: dict[tuple, list] = {}
    for row in cost_rows:
        usable = row.paired and row.delta is not None and not row.generated
        if row.kind in ("precision", "model") and row.headline and row.set and usable:
            groups.setdefault((row.model, row.engine, row.device, row.set), []).append(row)
    out = []
    for (model, engine, device, testset), rows in groups.items():
        metrics = list(dict.fromkeys(r.metric for r in rows))
        fig, axes = _figure(6.4, 0.9 + 1.1 * len(metrics), rows=len(metrics))
        for ax, metric in zip(axes, metrics):
            mine = sorted(
                (r for r in rows if r.metric == metric), key=lambda r: (precision_rank(r.precision), r.variant or "")
            )
            for y, r in enumerate(mine):
                lo = r.delta - (r.ci_low if r.ci_low is not None else r.delta)
                hi = (r.ci_high if r.ci_high is not None else r.delta) - r.delta
                ax.errorbar(
                    [r.delta],
                    [y],
                    xerr=[[max(lo, 0)], [max(hi, 0)]],
                    fmt="o",
                    capsize=4,
                    color=precision_colour(r.precision),
                    label=r.precision,
                )
            ax.set_yticks(range(len(mine)), [r.precision + (f" {r.variant}" if r.variant else "") for r in mine])
            ax.axvline(0.0, color="k", lw=1)
            gate = FOREST_GATES.get(metric)
            limit = policy.limit(gate[0], testset) if gate else None
            if isinstance(limit, (int, float)):
                ax.axvline(
                    -limit if gate[1] == "drop" else limit,
                    color="#cf222e",
                    ls="--",
                    lw=1,
                    label=f"limit ({gate[0]} = {limit})",
                )
                ax.legend(fontsize=7, loc="best")
            ax.set_ylim(-0.7, len(mine) - 0.3)
            unit = "points" if METRIC_LABELS.get(metric, "").endswith("%") else ""
            ax.set_xlabel(f"Δ {METRIC_LABELS.get(metric, metric)} vs {rows[0].baseline} ({unit or 'units'}, 95 % CI)")
            ax.grid(alpha=0.3, axis="x")
        title = f"{set_title(testset)}: what each precision costs ({model}, {engine} on {device})"
        axes[0].set_title(title, fontsize=9)
        out.append((title, _svg(fig)))
    return out


def accuracy_vs_latency(records: list[Record], cost_rows=()) -> tuple[str, str] | None:
    """(title, svg): val top-1 (with its 95 % interval) against p50 latency, or on generated images the top-1
    agreement with fp32 instead; the Pareto front joins the cells no other beats on both."""
    real = [
        r
        for r in records
        if r.metric == "top1"
        and r.cell.testset == "val"
        and r.cell.variant is None
        and r.value is not None
        and "generated" not in r.flags
    ]
    if real:
        score = {column_key(r): (r.value, r.ci95) for r in real}
        ylabel, title = "val top-1 (%, 95 % CI)", "Accuracy vs latency"
    else:
        agreement = [r for r in cost_rows if r.metric == "agreement_top1" and r.set == "val" and r.kind == "precision"]
        if not agreement:
            return None
        score = {(r.model, r.engine, r.precision): (r.value, r.value_ci) for r in agreement}
        score.update({(m, e, "fp32"): (100.0, None) for m, e, _ in list(score)})
        ylabel, title = "val top-1 agreement with fp32 (%)", "Agreement vs latency (generated images)"
    latency: dict[tuple, tuple[int, float]] = {}
    for r in records:
        if r.metric == "latency_p50_ms" and r.value is not None:
            key = column_key(r)
            if key not in latency or r.batch_size < latency[key][0]:
                latency[key] = (r.batch_size, r.value)
    keys = [k for k in score if k in latency]
    if not keys:
        return None
    points = [(latency[k][1], score[k][0]) for k in keys]
    fig, ax = _figure()
    for k, (x, y) in zip(keys, points):
        ci = score[k][1]
        yerr = [[max(y - ci[0], 0.0)], [max(ci[1] - y, 0.0)]] if ci and ci[0] is not None else None
        ax.errorbar([x], [y], yerr=yerr, fmt="o", capsize=3, color=precision_colour(k[2]), ms=6)
        ax.annotate(f"{k[1]}/{k[2]}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    front = pareto_front(points)
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "k--", lw=1, label="Pareto front")
    for precision in sorted({k[2] for k in keys}, key=precision_rank):
        ax.plot([], [], "o", color=precision_colour(precision), label=precision)
    batch = sorted({latency[k][0] for k in keys})
    ax.set_xlabel(f"p50 latency (ms per batch of {','.join(map(str, batch))})")
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
    series = sorted(series, key=lambda s: (s[0], precision_rank(s[1])))
    for j, (engine, precision) in enumerate(series):
        values = {r.cell.variant: r.value for r in ce if (r.cell.engine, r.cell.precision) == (engine, precision)}
        xs = np.arange(len(corruptions)) + j * width
        hatch = "//" if j >= len({p for _, p in series}) else None  # a second engine: same colours, hatched
        ax.bar(
            xs,
            [values.get(c, np.nan) for c in corruptions],
            width,
            label=f"{engine}/{precision}",
            color=precision_colour(precision),
            hatch=hatch,
            edgecolor="white",
        )
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


def reliability_diagram(series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], num_bins: int = 15) -> str:
    """Accuracy per confidence bin (15 equal-width bins, as ECE) per (engine, precision): one small panel each,
    sharing axes, so three precisions stay readable; the bars show how many images fell in each bin."""
    panels = list(series.items())
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.3 * rows), squeeze=False, sharex=True, sharey=True)
    edges = np.linspace(0, 1, num_bins + 1)
    for ax, ((engine, precision), (conf, correct)) in zip(axes.ravel(), panels):
        bins = np.clip(np.floor(conf * num_bins).astype(int), 0, num_bins - 1)
        xs, ys, counts = [], [], []
        for b in range(num_bins):
            member = bins == b
            if member.any():
                xs.append(conf[member].mean())
                ys.append(correct[member].mean())
                counts.append(int(member.sum()))
        colour = precision_colour(precision)
        ax.bar(
            edges[:-1],
            np.bincount(bins, minlength=num_bins) / max(conf.size, 1),
            width=1 / num_bins,
            align="edge",
            color=colour,
            alpha=0.15,
            label="share of images",
        )
        ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect calibration")
        ax.plot(xs, ys, "o-", ms=3, color=colour, label=f"{engine}/{precision}")
        ax.set_title(f"{engine}/{precision} (n={conf.size})", fontsize=9)
        ax.set_xticks(edges[::3])
        ax.set_xlabel("confidence (max softmax)")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=6, loc="upper left")
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle("Reliability diagram (val, 15 equal-width bins)", fontsize=10)
    return _svg(fig)
