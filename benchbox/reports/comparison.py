"""The cost table: what each lower precision costs on every set, computed when `report` or `check` runs from the
stored per-sample summaries of the cells that are current then.

For each model (its identity, not its name) x engine x device, the baseline precision's cells are paired with each
other precision's on every set: a pair is formed only when both scored the same images (equal identity digests
per variant: content and label, however the images were read), rows are aligned by content, and every metric
gets Δ with a 95 % interval paired on those images. Plain accuracies use the Bonett-Price paired interval and the
exact McNemar p-value; every other metric a paired cluster bootstrap (images; for C an image with all its
corruptions and severities; for P a video with all its perturbations), `BOOTSTRAP_RESAMPLES` resamples with a
fixed seed, the same resamples for both cells. A result whose artifact file has changed since it was scored is
stale and never compared. Later engines are also compared with the first at the same precision (information).

Long because loading, pairing, aligning and resampling a family of sets is one pipeline best read in one place.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchbox.evaluation.estimates import Clusters, Estimate, SetData
from benchbox.metrics.classification import accuracy
from benchbox.metrics.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    bootstrap_p_value,
    bootstrap_weights,
    mcnemar_exact,
    paired_interval,
    percentile_interval,
)
from benchbox.records import Cell
from benchbox.vocabulary import precision_rank


def _report_rows(testset: str | None) -> tuple[str, ...]:
    """The cost table's rows of a set, in order (TestSet.report); other estimates go to the detail tables."""
    from benchbox.datasets.catalog import TESTSETS

    return TESTSETS[testset].report if testset in TESTSETS else ()


def _set_rank(testset: str | None) -> int:
    from benchbox.datasets.catalog import set_rank

    return set_rank(testset)


BASELINE_KINDS = ("precision", "model")  # rows against the policy's baseline: gated and in the cost table

COLUMNS = (
    "set", "variant", "metric", "engine", "model", "precision", "baseline", "value", "delta", "ci_low", "ci_high",
    "p_value", "n",
)  # fmt: skip


