"""ImageNet ReaL: val's top-1 against the ReaL label lists, keyed by val file number (so any subset of val works);
images whose list is empty are left out, as in the reference. File numbers start at 1: a file numbered 0 (or
beyond the lists) has no ReaL labels, it is not keyed to the last list."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchbox.datasets.catalog import timm_real_labels
from benchbox.datasets.readers import expected_layout
from benchbox.errors import UserError
from benchbox.evaluation.estimates import Clusters, Estimate, SetData, Sums, proportion
from benchbox.evaluation.scoring import ScoreContext, default_comparable
from benchbox.evaluation.summaries import top1
from benchbox.metrics.classification import accuracy, real_correct
from benchbox.records import Record

comparable = default_comparable


def real_source(options) -> Path | None:
    """The ReaL label file in use: --path real=FILE, DATA_ROOT/real.json, --real-labels; None: timm's copy."""
    root_file = options.data_root / "real.json" if options.data_root else None
    for path in (options.paths.get("real"), root_file, options.real_labels):
        if path is not None and Path(path).is_file():
            return Path(path)
        if path is not None and path == options.real_labels:
            raise UserError(f"ReaL labels file {path} not found.", expected_layout("real"))
    return None


def read_lists(path: Path | None) -> tuple:
    """The label lists of a ReaL file (None: the copy timm ships), checked."""
    if path is None:
        try:
            return timm_real_labels()
        except FileNotFoundError as exc:  # an ONNX-only install without timm
            raise UserError(
                "No ReaL labels: real.json is not in the data root and timm (which ships a copy) is not installed.",
                "Pass --real-labels real.json (github.com/google-research/reassessed-imagenet) or pip install timm.",
            ) from exc
    try:
        lists = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON: {exc}", expected_layout("real")) from exc
    except OSError as exc:
        raise UserError(f"Cannot read the ReaL labels {path}: {exc.strerror or exc}.") from exc
    if not isinstance(lists, list) or not all(isinstance(x, list) for x in lists):
        raise UserError(f"{path} is not a list of label lists.", expected_layout("real"))
    return lists


def real_lists(options) -> tuple:
    """The ReaL label lists: --path real=FILE, DATA_ROOT/real.json, --real-labels, else timm's copy."""
    return read_lists(real_source(options))


def keyed_hits(summary: np.ndarray, lists) -> tuple[np.ndarray, np.ndarray, int]:
    """(rows of `summary` with a non-empty ReaL list, whether their top-1 is in it, rows that could not be keyed).

    Keyed by each sample's val file number (`number`: 0 when its name has none)."""
    numbers = summary["number"].astype(np.int64)
    keyed = (numbers >= 1) & (numbers <= len(lists))
    rows = np.flatnonzero(keyed)
    chosen = [lists[n - 1] for n in numbers[rows].tolist()]
    hits = real_correct(top1(summary)[rows], chosen)  # the one implementation: empty lists left out
    rows = rows[[len(labels) > 0 for labels in chosen]] if rows.size else rows
    return rows.astype(np.int64), hits, int((~keyed).sum())


def variant_records(ctx: ScoreContext) -> list[Record]:
    return []


def set_records(ctx: ScoreContext, variant_records: list[Record]) -> list[Record]:
    val = ctx.needed("val")
    if val is None:
        ctx.problems.append("real: needs val/ under the data root")
        return []
    _, predictions = val
    source = real_source(ctx.options)
    lists = read_lists(source)
    rows, correct, unkeyed = keyed_hits(predictions.summary, lists)
    if unkeyed:
        ctx.problems.append(
            f"real: {unkeyed} val images are not named ILSVRC2012_val_XXXXXXXX (1..{len(lists)}) and have no "
            "ReaL labels"
        )
    if correct.size == 0:
        ctx.problems.append("real: no val image could be keyed to real.json, so ReaL was not scored")
        return []
    ctx.info["real_labels"] = _describe(source)
    acc = accuracy(correct)
    return [ctx.record("real_top1", acc["value"], acc["n"], acc["ci95"])]


def _describe(source: Path | None) -> dict[str, str | None]:
    import hashlib

    if source is None:
        return {"path": None, "sha256": None}
    return {"path": str(Path(source).resolve()), "sha256": hashlib.sha256(Path(source).read_bytes()).hexdigest()}


def estimates(data: SetData, clusters: Clusters) -> list[Estimate]:
    """ReaL top-1 per keyed val image (needs the val file names, recorded as the val run's sample keys)."""
    val = data.needed.get("val")
    if val is None:
        return []
    source = data.extra.get("real_labels") or {}
    path = source.get("path")
    if path is not None:
        import hashlib

        if not Path(path).is_file() or hashlib.sha256(Path(path).read_bytes()).hexdigest() != source.get("sha256"):
            return []  # the labels it was scored with are gone or changed: the comparison says so (no estimate)
    summary = val.summary(None)
    rows, correct, _ = keyed_hits(summary, read_lists(Path(path) if path else None))
    if not rows.size:
        return []
    return [proportion("real_top1", None, correct, Sums(clusters, clusters.index(summary["gid"][rows])))]
