"""End-to-end eval throughput, like for like: `benchbox eval --engine ort` against timm's ONNX validation loop.

The peer reproduces timm's `onnx_validate.py`: timm's `create_dataset` (with the 1000-class map, so labels line
up) and `create_loader` (worker processes, timm's eval transform, torch tensors), an ONNX Runtime session at
ORT_ENABLE_ALL on the same ONNX file, and its numpy top-1/top-5 per batch. Both run as whole processes on the same
images, alternating, medians of the rounds:

- benchbox cold: an empty preprocessed-image cache and an empty results store;
- benchbox warm: the cache the cold run filled, an empty results store (a re-run, another precision, CI);
- timm: always decodes.

First it measures the machine's limit for this pipeline: D, the CPU time per image of decode + exact
preprocessing, and I, the CPU time per image of inference at the same batch; N cores cannot beat N / (D + I).

    python benchmarks/eval_vs_timm.py --data-root DIR [--rounds 3] [--batch 32] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import lite0_artifact

PEER = r"""
import sys, time, numpy as np, onnxruntime
from timm.data import create_dataset, create_loader
onnx_path, root, class_map, batch, workers, size, crop_pct, interpolation, mean, std = sys.argv[1:11]
options = onnxruntime.SessionOptions()
options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
loader = create_loader(
    create_dataset("", root, class_map=class_map), input_size=(3, int(size), int(size)), batch_size=int(batch),
    use_prefetcher=False, interpolation=interpolation, mean=tuple(map(float, mean.split(","))),
    std=tuple(map(float, std.split(","))), num_workers=int(workers), crop_pct=float(crop_pct))
name = session.get_inputs()[0].name
hits = total = 0
for images, target in loader:
    output = session.run([], {name: images.numpy()})[0]
    order = np.argsort(output, axis=1)[:, ::-1]
    hits += int(np.equal(order[:, 0], target.numpy()).sum())
    total += images.shape[0]
print(total, hits)
"""


def machine_limit(artifact, paths: list[str], batch: int, file: str = "fp32") -> dict[str, float]:
    """D and I in CPU ms per image, and N / (D + I) images/s."""
    import onnxruntime as ort

    from benchbox.datasets.loader import prepare
    from benchbox.datasets.transforms import EvalTransform

    transform = EvalTransform(artifact.data_config)
    for path in paths[:16]:  # warm-up: imports, decoder set-up
        prepare(path, transform)
    start = time.process_time()
    crops = [prepare(p, transform)[0] for p in paths]
    batches = [transform.normalize_batch(np.stack(crops[i : i + batch])) for i in range(0, len(crops), batch)]
    decode = (time.process_time() - start) / len(paths)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the CPU cost of inference itself, without idle spinning
    session = ort.InferenceSession(str(artifact.file_for(file)), options, providers=["CPUExecutionProvider"])
    full = [b for b in batches if len(b) == batch][:16]
    session.run(None, {"input": full[0]})
    start = time.process_time()
    for b in full:
        session.run(None, {"input": b})
    infer = (time.process_time() - start) / (len(full) * batch)
    cores = os.cpu_count() or 1
    return {"D": 1000 * decode, "I": 1000 * infer, "limit": cores / (decode + infer), "cores": cores}


def timed(command: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"{command[:4]} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="holds val/<wnid>/<image>")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--precision", choices=("fp32", "int8"), default="fp32", help="int8: both run the int8-cpu (U8S8) file"
    )
    args = parser.parse_args()
    from benchbox.datasets.catalog import imagenet_wnids
    from benchbox.datasets.readers import read_image_folder

    artifact = lite0_artifact(["fp32", "int8"] if args.precision == "int8" else ["fp32"])
    file = "int8-cpu" if args.precision == "int8" else "fp32"
    paths = read_image_folder(args.data_root / "val", "val").paths
    work = Path(tempfile.mkdtemp(prefix="benchbox-vs-timm-"))
    class_map = work / "classes.txt"
    class_map.write_text("\n".join(imagenet_wnids()) + "\n")
    limit = machine_limit(artifact, paths, args.batch, file)
    cfg = artifact.data_config
    peer = [
        sys.executable,
        "-c",
        PEER,
        str(artifact.file_for(file)),
        str(args.data_root / "val"),
        str(class_map),
        str(args.batch),
        str(args.workers),
        str(cfg.input_size[1]),
        str(cfg.crop_pct),
        cfg.interpolation,
        ",".join(map(str, cfg.mean)),
        ",".join(map(str, cfg.std)),
    ]

    def ours(cache: Path, store: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "benchbox.cli",
            "eval",
            str(artifact.directory),
            "--data-root",
            str(args.data_root),
            "--store",
            str(store),
            "--batch-size",
            str(args.batch),
            "--workers",
            str(args.workers),
            "--cache-dir",
            str(cache),
            "--precisions",
            args.precision,
        ]

    times: dict[str, list[float]] = {"timm": [], "cold": [], "warm": []}
    for round_ in range(args.rounds):
        cache, store = work / f"cache{round_}", work / f"store{round_}"
        times["timm"].append(timed(peer))
        times["cold"].append(timed(ours(cache, store)))
        shutil.rmtree(store)
        times["warm"].append(timed(ours(cache, store)))
    n = len(paths)
    rate = {k: n / statistics.median(v) for k, v in times.items()}
    print(
        f"{file} ONNX, {n} images, batch {args.batch}, {args.workers} decode workers, {limit['cores']} cores, "
        f"medians of {args.rounds} alternating rounds (whole processes)"
    )
    print(
        f"D (decode + preprocessing) {limit['D']:.2f} CPU ms/image; I (inference, batch {args.batch}) "
        f"{limit['I']:.2f} CPU ms/image; limit N/(D+I) = {limit['limit']:.1f} images/s"
    )
    print(f"timm onnx_validate loop        : {rate['timm']:7.1f} images/s")
    print(
        f"benchbox eval, cold cache      : {rate['cold']:7.1f} images/s = {rate['cold'] / rate['timm']:.2f}x timm, "
        f"{rate['cold'] / limit['limit']:.2f} of the limit"
    )
    print(
        f"benchbox eval, warm cache      : {rate['warm']:7.1f} images/s = {rate['warm'] / rate['timm']:.2f}x timm "
        f"(bound N/I = {1000 * limit['cores'] / limit['I']:.0f} images/s once decoding is gone)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
