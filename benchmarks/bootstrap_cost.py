"""What the paired bootstrap adds to `report`/`check` on a full-size ImageNet-C: 50,000 images x 75 benchmark
variants (3.75 M rows per cell; with the 4 extra corruptions, 95 variants and 4.75 M), plus val, for fp32, fp16 and
int8 of one model, written as a real results store. Times the cost table (loading, pairing, mCE / relative mCE /
CE per corruption with 1,000 resamples by image) against the same comparison without the bootstrap (resamples 0:
point estimates only), in one command.

    python benchmarks/bootstrap_cost.py [--images 50000] [--extras] [--resamples 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from stored import add_cell, cell, summary  # noqa: E402

from benchbox.datasets.catalog import C_CORRUPTIONS, C_EXTRA_CORRUPTIONS  # noqa: E402
from benchbox.metrics.stats import BOOTSTRAP_RESAMPLES  # noqa: E402
from benchbox.reports.comparison import Comparison  # noqa: E402
from benchbox.store import ResultStore  # noqa: E402


def build(store_dir: Path, images: int, extras: bool) -> int:
    """fp32/fp16/int8 on val and every C variant; fp16 flips 0.1 % of answers, int8 1 %. Returns rows per cell."""
    rng = np.random.default_rng(0)
    store = ResultStore(store_dir)
    labels = rng.integers(0, 1000, images)
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(images)]
    corruptions = [*C_CORRUPTIONS, *(C_EXTRA_CORRUPTIONS if extras else ())]
    rows = 0
    variants = [("val", None)] + [("c", f"{c}/{s}") for c in corruptions for s in range(1, 6)]
    for k, (testset, variant) in enumerate(variants):
        error_rate = 0.25 if testset == "val" else 0.3 + 0.1 * int(variant[-1])
        wrong = rng.uniform(size=images) < error_rate
        base = np.where(wrong, (labels + 1) % 1000, labels)
        sids = np.arange(k * images + 1, (k + 1) * images + 1, dtype=np.uint64)
        for precision, flips in (("fp32", 0.0), ("fp16", 0.001), ("int8", 0.01)):
            flipped = rng.uniform(size=images) < flips
            top = np.where(flipped, (base + 7) % 1000, base)
            data = summary(labels, top, names=names, sids=sids)
            add_cell(store, cell(precision, testset, variant), data)
        rows += images if testset == "c" else 0
    store.close()
    return rows


def timed(store_dir: Path, resamples: int) -> tuple[float, list]:
    start = time.perf_counter()
    rows = Comparison(ResultStore(store_dir, read_only=True), resamples=resamples).rows()
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50000)
    parser.add_argument("--extras", action="store_true", help="also the 4 extra corruptions (95 variants)")
    parser.add_argument("--resamples", type=int, default=BOOTSTRAP_RESAMPLES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        start = time.perf_counter()
        rows = build(store, args.images, args.extras)
        print(f"store: 3 cells x {rows:,} C rows (+ val) written in {time.perf_counter() - start:.1f} s")
        point, _ = timed(store, 0)
        full, table = timed(store, args.resamples)
        mce = [r for r in table if r.set == "c" and r.metric == "mce"]
        print(f"cost table without the bootstrap (point estimates): {point:.2f} s")
        print(
            f"cost table with {args.resamples} resamples by image: {full:.2f} s -> the bootstrap adds "
            f"{full - point:.2f} s"
        )
        for r in mce:
            print(
                f"  {r.precision}: mCE {r.value:.3f}, Δ {r.delta:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] "
                f"vs {r.baseline}"
            )


if __name__ == "__main__":
    main()
