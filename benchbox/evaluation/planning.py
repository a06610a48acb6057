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
from benchbox.vocabulary import Layout


def plan_sets(
    options, missing: list[str], problems: list[str] | None = None
) -> list[tuple[TestSet, list[VariantSource]]]:
    """The sets to evaluate with their variants; sets that are absent (and allowed to be) go to `missing`, what a
    set's tree holds that will not be read (an unknown corruption folder, a severity 6) to `problems`."""
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
        if spec.layout == "c" and problems is not None:
            from benchbox.datasets.variants import c_layout_problems

            problems += [f"c: {p}" for p in c_layout_problems(located["c"]) if f"c: {p}" not in problems]
        if spec.layout in (Layout.IMAGES, Layout.V2, Layout.CUSTOM):  # few variants: read now (a wrong layout
            # aborts before any work)
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


ORDER_SEED = 0  # the visit order's seed; recorded with every sequential result


def visit_order(samples: SampleSet, seed: int = ORDER_SEED) -> SampleSet:
    """The samples in the order every eval visits them: a pseudo-random permutation keyed by each sample's
    underlying image (its group id), so every variant of ImageNet-C or -P visits the same images in the same order
    and any prefix is a uniformly random subset of the set. A sequential (--until-decided) run stops after a
    prefix of this order; a full pass is the same order to its end, so one resumes the other's chunks. Uniform,
    not stratified by class: the confidence sequences of --until-decided are valid for sampling without
    replacement in a uniformly random order (benchbox.metrics.sequential)."""
    if len(samples.samples) < 2:
        return samples
    order = np.argsort(_mix(samples.group_ids, seed), kind="stable")
    return dataclasses.replace(samples, samples=[samples.samples[i] for i in order])


def _mix(values: np.ndarray, seed: int) -> np.ndarray:
    """SplitMix64 of each value xor the seed: a fixed, well-spread 64-bit key per sample."""
    with np.errstate(over="ignore"):
        z = np.asarray(values, dtype=np.uint64) ^ np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def samples_digest(samples: SampleSet, by_content: bool = False) -> str:
    """What decides a cell's predictions about its images, for its content key: each file's resolved path
    (however it was typed), label, size and modification time; with `by_content` (--rehash) the hash of its
    bytes instead of size and time, so a file replaced by another of the same size and time is seen too."""
    from benchbox.datasets.sources import fingerprint

    digest = hashlib.sha256()
    stats: dict[str, str] = {}
    for s in samples.samples:
        path, meta = fingerprint(s.path, by_content, stats)
        digest.update(os.fsencode(path) + f"\0{s.label}\0{meta}\n".encode())
    return digest.hexdigest()[:16]


def identity_digest(summary: np.ndarray) -> str:
    """What a cell scored, for pairing: the multiset of (content id, label) of its samples (or videos). Two cells
    pair only on equal digests: the same images, wherever and in whatever order they were read."""
    if summary.dtype.names and "video" in summary.dtype.names:
        _, first = np.unique(summary["video"], return_index=True)
        summary = summary[first]
    sids, labels = summary["sid"].astype("<u8"), summary["label"].astype("<i8")
    order = np.lexsort((labels, sids))
    return hashlib.sha256(sids[order].tobytes() + labels[order].tobytes()).hexdigest()[:16]


def set_digest(variant_digests: list[str | None], needed_digests: list[str]) -> str:
    """A set-level figure's samples: its variants' and its needed sets' identity digests (order-free)."""
    parts = sorted({d for d in variant_digests if d}) + ["|"] + sorted(set(needed_digests))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