@dataclass
class CostRow:
    """One metric of one set for one lower precision (or a later engine) against its baseline."""

    set: str | None
    variant: str | None
    metric: str
    engine: str
    model: str
    model_id: str | None
    device: str
    precision: str
    baseline: str  # what it is compared with, e.g. "ort/fp32"
    baseline_value: float | None
    value: float | None
    delta: float | None = None  # value - baseline_value
    ci_low: float | None = None  # of delta
    ci_high: float | None = None
    p_value: float | None = None
    n: int | None = None
    value_ci: tuple[float | None, float | None] | None = None  # of value (Wilson or bootstrap)
    baseline_ci: tuple[float | None, float | None] | None = None
    higher_is_better: bool = True
    method: str = ""  # paired-proportion, bootstrap, ratio
    headline: bool = True  # a row of the cost table (False: a per-corruption / per-perturbation detail)
    paired: bool = True
    reason: str = ""  # why it is not paired, or a note
    ratio: float | None = None  # latency, throughput, file size: value / baseline_value
    kind: str = "precision"  # precision (vs the baseline precision), model (vs a baseline model), engine (info)
    generated: bool = False  # scored on generated images: only agreement means something
    batch_size: int | None = None
    set_size: int | None = None
    sequential: bool = False  # scored until decided: n of set_size images, a confidence sequence

    @property
    def n_text(self) -> str:
        """`n`, or `n/N` for a set that stopped once decided."""
        if self.n is None:
            return ""
        return f"{self.n}/{self.set_size}" if self.sequential and self.set_size else str(self.n)

    @property
    def significant(self) -> bool:
        return bool(
            self.paired
            and self.ci_low is not None
            and self.ci_high is not None
            and (self.ci_low > 0 or self.ci_high < 0)
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["significant"] = self.significant
        data["value_ci"] = list(self.value_ci) if self.value_ci else None
        data["baseline_ci"] = list(self.baseline_ci) if self.baseline_ci else None
        return {k: _clean(v) for k, v in data.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if not math.isfinite(value) else value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


@dataclass
class CurrentCells:
    """The latest finished run of every cell on every set variant, without stale ones."""

    cells: dict[tuple, dict[str | None, dict[str, Any]]] = field(default_factory=dict)  # set cell -> variant -> run
    set_runs: dict[tuple, dict[str, Any]] = field(default_factory=dict)  # set cell -> its set-level run
    stale: list[str] = field(default_factory=list)
    stale_runs: set[int] = field(default_factory=set)  # their records are not judged either


def cell_key(run: dict[str, Any]) -> tuple:
    return (run["model"], run.get("model_id"), run["engine"], run["device"], run["precision"], run["testset"])


def _stale_reason(run: dict[str, Any], manifests: dict[str, dict | None]) -> str | None:
    """Why a cell's result no longer describes the artifact it names (its file was replaced), or None."""
    scored = (run.get("info") or {}).get("artifact") or {}
    directory, name, sha = scored.get("directory"), scored.get("file"), scored.get("sha256")
    if not directory or not name or not sha:
        return None
    if directory not in manifests:
        manifests[directory] = _manifest(Path(directory))
    manifest = manifests[directory]
    if manifest is None:
        return None  # the artifact is not here (another machine): the result stands as recorded
    entry = (manifest.get("files") or {}).get(name)
    if entry is None:
        return f"{name} is no longer in the artifact at {directory}"
    if entry.get("sha256") != sha:
        return f"its {name} file was rebuilt since it was scored (re-run eval)"
    return None


def _manifest(directory: Path) -> dict | None:
    import json

    try:
        return json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def current_cells(store) -> CurrentCells:
    """Group the store's latest runs by set cell, dropping (and naming) results whose artifact file changed."""
    found = CurrentCells()
    manifests: dict[str, dict | None] = {}
    for run in store.latest_runs():
        if run["status"] != "done" or not run["testset"]:
            continue
        if run["kind"] == "set":
            found.set_runs[cell_key(run)] = run
            continue
        if run["kind"] != "cell":
            continue
        reason = _stale_reason(run, manifests)
        label = f"{run['model']} {run['engine']}/{run['precision']} {run['testset']}"
        if reason:
            note = f"stale: {label}: {reason}"
            if note not in found.stale:
                found.stale.append(note)
            found.stale_runs.add(run["id"])
            continue
        found.cells.setdefault(cell_key(run), {})[run["variant"]] = run
    return found


class SummaryCache:
    """The most recently loaded prediction files, up to a byte budget: a set's variants are read for its clusters,
    its metrics and its agreement, once per cell (a full ImageNet-C is 2.6 MB per variant and cell)."""

    def __init__(self, store, budget: int = 1 << 30) -> None:
        self.store, self.budget, self.items, self.bytes = store, budget, {}, 0

    def __call__(self, key: str) -> np.ndarray:
        if key in self.items:
            self.items[key] = self.items.pop(key)
            return self.items[key]
        arrays = self.store.load_final(key)
        if arrays is None:
            raise FileNotFoundError(f"predictions of cell {key} are missing from the store")
        summary = arrays["summary"]
        self.items[key] = summary
        self.bytes += summary.nbytes
        while self.bytes > self.budget and len(self.items) > 1:
            self.bytes -= self.items.pop(next(iter(self.items))).nbytes
        return summary


def aligned(base: np.ndarray, other: np.ndarray) -> np.ndarray:
    """`other`'s rows in `base`'s order (matched by content id and label; videos by their first frame), with
    base's sample index and group ids: the pair is resampled by the baseline's images."""
    if "video" in (other.dtype.names or ()):
        return _aligned_frames(base, other)
    same = base.size == other.size and np.array_equal(base["sid"], other["sid"])
    if same and np.array_equal(base["label"], other["label"]):
        if np.array_equal(base["gid"], other["gid"]) and np.array_equal(base["index"], other["index"]):
            return other  # the same images in the same order under the same names: nothing to move
        out = other.copy()
    else:
        b = np.lexsort((base["label"], base["sid"]))
        o = np.lexsort((other["label"], other["sid"]))
        out = np.empty_like(other)
        out[b] = other[o]
    out["gid"], out["index"] = base["gid"], base["index"]
    return out


def _aligned_frames(base: np.ndarray, other: np.ndarray) -> np.ndarray:
    def starts(frames):
        return np.r_[0, np.flatnonzero(frames["video"][1:] != frames["video"][:-1]) + 1, frames.size]

    sb, so = starts(base), starts(other)
    if np.array_equal(base["sid"][sb[:-1]], other["sid"][so[:-1]]) and base.size == other.size:
        out = other.copy()
        out["gid"], out["video"] = base["gid"], base["video"]
        return out
    order_b = np.lexsort((base["label"][sb[:-1]], base["sid"][sb[:-1]]))
    order_o = np.lexsort((other["label"][so[:-1]], other["sid"][so[:-1]]))
    pieces = [None] * len(order_b)
    for ib, io in zip(order_b, order_o):
        piece = other[so[io] : so[io + 1]].copy()
        piece["gid"], piece["video"] = base["gid"][sb[ib]], base["video"][sb[ib]]
        pieces[ib] = piece
    return np.concatenate(pieces) if pieces else other[:0]


@dataclass
class _Side:
    """One cell of a comparison on one set: its runs per variant and (for needed sets) theirs."""

    cell: tuple
    runs: dict[str | None, dict[str, Any]]
    needed: dict[str, dict[str | None, dict[str, Any]]]
    set_run: dict[str, Any] | None


def _label(key: tuple) -> str:
    return f"{key[2]}/{key[4]}"


def _pair_problem(base: _Side, other: _Side, spec) -> str | None:
    """Why two cells on a set cannot be paired (other images, other variants), or None."""
    b, o = base.runs, other.runs
    if set(b) != set(o):
        missing = sorted(str(v) for v in set(b) - set(o))
        extra = sorted(str(v) for v in set(o) - set(b))
        parts = []
        if missing:
            parts.append(
                f"{_label(other.cell)} lacks {len(missing)} variant(s) {_label(base.cell)} has "
                f"(e.g. {', '.join(missing[:3])})"
            )
        if extra:
            parts.append(
                f"{_label(other.cell)} has {len(extra)} variant(s) {_label(base.cell)} lacks "
                f"(e.g. {', '.join(extra[:3])})"
            )
        return "; ".join(parts) + ": re-run both on the same variants"
    for variant, run in b.items():
        if run["samples"] != o[variant]["samples"]:
            where = f"{spec}/{variant}" if variant else spec
            nb, no = (run.get("info") or {}).get("samples"), (o[variant].get("info") or {}).get("samples")
            return (
                f"{_label(base.cell)} and {_label(other.cell)} were scored on other images of {where} "
                f"({nb} and {no} images): re-run both on the same images"
            )
    for name in base.needed:
        if name not in other.needed:
            return f"{_label(other.cell)} lacks {name}, which {spec} needs"
        for variant, run in base.needed[name].items():
            theirs = other.needed[name].get(variant)
            if theirs is None or theirs["samples"] != run["samples"]:
                return f"{_label(base.cell)} and {_label(other.cell)} were scored on other {name} images"
    return None


class Comparison:
    """Builds the cost table of a store. `rows()` computes it (once); nothing here writes."""

    def __init__(
        self,
        store,
        baseline_precision: str = "fp32",
        resamples: int = BOOTSTRAP_RESAMPLES,
        seed: int = BOOTSTRAP_SEED,
        baseline_model: str | None = None,
    ) -> None:
        """`baseline_model` (NAME or NAME@ID-PREFIX): compare every other model with it, engine by engine and
        precision by precision, instead of each model's precisions with its baseline precision."""
        self.store = store
        self.baseline_precision = baseline_precision
        self.baseline_model = baseline_model
        self.resamples = resamples
        self.seed = seed
        self.load = SummaryCache(store)
        self.problems: list[str] = []
        self._rows: list[CostRow] | None = None

    def rows(self) -> list[CostRow]:
        if self._rows is None:
            current = current_cells(self.store)
            self.problems += current.stale
            self._rows = self._compare(current)
        return self._rows

    # -- grouping --------------------------------------------------------------------------------
    def _compare(self, current: CurrentCells) -> list[CostRow]:
        from benchbox.datasets.catalog import TESTSETS

        rows: list[CostRow] = []
        groups: dict[tuple, dict[str, tuple]] = {}
        keys = list(current.cells)
        keys += [k for k in current.set_runs if k[5] in TESTSETS and TESTSETS[k[5]].scored_from_needed]
        keys = [k for k in keys if k[5] in TESTSETS]
        if self.baseline_model is not None:
            return self._compare_models(current, keys)
        for key in keys:
            model, model_id, engine, device, precision, testset = key
            groups.setdefault((model, model_id, device, testset), {})[f"{engine}/{precision}"] = key
        for (model, _, _, testset), members in sorted(groups.items(), key=_group_order):
            spec = TESTSETS[testset]
            sides = {name: self._side(current, key, spec) for name, key in members.items()}
            for base_name, other_names, kind in self._pairings(members):
                try:
                    rows += self._compare_set(spec, sides[base_name], [sides[n] for n in other_names], kind)
                except (OSError, KeyError, ValueError) as exc:
                    self.problems.append(f"{model} {testset}: the comparison could not be computed ({exc})")
        return rows

    def _compare_models(self, current: CurrentCells, keys: list[tuple]) -> list[CostRow]:
        """Every other model against the baseline model, on each set at each engine, precision and device."""
        from benchbox.datasets.catalog import TESTSETS

        base_identity = self._baseline_identity(keys)
        if base_identity is None:
            return []
        groups: dict[tuple, list[tuple]] = {}
        for key in keys:
            groups.setdefault((key[3], key[5], key[2], key[4]), []).append(key)
        rows: list[CostRow] = []
        for (_, testset, _, _), members in sorted(groups.items(), key=lambda g: (_set_rank(g[0][1]), g[0])):
            base = [k for k in members if k[:2] == base_identity]
            others = sorted(k for k in members if k[:2] != base_identity)
            if not base or not others:
                continue
            spec = TESTSETS[testset]
            try:
                sides = [self._side(current, k, spec) for k in others]
                rows += self._compare_set(spec, self._side(current, base[0], spec), sides, "model")
            except (OSError, KeyError, ValueError) as exc:
                self.problems.append(f"{testset}: the comparison could not be computed ({exc})")
        return rows

    def _baseline_identity(self, keys: list[tuple]) -> tuple | None:
        from benchbox.errors import UserError

        name, _, prefix = str(self.baseline_model).partition("@")
        found = sorted({k[:2] for k in keys if k[0] == name and str(k[1] or "").startswith(prefix)})
        if not found:
            known = sorted({k[0] for k in keys})
            self.problems.append(
                f"no results of baseline model {self.baseline_model!r} in the store (models: {', '.join(known)})"
            )
            return None
        if len(found) > 1:
            ids = ", ".join(f"{name}@{str(i)[:12]}" for _, i in found)
            raise UserError(
                f"Two models are named {name!r} in the store: {ids}.", "Name the baseline as NAME@ID-PREFIX."
            )
        return found[0]

    def _pairings(self, members: dict[str, tuple]) -> list[tuple[str, list[str], str]]:
        """(baseline, others, kind): lower precisions against the baseline precision on each engine, then later
        engines against the first at each precision."""
        out = []
        engines = sorted({k[2] for k in members.values()}, key=engine_rank)
        for engine in engines:
            base = f"{engine}/{self.baseline_precision}"
            others = sorted(
                (n for n, k in members.items() if k[2] == engine and n != base),
                key=lambda n: precision_rank(n.split("/")[1]),
            )
            if base in members and others:
                out.append((base, others, "precision"))
        if len(engines) > 1:
            for precision in sorted({k[4] for k in members.values()}, key=precision_rank):
                first = next((f"{e}/{precision}" for e in engines if f"{e}/{precision}" in members), None)
                later = [
                    f"{e}/{precision}" for e in engines if f"{e}/{precision}" in members and f"{e}/{precision}" != first
                ]
                if first and later:
                    out.append((first, later, "engine"))
        return out

    def _side(self, current: CurrentCells, key: tuple, spec) -> _Side:
        needed = {}
        for name in spec.needs:
            other = (*key[:5], name)
            if other in current.cells:
                needed[name] = current.cells[other]
        return _Side(key, current.cells.get(key, {}), needed, current.set_runs.get(key))

    # -- one set ---------------------------------------------------------------------------------
    def _set_data(self, side: _Side, base: _Side | None) -> SetData:
        def loader(run, base_run):
            if base_run is None:
                return lambda: self.load(run["cell_key"])
            return lambda: aligned(self.load(base_run["cell_key"]), self.load(run["cell_key"]))

        def loaders(runs, base_runs):
            return {v: loader(r, base_runs.get(v) if base_runs is not None else None) for v, r in runs.items()}

        cell = Cell(side.cell[0], side.cell[2], side.cell[3], side.cell[4], side.cell[5], None, side.cell[1])
        needed = {
            name: SetData(cell.at(None), loaders(runs, base.needed.get(name) if base else None))
            for name, runs in side.needed.items()
        }
        extra = dict((side.set_run or {}).get("info") or {})
        data = SetData(cell, loaders(side.runs, base.runs if base else None), needed, extra)
        if _sequential_info(base or side) and side.runs:
            _restrict_needed(data)
        return data

    def _clusters(self, data: SetData) -> Clusters:
        gids = [data.summary(v)["gid"] for v in data.variants]
        for needed in data.needed.values():
            gids += [needed.summary(v)["gid"] for v in needed.variants]
        return Clusters(np.concatenate(gids) if gids else np.zeros(0, np.uint64))

    def _compare_set(self, spec, base: _Side, others: list[_Side], kind: str) -> list[CostRow]:
        from benchbox.evaluation.scoring import scorer_for

        scorer = scorer_for(spec)
        paired, rows = [], []
        for other in others:
            problem = _pair_problem(base, other, spec.name)
            if problem:
                rows += self._unpaired(spec, base, other, problem, kind)
            else:
                paired.append(other)
        if not paired:
            return rows
        base_data = self._set_data(base, None)
        clusters = self._clusters(base_data)
        base_estimates = {(e.variant, e.metric): e for e in scorer.estimates(base_data, clusters)}
        other_estimates = [
            {(e.variant, e.metric): e for e in scorer.estimates(self._set_data(o, base), clusters)} for o in paired
        ]
        agreement = [self._agreement(spec, scorer, base_data, self._set_data(o, base), clusters) for o in paired]
        resampled = self._resample(clusters, base_estimates, other_estimates, [a[0] if a else None for a in agreement])
        generated = _generated(base)
        sequence = _sequence(base, base_data, clusters)
        for other, estimates, agree, draws in zip(paired, other_estimates, agreement, resampled):
            for key, estimate in estimates.items():
                if key in base_estimates:
                    row = self._row(spec, base, other, base_estimates[key], estimate, draws, kind)
                    row.generated = generated
                    if sequence is not None:
                        sequence.apply(row, base_estimates[key], estimate)
                    rows.append(row)
            for estimate in agree:
                row = self._agreement_row(spec, base, other, estimate, draws if estimate.variant is None else {}, kind)
                if sequence is not None:
                    sequence.apply_agreement(row, estimate)
                rows.append(row)
        return rows

    def _agreement(self, spec, scorer, base: SetData, other: SetData, clusters: Clusters) -> list[Estimate]:
        """Same top-1 as the baseline (masked for A/R), per variant and pooled over the set's variants (variant
        None: what the gate reads), as Estimates."""
        from benchbox.evaluation.estimates import Sums, proportion
        from benchbox.metrics.classification import agreement_top1

        out, hits, positions = [], [], []
        for variant in base.variants:
            b, o = base.summary(variant), other.summary(variant)
            _, top_b, _ = scorer.comparable(b)
            _, top_o, _ = scorer.comparable(o)
            if top_b.shape != top_o.shape:
                return []
            agree = agreement_top1(top_b, top_o)
            gids = b["gid"] if spec.class_subset is None else b["gid"][np.isin(b["label"], _subset(spec))]
            position = clusters.index(gids)
            hits.append(agree)
            positions.append(position)
            if variant is not None:
                out.append(proportion("agreement_top1", variant, agree, Sums(clusters, position)))
        if not hits:
            return []
        sums = Sums(clusters, np.concatenate(positions))
        return [proportion("agreement_top1", None, np.concatenate(hits), sums), *out]

    # -- resampling ------------------------------------------------------------------------------
    def _resample(self, clusters: Clusters, base: dict, others: list[dict], agreement: list) -> list[dict]:
        """Per other cell: {key: (base draws, other draws)} of every bootstrap metric (and agreement when its
        clusters hold several samples), from one stream of weights shared by every cell of the set."""
        wanted = [k for k, e in base.items() if e.hits is None]
        pooled = [a is not None and a.n != len(clusters) for a in agreement]
        out: list[dict] = [{} for _ in others]
        if (not wanted and not any(pooled)) or len(clusters) == 0 or self.resamples <= 0:
            return out
        base_draws: dict[tuple, list] = {k: [] for k in wanted}
        other_draws: list[dict[tuple, list]] = [{k: [] for k in wanted if k in o} for o in others]
        agree_draws: list[list] = [[] for _ in others]
        for weights in bootstrap_weights(len(clusters), self.resamples, self.seed):
            for key in wanted:
                base_draws[key].append(np.asarray(base[key].value(weights), dtype=np.float64))
            for i, estimates in enumerate(others):
                for key in other_draws[i]:
                    other_draws[i][key].append(np.asarray(estimates[key].value(weights), dtype=np.float64))
                if pooled[i]:
                    agree_draws[i].append(np.asarray(agreement[i].value(weights), dtype=np.float64))
        for i in range(len(others)):
            out[i] = {k: (np.concatenate(base_draws[k]), np.concatenate(v)) for k, v in other_draws[i].items()}
            if pooled[i]:
                out[i][("agreement", None)] = (None, np.concatenate(agree_draws[i]))
                out[i]["_k"] = clusters.ids
        return out

    # -- rows ------------------------------------------------------------------------------------
    def _identity(self, other: _Side, base: _Side, kind: str) -> dict[str, Any]:
        model, model_id, engine, device, precision, _ = other.cell
        return {
            "engine": engine,
            "model": model,
            "model_id": model_id,
            "device": device,
            "precision": precision,
            "baseline": f"{base.cell[0]} {_label(base.cell)}" if kind == "model" else _label(base.cell),
            "kind": kind,
        }

    def _row(self, spec, base: _Side, other: _Side, b: Estimate, o: Estimate, draws: dict, kind: str) -> CostRow:
        headline = b.metric in spec.report and b.variant in (None, *_headline_variants(spec, b))
        bv, ov = _number(b.value()), _number(o.value())
        row = CostRow(
            spec.name,
            b.variant,
            b.metric,
            **self._identity(other, base, kind),
            baseline_value=bv,
            value=ov,
            n=o.n,
            higher_is_better=b.higher_is_better,
            headline=headline,
            set_size=spec.official_count,
        )
        if bv is not None and ov is not None:
            row.delta = ov - bv
        if b.hits is not None and o.hits is not None and b.hits.shape == o.hits.shape:
            n10 = int(np.sum(b.hits & ~o.hits))
            n01 = int(np.sum(~b.hits & o.hits))
            lo, hi = paired_interval(n10, n01, int(b.hits.size))
            row.ci_low, row.ci_high = 100.0 * lo, 100.0 * hi
            row.p_value = mcnemar_exact(n10, n01)
            row.method = "paired-proportion"
            row.value_ci = _wilson(o.hits)
            row.baseline_ci = _wilson(b.hits)
        elif (b.variant, b.metric) in draws:
            base_draws, other_draws = draws[(b.variant, b.metric)]
            diff = other_draws - base_draws
            row.ci_low, row.ci_high = percentile_interval(diff)
            row.p_value = bootstrap_p_value(diff)
            row.value_ci = percentile_interval(other_draws)
            row.baseline_ci = percentile_interval(base_draws)
            row.method = f"bootstrap ({self.resamples} resamples by {_unit(spec)})"
        return row

    def _agreement_row(self, spec, base: _Side, other: _Side, agree: Estimate, draws: dict, kind: str) -> CostRow:
        value = _number(agree.value())
        row = CostRow(
            spec.name,
            agree.variant,
            "agreement_top1",
            **self._identity(other, base, kind),
            baseline_value=100.0,
            value=value,
            n=agree.n,
            headline=False,
            set_size=spec.official_count,
        )
        if ("agreement", None) in draws:
            row.value_ci = clustered_wilson(agree.hits, draws[("agreement", None)][1], n_clusters=len(draws["_k"]))
            row.method = f"Wilson, effective n from {self.resamples} bootstrap resamples by {_unit(spec)}"
        else:
            row.value_ci = _wilson(agree.hits)
            row.method = "wilson"
        return row

    def _unpaired(self, spec, base: _Side, other: _Side, problem: str, kind: str) -> list[CostRow]:
        """Rows that say why there is no Δ: the gates over them cannot decide."""
        metrics = spec.report[:1] or (spec.headline,)
        return [
            CostRow(
                spec.name,
                None,
                metric,
                **self._identity(other, base, kind),
                baseline_value=None,
                value=None,
                paired=False,
                reason=problem,
                set_size=spec.official_count,
            )
            for metric in (*metrics, "agreement_top1")
        ]


class _Sequence:
    """A set scored sequentially (--until-decided): its rows get the confidence sequence of the stopping rule
    instead of a fixed-n interval, at the share of alpha the run gave each gate, over the clusters in the order
    they were visited."""

    def __init__(self, info: dict[str, Any], order: np.ndarray, clusters: int) -> None:
        self.info, self.order, self.clusters = info, order, clusters
        self.alpha = float(info["alpha_gate"])
        self.population = int(info["N"])

    def _method(self) -> str:
        where = f"{self.clusters} of {self.population}"
        return f"confidence sequence (betting, alpha {self.alpha:.2g}, {where})"

    def apply(self, row: CostRow, base: Estimate, other: Estimate) -> None:
        from benchbox.evaluation.estimates import contributions
        from benchbox.metrics.sequential import difference_sequence

        row.set_size, row.sequential, row.n = self.population, True, self.clusters
        if row.delta is None or base.bounds is None:
            row.ci_low = row.ci_high = None
            return
        xb, xo = contributions(base, self.clusters), contributions(other, self.clusters)
        if xb is None or xo is None:
            row.ci_low = row.ci_high = None
            row.reason = "not a mean over images: no confidence sequence (the set must run to its end)"
            return
        lo, hi = base.bounds
        row.ci_low, row.ci_high = difference_sequence((xo - xb)[self.order], hi - lo, self.alpha, self.population)
        row.p_value = None
        row.method = self._method()

    def apply_agreement(self, row: CostRow, agree: Estimate) -> None:
        from benchbox.evaluation.estimates import contributions
        from benchbox.metrics.sequential import range_sequence

        row.set_size, row.sequential, row.n = self.population, True, self.clusters
        x = contributions(agree, self.clusters)
        if x is None:
            row.value_ci = None
            return
        row.value_ci = range_sequence(x[self.order], 0.0, 100.0, self.alpha, self.population)
        row.method = self._method()


def _sequential_info(side: _Side) -> dict[str, Any] | None:
    return next((((r.get("info") or {}).get("sequential")) for r in side.runs.values()), None)


def _restrict_needed(data: SetData) -> None:
    """A sequentially scored set reads its needed sets (clean val for relative mCE) on its own images only: the
    images it visited, so every image's share of the metric is its own and the set's figure stays a mean over them."""
    own: list[np.ndarray] = []

    def gids() -> np.ndarray:
        if not own:
            own.append(np.unique(np.concatenate([data.summary(v)["gid"] for v in data.variants])))
        return own[0]

    for needed in data.needed.values():
        for variant, load in list(needed.loaders.items()):

            def restricted(load=load):
                summary = load()
                return summary[np.isin(summary["gid"], gids())]

            needed.loaders[variant] = restricted


def _sequence(side: _Side, data: SetData, clusters: Clusters) -> _Sequence | None:
    """The sequential stopping record of a set's baseline cell, with its clusters' visit order; None for a
    full pass."""
    info = _sequential_info(side)
    if not info or len(clusters) == 0:
        return None
    first = np.full(len(clusters), np.iinfo(np.int64).max, dtype=np.int64)
    for variant in data.variants:
        summary = data.summary(variant)
        field_name = "video" if "video" in (summary.dtype.names or ()) else "index"
        np.minimum.at(first, clusters.index(summary["gid"]), summary[field_name].astype(np.int64))
    return _Sequence(info, np.argsort(first, kind="stable"), len(clusters))


def _generated(side: _Side) -> bool:
    """Whether a set was scored on generated images (eval records the data's flags in each cell's run info)."""
    runs = [*side.runs.values(), *(r for runs in side.needed.values() for r in runs.values())]
    return any("generated" in ((run.get("info") or {}).get("flags") or ()) for run in runs)


def _group_order(item) -> tuple:
    (model, model_id, device, testset), _ = item
    return (model, model_id or "", device, _set_rank(testset))


def _headline_variants(spec, estimate: Estimate) -> tuple:
    """V2's variants are rows of the cost table (each variant present); other sets' variants are detail."""
    return (estimate.variant,) if spec.name == "v2" else ()


def _unit(spec) -> str:
    return {"c": "image", "p": "video"}.get(spec.name, "image")


def _subset(spec) -> np.ndarray:
    from benchbox.datasets.catalog import subset_indices

    return np.asarray(subset_indices(spec.class_subset))


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def clustered_wilson(hits: np.ndarray, draws: np.ndarray, n_clusters: int) -> tuple[float, float]:
    """A percentage pooled over samples that come in clusters (an image's 95 corruptions, a video's frames): the
    Wilson interval at the effective sample size p(1 - p) / Var, the variance from the cluster bootstrap (Korn and
    Graubard's construction, capped at the sample count). At p = 0 or 1 the bootstrap has no variance to go on,
    so the number of clusters is used: as if every cluster were one trial (the cautious end)."""
    from benchbox.metrics.stats import wilson_interval

    n, p = int(hits.size), float(np.mean(hits)) if hits.size else float("nan")
    variance = float(np.var(draws / 100.0)) if draws.size else 0.0
    if 0.0 < p < 1.0 and variance > 0:
        effective = min(n, max(1.0, p * (1.0 - p) / variance))
    else:
        effective = float(n_clusters)
    lo, hi = wilson_interval(p * effective, effective) if effective > 0 else (float("nan"), float("nan"))
    return (100.0 * lo, 100.0 * hi)


def _wilson(hits: np.ndarray | None) -> tuple[float, float] | None:
    if hits is None or not hits.size:
        return None
    lo, hi = accuracy(hits)["ci95"]
    return (lo, hi)


def deployment_rows(records, baseline_precision: str = "fp32") -> list[CostRow]:
    """p50 latency, throughput and file size of each precision against the baseline's, where benched."""
    rows: list[CostRow] = []
    latency: dict[tuple, dict[str, Any]] = {}
    for r in records:
        if r.metric in ("latency_p50_ms", "throughput_ips") and r.batch_size and r.value is not None:
            key = (r.cell.model, r.cell.model_id, r.cell.engine, r.cell.device, r.batch_size, r.mode, r.metric)
            latency.setdefault(key, {})[r.cell.precision] = r
    for (model, model_id, engine, device, batch, mode, metric), by_precision in sorted(
        latency.items(), key=lambda kv: tuple(str(x) for x in kv[0])
    ):
        base = by_precision.get(baseline_precision)
        if base is None:
            continue
        for precision, r in sorted(by_precision.items(), key=lambda kv: precision_rank(kv[0])):
            if precision == baseline_precision:
                continue
            rows.append(
                CostRow(
                    None,
                    mode,
                    metric,
                    engine,
                    model,
                    model_id,
                    device,
                    precision,
                    f"{engine}/{baseline_precision}",
                    base.value,
                    r.value,
                    r.value - base.value,
                    ratio=r.value / base.value if base.value else None,
                    method="ratio",
                    batch_size=batch,
                    higher_is_better=metric == "throughput_ips",
                )
            )
    return rows


def file_size_rows(artifacts: dict[str, dict], baseline_precision: str = "fp32") -> list[CostRow]:
    """Each precision file's size against the baseline's, for the artifacts the records name."""
    rows = []
    for (model, model_id), files in artifacts.items():
        base = files.get(baseline_precision)
        if not base:
            continue
        for precision, size in files.items():
            if precision == baseline_precision or not size:
                continue
            rows.append(
                CostRow(
                    None,
                    None,
                    "file_mb",
                    "export",
                    model,
                    model_id,
                    "—",
                    precision,
                    f"file/{baseline_precision}",
                    base / 1e6,
                    size / 1e6,
                    (size - base) / 1e6,
                    ratio=size / base,
                    method="ratio",
                    higher_is_better=False,
                )
            )
    return rows


def sort_key(row: CostRow) -> tuple:
    return (
        row.model,
        row.model_id or "",
        row.engine,
        row.device,
        _set_rank(row.set),
        row.variant or "",
        _metric_rank(row),
        precision_rank(row.precision),
        row.kind,
    )


def _metric_rank(row: CostRow) -> int:
    order = _report_rows(row.set)
    return order.index(row.metric) if row.metric in order else len(order)


def engine_rank(engine: str) -> tuple[int, str]:
    """The reference engine first: PyTorch (the source model), then ONNX Runtime, then TensorRT."""
    from benchbox.vocabulary import Engine

    order = Engine.values()
    return (order.index(engine) if engine in order else len(order), engine)
