"""What an eval will do, decided before any work: which sets (and the sets they need), their variants, the
samples of each variant (limited, digested), and every input mistake raised now rather than after an hour."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from benchbox.datasets.catalog import TESTSETS, TestSet, with_needs
from benchbox.datasets.readers import SampleSet, VariantSource, expected_layout
from benchbox.datasets.variants import locate, set_variants
from benchbox.errors import UserError, printable


def plan_sets(options, missing: list[str]) -> list[tuple[TestSet, list[VariantSource]]]:
    """The sets to evaluate with their variants; sets that are absent (and allowed to be) go to `missing`."""
    if options.data_root is not None and not Path(options.data_root).is_dir():
        raise UserError(f"Data root {printable(options.data_root)} does not exist.", expected_layout("val"))
    wanted, everything = options.sets.names, options.sets.everything

    def absent(name: str) -> None:
        if name in wanted and name not in missing:
            missing.append(name)

    located = locate(options.data_root, options.paths)
    plan = []
    for name in with_needs(wanted):
        spec = TESTSETS[name]
        required = name in wanted and not everything
        try:
            variants = set_variants(spec, located, options.data_root, options.paths)
        except UserError:
            if not required:
                absent(name)
                continue
            raise
        if variants is None:
            if required:
                where = f"under {printable(options.data_root)}" if options.data_root else "(no --data-root given)"
                raise UserError(f"{spec.title} not found {where}.", expected_layout(name))
            absent(name)
            continue
        if spec.layout in ("images", "v2"):  # few variants: read now, so a wrong layout aborts before work
            variants = [v for v in (_read_now(spec, v, required) for v in variants) if v is not None]
            if not variants:
                absent(name)
                continue
        plan.append((spec, variants))
    if not any(spec.name in wanted for spec, _ in plan):
        raise UserError(
            "None of the requested test sets were found.", f"Missing: {', '.join(missing)}. {expected_layout('val')}"
        )
    return plan


def _read_now(spec: TestSet, source: VariantSource, required: bool) -> VariantSource | None:
    sample_set = source.read()
    if not sample_set.samples:
        if required:
            problems = "; ".join(sample_set.problems[:3])
            raise UserError(
                f"No images found for {source.key.label} in {printable(source.folder)} ({problems}).",
                expected_layout(spec.name),
            )
        return None
    return VariantSource(source.key, source.folder, lambda s=sample_set: s)


def check_scoring_inputs(plan, options, store) -> None:
    """Label files and baselines are read now, so a mistake in them costs no compute."""
    names = {spec.name for spec, _ in plan}
    if "real" in names:
        from benchbox.evaluation.scoring.real import real_lists

        real_lists(options)
    if "p" in names and options.p_baseline:
        from benchbox.evaluation.scoring.perturbation import load_baseline

        for engine in options.engines:
            load_baseline(options, store, engine)


def limit_samples(samples: SampleSet, limit: int | None) -> SampleSet:
    """An evenly spread, deterministic subset of `limit` samples (all classes stay represented)."""
    if not limit or limit >= len(samples.samples):
        return samples
    picks = np.linspace(0, len(samples.samples) - 1, num=limit).round().astype(int)
    chosen = [samples.samples[i] for i in picks]
    return dataclasses.replace(samples, samples=chosen)


def samples_digest(samples: SampleSet) -> str:
    """What the samples are: paths, labels, and each file's size and modification time (a replaced file is new)."""
    digest = hashlib.sha256()
    for s in samples.samples:
        try:
            stat = os.stat(s.path)
            meta = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            meta = "missing"
        digest.update(os.fsencode(s.path) + f"\0{s.label}\0{meta}\n".encode())
    return digest.hexdigest()[:16]
