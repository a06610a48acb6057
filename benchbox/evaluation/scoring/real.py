"""ImageNet ReaL: val's top-1 against the ReaL label lists, keyed by val file number (so any subset of val works);
images whose list is empty are left out, as in the reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchbox.datasets.catalog import timm_real_labels
from benchbox.datasets.readers import expected_layout, val_file_number
from benchbox.errors import UserError
from benchbox.evaluation.scoring import ScoreContext, default_comparable
from benchbox.evaluation.summaries import top1
from benchbox.metrics.classification import accuracy, real_correct
from benchbox.records import Record

comparable = default_comparable


def real_lists(options) -> tuple:
    """The ReaL label lists: --path real=FILE, DATA_ROOT/real.json, --real-labels, else timm's copy."""
    root_file = options.data_root / "real.json" if options.data_root else None
    for path in (options.paths.get("real"), root_file, options.real_labels):
        if path is not None and Path(path).is_file():
            try:
                lists = json.loads(Path(path).read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise UserError(f"{path} is not valid JSON: {exc}", expected_layout("real")) from exc
            if not isinstance(lists, list) or not all(isinstance(x, list) for x in lists):
                raise UserError(f"{path} is not a list of label lists.", expected_layout("real"))
            return lists
        if path is not None and path == options.real_labels:
            raise UserError(f"ReaL labels file {path} not found.", expected_layout("real"))
    return timm_real_labels()


def variant_records(ctx: ScoreContext) -> list[Record]:
    return []


def set_records(ctx: ScoreContext, variant_records: list[Record]) -> list[Record]:
    val = ctx.needed("val")
    if val is None:
        ctx.problems.append("real: needs val/ under the data root")
        return []
    samples, predictions = val
    lists = real_lists(ctx.options)
    predicted, chosen, unkeyed = [], [], 0
    summary = predictions.summary
    for index, guess in zip(summary["index"].tolist(), top1(summary).tolist()):
        number = val_file_number(samples.samples[index].key)
        if number is None or number > len(lists):
            unkeyed += 1
            continue
        predicted.append(guess)
        chosen.append(lists[number - 1])
    if unkeyed:
        ctx.problems.append(f"real: {unkeyed} val images are not named ILSVRC2012_val_XXXXXXXX and have no ReaL labels")
    correct = real_correct(np.asarray(predicted, dtype=np.int64), chosen)
    if correct.size == 0:
        ctx.problems.append("real: no val image could be keyed to real.json, so ReaL was not scored")
        return []
    acc = accuracy(correct)
    return [ctx.record("real_top1", acc["value"], acc["n"], acc["ci95"])]
