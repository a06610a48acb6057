"""Time to verdict: `eval --until-decided` against a full pass, on the sample-derived family and simulated at the
size of the real family.

(a) The sample-derived family (tests/sample_family.py: val, V2, Sketch, A, R and four C variants from the 300
    shared images), EfficientNet-Lite0 at fp32/fp16/int8-cpu on ONNX Runtime: images scored and verdict of a
    sequential run and of a full pass, under the policy given (default: a 3-point top-1 limit, 2 mCE points).
(b) A simulated full-size family: per-image paired outcomes resampled from (a)'s full pass to the set sizes of the
    real family, `--runs` times: median images used per set, how often the verdict differs from the full pass's,
    and the observed rate of wrong decisions (against the population's own figure) next to alpha.
(c) A damaged build (INT8 calibrated on a single image): how soon "fail" is decided.

    python benchmarks/time_to_verdict.py --sample ../shared/data/imagenet-sample [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

FULL_SIZES = {"val": 50000, "v2": 10000, "sketch": 50889, "a": 7500, "r": 30000, "c": 50000}
POLICY = """
alpha = 0.05
[gates]
max_top1_drop = {top1}
max_mce_increase = 2.0
min_agreement_top1 = 97.0
"""


def evaluate(artifact, store: Path, data: Path, precisions, policy: Path | None, sequential: bool, sets=None):
    from benchbox.evaluation.evaluator import Evaluator
    from benchbox.options import EvalOptions, parse_options
    from benchbox.store import ResultStore

    values = {
        "sets": sets or ["val", "v2", "sketch", "a", "r", "c"],
        "data_root": data,
        "precisions": precisions,
        "store": store,
        "until_decided": sequential,
        "policy": policy,
    }
    start = time.perf_counter()
    result = Evaluator(artifact, ResultStore(store), parse_options(EvalOptions, values, "a benchmark")).run()
    return result, time.perf_counter() - start


def verdict(store: Path, policy: Path) -> tuple[str, list]:
    from benchbox.reports.policy import load_policy
    from benchbox.reports.verdict import decide
    from benchbox.store import ResultStore

    result = decide(ResultStore(store, read_only=True), load_policy(policy))
    return result.verdict.value, [(g.gate, g.subject, g.status) for g in result.gates]


def images_scored(result) -> dict[str, int]:
    out: dict[str, int] = {}
    for record in result.records:
        if record.metric in ("top1", "error") and record.cell.precision == "fp32":
            out[record.cell.testset] = out.get(record.cell.testset, 0) + int(record.n or 0)
    return out


def part_a(args, work: Path) -> Path:
    from _common import lite0_artifact
    from sample_family import build

    family = work / "family"
    if not (family / "val").is_dir():
        build(args.sample.resolve(), family)
    artifact = lite0_artifact(["fp32", "fp16", "int8"], work / "artifacts")
    policy = work / "policy.toml"
    policy.write_text(POLICY.format(top1=args.top1_limit))
    rows = []
    val_only = work / "policy-val.toml"
    val_only.write_text(f"[gates]\nmax_top1_drop = {args.top1_limit}\n")
    runs = [(["fp32", "fp16"], ["val"], val_only), (["fp32", "fp16"], None, policy)]
    runs.append((["fp32", "fp16", "int8-cpu"], None, policy))
    for precisions, sets, rules in runs:
        tag = "-".join(precisions) + ("-" + "-".join(sets) if sets else "")
        seq, t_seq = evaluate(artifact, work / f"seq-{tag}", family, precisions, rules, True, sets)
        full, t_full = evaluate(artifact, work / f"full-{tag}", family, precisions, rules, False, sets)
        used, whole = images_scored(seq), images_scored(full)
        rows.append(
            {
                "precisions": tag,
                "images_sequential": used,
                "images_full": whole,
                "fraction": sum(used.values()) / max(1, sum(whole.values())),
                "seconds_sequential": round(t_seq, 1),
                "seconds_full": round(t_full, 1),
                "verdict_sequential": verdict(work / f"seq-{tag}", rules)[0],
                "verdict_full": verdict(work / f"full-{tag}", rules)[0],
                "stops": seq.sequential,
            }
        )
        print(json.dumps(rows[-1], indent=1), flush=True)
    return work / "full-fp32-fp16-int8-cpu"


def measured_outcomes(store_dir: Path) -> dict[tuple[str, str], tuple[np.ndarray, float]]:
    """(set, precision) -> (per-image paired differences of the gated metric, their bound) from a full pass."""
    from benchbox.metrics.robustness import alexnet_c_baseline
    from benchbox.store import ResultStore

    store = ResultStore(store_dir, read_only=True)
    runs = [r for r in store.latest_runs() if r["kind"] == "cell" and r["status"] == "done"]

    def hits(run) -> tuple[np.ndarray, np.ndarray]:
        summary = store.load_final(run["cell_key"])["summary"]
        top = summary["top5"][:, 0]
        masked = f"{run['testset']}_top1"
        if masked in (summary.dtype.names or ()):  # A and R: the top-1 among their 200 classes
            top = summary[masked]
        order = np.argsort(summary["sid"])
        return (top[order] == summary["label"][order]).astype(float), summary["gid"][order]

    by = {(r["testset"], r["variant"], r["precision"]): r for r in runs}
    out: dict[tuple[str, str], tuple[np.ndarray, float]] = {}
    alex = alexnet_c_baseline()["severity"]
    for precision in ("fp16", "int8-cpu"):
        for name in ("val", "v2", "sketch", "a", "r"):
            pairs = [(k, r) for k, r in by.items() if k[0] == name and k[2] == "fp32"]
            diffs = []
            for (testset, variant, _), base in pairs:
                other = by.get((testset, variant, precision))
                if other is not None:
                    diffs.append(100.0 * (hits(base)[0] - hits(other)[0]))
            if diffs:
                out[(name, precision)] = (np.concatenate(diffs), 100.0)
        variants = [k for k in by if k[0] == "c" and k[2] == "fp32"]
        if variants:
            corruptions = {v.split("/")[0] for _, v, _ in variants}
            per_image, bound = 0.0, 0.0
            for _, variant, _ in variants:
                corruption, severity = variant.split("/")
                present = [int(v.split("/")[1]) for _, v, _ in variants if v.startswith(corruption + "/")]
                weight = 100.0 / (len(corruptions) * sum(alex[corruption][s - 1] for s in present))
                base, other = hits(by[("c", variant, "fp32")])[0], hits(by[("c", variant, precision)])[0]
                per_image = per_image + weight * (base - other)  # errors: (1 - other) - (1 - base)
                bound += weight
            out[("c", precision)] = (np.asarray(per_image), bound)
    return out


def part_b(args, store_dir: Path) -> None:
    from benchbox.evaluation.sequential import round_sizes
    from benchbox.metrics.sequential import _first_rejections

    outcomes = measured_outcomes(store_dir)
    limits = {"c": 2.0}
    gates = len(outcomes)  # one change gate per (set, precision); agreement left out of the simulation
    alpha_gate = args.alpha / gates
    print(f"(b) {args.runs} simulated full-size runs, {gates} gates, alpha per gate {alpha_gate:.3g}", flush=True)
    per_run: dict[str, np.ndarray] = {}  # set -> images used per run (the set stops when its every gate has)
    for (name, precision), (diffs, bound) in sorted(outcomes.items()):
        limit = limits.get(name, 1.0)  # the default policy's limits at full size
        size = FULL_SIZES[name]
        used, wrong = [], 0
        sizes = np.asarray(list(round_sizes(size, 32, False)))
        point = np.asarray([(limit + bound) / (2 * bound)])  # the limit, on the sequence's [0, 1] scale
        for seed in range(args.runs):
            rng = np.random.default_rng(seed)
            population = rng.choice(diffs, size)
            truth = float(population.mean())
            x = (rng.permutation(population) + bound) / (2 * bound)
            # the CS leaves out the limit at the first round after the limit's own wealth reaches 1/alpha: that
            # is when the gate is decided (pass below it, fail above), exactly as the evaluator's rounds see it
            first = int(_first_rejections(x, alpha_gate, size, point)[0])
            stop = sizes[np.searchsorted(sizes, first)] if first <= size else size
            if stop < size:
                decision = "pass" if x[:stop].mean() < point[0] else "fail"
            else:
                decision = "pass" if truth <= limit else "fail"  # exhausted: the full pass itself
            used.append(int(stop))
            wrong += decision != ("pass" if truth <= limit else "fail")  # the full pass's own verdict
        print(
            f"  {name:6s} {precision:8s} N={size:6d} median images {int(np.median(used)):6d} "
            f"({size / np.median(used):.1f}x fewer), verdict differs from the full pass in {wrong}/{args.runs} "
            f"runs ({wrong / args.runs:.3f}; alpha per gate {alpha_gate:.3g})",
            flush=True,
        )
        per_run[name] = np.maximum(per_run.get(name, 0), np.asarray(used))
    variants = {"v2": 3, "c": 75}  # images per underlying image: V2's three variants, C's 15 x 5
    full = sum(FULL_SIZES[s] * variants.get(s, 1) for s in per_run)
    for val_in_full in (True, False):
        used = sum((FULL_SIZES[s] if s == "val" and val_in_full else per_run[s]) * variants.get(s, 1) for s in per_run)
        label = "val in full (ECE gates it)" if val_in_full else "val sequential too"
        print(
            f"  family ({', '.join(sorted(per_run))}; {label}): median {int(np.median(used)):,} of {full:,} images, "
            f"{full / np.median(used):.1f}x fewer",
            flush=True,
        )


def part_c(args, work: Path) -> None:
    from benchbox.build import build_artifacts
    from benchbox.datasets.synthetic import write_image_folder
    from benchbox.options import ExportOptions, parse_options

    calib = work / "one-image"
    if not calib.is_dir():
        write_image_folder(calib, ["n01440764"], per_class=1, seed=11)
    options = parse_options(
        ExportOptions,
        {"precisions": ["fp32", "int8"], "calib_data": calib, "calib_size": 1, "calib_method": "minmax"},
        "a benchmark",
    )
    artifact = build_artifacts("efficientnet_lite0", work / "damaged", options)
    policy = work / "policy.toml"
    result, seconds = evaluate(artifact, work / "seq-damaged", work / "family", ["fp32", "int8-cpu"], policy, True)
    print("(c) INT8 calibrated on one image:", json.dumps(result.sequential), f"{seconds:.0f} s", flush=True)
    print("    verdict:", verdict(work / "seq-damaged", policy)[0], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=Path, default=Path("../shared/data/imagenet-sample"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "benchbox-time-to-verdict")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--top1-limit", type=float, default=3.0)
    parser.add_argument("--parts", default="a,b,c", help="Which parts to run (b reads a's full pass).")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    full_store = part_a(args, args.work) if "a" in parts else args.work / "full-fp32-fp16-int8-cpu"
    if "b" in parts:
        part_b(args, full_store)
    if "c" in parts:
        part_c(args, args.work)


if __name__ == "__main__":
    main()
