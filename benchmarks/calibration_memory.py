"""Peak memory of INT8 calibration (EfficientNet-Lite0, entropy) on 256 and 1024 images, and how far the
bounded-memory (strided) ranges are from a single pass over all images.

Each export runs in its own process; its peak resident memory comes from os.wait4. Version 1 collected every
activation of every image before building histograms (15 GB resident at 256 images); benchbox now calibrates in
strides of at most 16 images. Run:  python benchmarks/calibration_memory.py [--sizes 256,1024]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def export_peak(calib: Path, size: int, out: Path) -> tuple[float, int]:
    command = [
        sys.executable,
        "-m",
        "benchbox.cli",
        "export",
        "efficientnet_lite0",
        "--out",
        str(out),
        "--precisions",
        "fp32,int8",
        "--calib-data",
        str(calib),
        "--calib-size",
        str(size),
        "--calib-method",
        "entropy",
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(proc.stderr.read().decode()[-3000:])
    return time.perf_counter() - start, usage.ru_maxrss * 1024


def strided_vs_one_pass(artifact_dir: Path, calib: Path, count: int) -> float:
    """Largest relative difference of any activation scale between strides of 16 and one pass of `count`."""
    import onnx
    from onnx import numpy_helper

    from benchbox.artifact import Artifact
    from benchbox.datasets.transforms import EvalTransform
    from benchbox.exporters.calibration import CropReader, calibration_crops, select_calibration_files
    from benchbox.exporters.int8 import preprocess_for_quantization, quantize

    artifact = Artifact.load(artifact_dir)
    transform = EvalTransform(artifact.data_config)
    crops = calibration_crops(select_calibration_files(calib, count), transform)[0]
    pre = preprocess_for_quantization(artifact.file_for("fp32"), artifact_dir / "model.fp32.pre-quant.onnx")
    scales = []
    for stride in (16, count):
        out = artifact_dir / f"stride{stride}.onnx"
        quantize(pre, out, "int8", "entropy", CropReader(crops, transform), stride=stride)
        model = onnx.load(str(out))
        arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("_scale")}
        scales.append({name: a for name, a in arrays.items() if a.size == 1})  # per-tensor: activations
    diffs = [abs(float(scales[0][k]) - float(scales[1][k])) / max(abs(float(scales[1][k])), 1e-12) for k in scales[0]]
    return float(np.max(diffs)), float(np.median(diffs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "benchbox-calib-memory")
    args = parser.parse_args()
    from benchbox.datasets.synthetic import write_image_folder

    sizes = [int(s) for s in args.sizes.split(",")]
    calib = args.work / "calib"
    if not calib.is_dir():
        wnids = ["n01440764", "n01443537", "n01484850", "n01491361"]
        write_image_folder(calib, wnids, per_class=(max(sizes) + 32) // 4 + 1, seed=5)
    print(f"{'images':>7} {'wall s':>7} {'peak RSS GB':>12}")
    for size in sizes:
        wall, peak = export_peak(calib, size, args.work / f"art-{size}")
        print(f"{size:>7} {wall:>7.0f} {peak / 1e9:>12.2f}")
    worst, median = strided_vs_one_pass(args.work / f"art-{sizes[0]}", calib, 64)
    print(
        f"activation scales, strides of 16 vs one pass over 64 images: max relative difference {worst:.2%}, "
        f"median {median:.2%}"
    )


if __name__ == "__main__":
    main()
