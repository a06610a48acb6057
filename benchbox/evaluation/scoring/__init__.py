"""One scoring module per test set, called through the catalog (`TestSet.scorer`).

A module provides `variant_records(ctx)` (the records of one variant, as soon as its predictions are complete),
may provide `set_records(ctx, variant_records)` (set-level figures from the per-variant ones: mCE, mFR; or, for
ReaL, from a needed set), and provides `estimates(data, clusters)` (the same metrics as functions of bootstrap
weights, for paired comparisons: benchbox.evaluation.estimates) and `comparable(summary)` (keys, top-1,
correctness per sample, for agreement). Scorers read compact summaries, never logits, and use the one
implementation of each metric in benchbox.metrics.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from benchbox.datasets.catalog import TestSet
from benchbox.datasets.readers import SampleSet
from benchbox.evaluation.predict import CellPredictions
from benchbox.evaluation.summaries import top1
from benchbox.records import Cell, Record


@dataclass
class ScoreContext:
    """What a scorer sees: the cell, its samples and predictions, the same cell's needed sets, the options."""

    cell: Cell
    digest: str
    samples: SampleSet | None = None
    predictions: CellPredictions | None = None
    needed: Callable[[str], tuple[SampleSet, CellPredictions] | None] = lambda name: None
    options: Any = None
    store: Any = None
    problems: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # kept in the run's info (e.g. a P baseline normaliser)

    def record(
        self, metric: str, value: Any, n: Any = None, ci95: Any = None, cell: Cell | None = None, **extra: Any
    ) -> Record:
        """A record of this context's cell (or `cell`) on its samples."""
        flags = tuple(extra.pop("flags", None) or ())
        reference = extra.pop("reference", None)
        return Record(
            cell or self.cell,
            metric,
            value,
            n,
            tuple(ci95) if ci95 is not None else None,
            reference=reference,
            samples=self.digest,
            flags=flags,
            extra=extra,
        )


def scorer_for(spec: TestSet) -> ModuleType:
    return importlib.import_module(spec.scorer_module)


def default_comparable(summary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample index, 1000-way top-1, is it the label) per sample."""
    predicted = top1(summary)
    return summary["index"].astype(np.int64), predicted, predicted == summary["label"]
