"""Does eval hold its memory flat as a set grows? C-like sets of 10k, 50k and 200k small JPEGs, one process each.

For each size: peak resident memory of the whole `benchbox eval` process (os.wait4's ru_maxrss), store bytes
per sample per cell (the finished prediction files), and images/s. Run:

    python benchmarks/scale.py                 # sizes 10000,50000,200000 (about 10 minutes on 2 cores)
    python benchmarks/scale.py --sizes 2000,8000
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

MODEL_SOURCE = """
import timm, torch
from benchbox.models import DataConfig

def make():
    torch.manual_seed(0)
    return timm.create_model("test_efficientnet", pretrained=False), DataConfig(input_size=(3, 32, 32), crop_pct=1.0)
"""
CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
WNIDS = ("n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331", "n01498041", "n01514668")


def write_tree(root: Path, total: int, seed: int = 0) -> None:
    """imagenet-c/<corruption>/<severity>/<wnid>/<n>.JPEG with `total` 32x32 images spread over the 75 variants."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    tiles = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(64)]
    per_variant = total // (len(CORRUPTIONS) * 5)
    for corruption in CORRUPTIONS:
        for severity in range(1, 6):
            for i in range(per_variant):
                folder = root / "imagenet-c" / corruption / str(severity) / WNIDS[i % len(WNIDS)]
                folder.mkdir(parents=True, exist_ok=True)
                tiles[i % len(tiles)].save(folder / f"{i:07d}.JPEG", quality=90)


def run_eval(artifact: Path, root: Path, store: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one eval process."""
    command = [
        sys.executable,
        "-m",
        "benchbox.cli",
        "eval",
        str(artifact),
        "--sets",
        "c",
        "--data-root",
        str(root),
        "--store",
        str(store),
        "--batch-size",
        "64",
        "--no-cache",
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"eval failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "benchbox-scale")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "scale_model.py").write_text(MODEL_SOURCE)
    sys.path.insert(0, str(args.work))
    os.environ["PYTHONPATH"] = f"{args.work}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    from benchbox.exporters.onnx import OnnxFromTorch

    artifact = OnnxFromTorch("scale_model:make", args.work / "artifact")().directory
    print(f"{'images':>8} {'wall s':>8} {'images/s':>9} {'peak RSS MB':>12} {'store B/sample/cell':>20}")
    for size in (int(s) for s in args.sizes.split(",")):
        root = args.work / f"data-{size}"
        if not (root / "imagenet-c").is_dir():
            write_tree(root, size)
        store = args.work / f"store-{size}"
        subprocess.run(["rm", "-rf", str(store)], check=True)
        wall, peak = run_eval(artifact, root, store)
        images = (size // 75) * 75
        stored = sum(p.stat().st_size for p in (store / "predictions").rglob("final.npz"))
        print(f"{images:>8} {wall:>8.1f} {images / wall:>9.0f} {peak / 1e6:>12.0f} {stored / images:>20.1f}")


if __name__ == "__main__":
    main()
