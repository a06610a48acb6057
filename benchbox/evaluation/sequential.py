"""`--until-decided`: score a set only until every gate of the policy that concerns it is decided.

Every cell of the run advances through the set's visit order (benchbox.evaluation.planning.visit_order) in rounds
that grow by `GROWTH`; after each round the gates concerning the set are decided on the prefix exactly as `check`
decides them (the same cost-table code, reports.comparison), with the anytime-valid confidence sequences of
benchbox.metrics.sequential in place of fixed-n intervals. The set stops at the first round where every such gate
is pass or fail (or skipped), or when it is exhausted (then its records are a full pass's).

Error control: the policy's `alpha` is split equally over the sequential sets of the run and, within a set,
equally over its gate x subject pairs found in the first round (Bonferroni): the chance that any sequential gate
of the run decides wrongly is at most alpha. Gates whose metric is not a mean over images (ECE, AUPR) have no
confidence sequence: a set gated by one runs to its end, and that gate keeps its fixed-n interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchbox.vocabulary import GateStatus

GROWTH = 1.15  # each round scores 15 % more of the set than the last (a check reads the whole prefix)
FIRST_IMAGES = 64  # the first round: images of each variant (at least one batch)
FIRST_VIDEOS = 16
RULE = "every gate concerning the set decided by its empirical-Bernstein confidence sequence"


@dataclass
class Stop:
    """Where a sequential set stopped: `n` of `population` samples per variant (clusters for C and P)."""

    n: int
    population: int
    alpha_gate: float
    seed: int
    gates: list[dict[str, Any]]

    def info(self) -> dict[str, Any]:
        """What records and run info carry (report and check recompute the same sequences from it)."""
        return {
            "n": self.n,
            "N": self.population,
            "seed": self.seed,
            "rule": RULE,
            "alpha_gate": self.alpha_gate,
        }


def round_sizes(total: int, batch_size: int, videos: bool):
    """Prefix sizes of the rounds: a first round, then GROWTH times larger (whole batches), up to `total`."""
    n = min(total, max(FIRST_VIDEOS if videos else FIRST_IMAGES, 1 if videos else batch_size))
    while True:
        yield n
        if n >= total:
            return
        step = max(1 if videos else batch_size, math.ceil(n * (GROWTH - 1.0)))
        if not videos:
            step = math.ceil(step / batch_size) * batch_size
        n = min(total, n + step)


def prefix_run(key: str, identity: str, n: int, flags: tuple[str, ...], sequential: dict | None) -> dict[str, Any]:
    """A run as the comparison reads it from the store, for a prefix held in memory."""
    info: dict[str, Any] = {"samples": n, "flags": list(flags)}
    if sequential is not None:
        info["sequential"] = sequential
    return {"cell_key": key, "samples": identity, "info": info}


def decide_prefix(spec, members: dict[tuple, dict], memory: dict[str, np.ndarray], policy, alpha_gate: float):
    """The gates concerning `spec` on in-memory prefixes: `members` maps each cell key (model, model_id, engine,
    device, precision, set) to {"runs": {variant: run}, "needed": {set: {variant: run}}, "extra": {...}}; `memory`
    holds each run's summary by its cell_key. Returns the list of Gates (reports.verdict)."""
    from benchbox.reports.comparison import Comparison, _Side
    from benchbox.reports.policy import GATES
    from benchbox.reports.verdict import _comparison_gates

    comparison = Comparison(None, policy.baseline_precision, resamples=0)
    comparison.load = memory.__getitem__
    for member in members.values():
        for run in member["runs"].values():
            run["info"]["sequential"]["alpha_gate"] = alpha_gate
    sides = {
        f"{key[2]}/{key[4]}": _Side(key, m["runs"], m["needed"], {"info": m["extra"]}) for key, m in members.items()
    }
    rows = []
    for base, others, kind in comparison._pairings({name: side.cell for name, side in sides.items()}):
        if kind == "precision":
            rows += comparison._compare_set(spec, sides[base], [sides[o] for o in others], kind)
    gates = []
    for name, gate in GATES.items():
        if gate.metric is not None and policy.has(name) and (not gate.sets or spec.name in gate.sets):
            gates += _comparison_gates(name, gate, rows, [], policy)
    return [g for g in gates if g.subject != "—"]


def decided(gates) -> bool:
    return all(g.status in (GateStatus.PASS, GateStatus.FAIL, GateStatus.SKIPPED) for g in gates)


def counted(gates) -> int:
    """Gate x subject pairs that take a share of alpha (skipped ones decide nothing)."""
    return sum(1 for g in gates if g.status != GateStatus.SKIPPED)
