"""Side by side: `benchbox make-c`'s corruptions against the official ImageNet-C generator on the same images.

The official generator is hendrycks/robustness `ImageNet-C/create_c/make_imagenet_c.py`; the user supplies the
file (it is never committed here). This script loads its corruption functions with only the patches current
numpy/scikit-image/scipy need (np.float_, multichannel=, scipy.ndimage.interpolation, np.fromstring), never runs
its driver section, and needs what it imports: Wand with ImageMagick's MagickWand library (Debian:
libmagickwand-6.q16-6), scikit-image, OpenCV, torch/torchvision. Its frost photographs are read from the
`imagecorruptions` wheel benchbox already installs.

For each image (Resize 256, CenterCrop 224 as make-c), corruption and severity both generators run with the same
seed (numpy's legacy global RandomState for the official, a Generator for benchbox: the draws differ, so random
corruptions compare in distribution) and both outputs go through make-c's JPEG q85. It prints, per corruption and
severity, the pixel MAD and PSNR between the two outputs (meaningful for the deterministic corruptions), the mean
change from the clean image for each, and EfficientNet-Lite0's (ONNX Runtime, FP32) top-1 error on both trees with
the paired 95 % interval of the difference (benchbox - official).

    python benchmarks/c_fidelity.py --official PATH/make_imagenet_c.py --images VAL_DIR [--limit 300]
        [--corruptions fog,frost,...] [--severities 1,2,3,4,5] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from pathlib import Path

import numpy as np

PATCHES = (
    ("np.float_", "np.float64"),
    ("multichannel=True", "channel_axis=-1"),
    ("from scipy.ndimage.interpolation import", "from scipy.ndimage import"),
    ("np.fromstring(", "np.frombuffer("),
)
END_OF_FUNCTIONS = "# /////////////// End Distortions ///////////////"


def load_official(path: Path) -> dict:
    """The official module's functions, its driver section cut off and the minimal compatibility patches applied."""
    text = path.read_text()
    if END_OF_FUNCTIONS not in text:
        sys.exit(f"{path} does not look like make_imagenet_c.py (no '{END_OF_FUNCTIONS}' line).")
    text = text[: text.index(END_OF_FUNCTIONS)]
    for old, new in PATCHES:
        text = text.replace(old, new)
    namespace: dict = {"__name__": "official_make_imagenet_c"}
    exec(compile(text, str(path), "exec"), namespace)  # the user's own copy of the reference generator
    return namespace


def jpeg_roundtrip(image: np.ndarray) -> np.ndarray:
    """make-c's (and the official save step's) JPEG q85, read back."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=85, optimize=True)
    return np.asarray(Image.open(buffer).convert("RGB"))


def official_corrupt(namespace: dict, base, name: str, severity: int, seed: int, frost_dir: Path) -> np.ndarray:
    import os

    np.random.seed(seed % 2**32)
    if name == "frost":  # the reference opens './frost1.png' etc.
        cwd = os.getcwd()
        os.chdir(frost_dir)
        try:
            out = namespace[name](base, severity)
        finally:
            os.chdir(cwd)
    else:
        out = namespace[name](base, severity)
    return np.uint8(out)


def paired_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of (a - b) and the half-width of its 95 % normal interval, both in percentage points."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    half = 1.96 * diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    return 100 * diff.mean(), 100 * half


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


class Scorer:
    """EfficientNet-Lite0 FP32 on ONNX Runtime with benchbox's preprocessing for pre-cropped (C) images."""

    def __init__(self) -> None:
        import onnxruntime as ort
        from _common import lite0_artifact

        from benchbox.datasets.transforms import EvalTransform

        artifact = lite0_artifact(["fp32"])
        self.session = ort.InferenceSession(str(artifact.file_for("fp32")), providers=["CPUExecutionProvider"])
        self.transform = EvalTransform(artifact.data_config, resize=False)

    def wrong(self, images: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
        from PIL import Image

        batch = np.stack([self.transform(Image.fromarray(x)) for x in images])
        logits = self.session.run(None, {self.session.get_inputs()[0].name: batch})[0]
        return (logits.argmax(axis=1) != labels).astype(np.int8)


def motion_kernel_check(namespace: dict, bases: list) -> int:
    """The largest |difference| between ImageMagick's motion blur (through the official MotionImage) and
    benchbox's, at fixed angles and every severity's radius and sigma (the random angle is taken out)."""
    import cv2

    from benchbox.datasets.corruptions import MOTION_BLUR, motion_blur_image

    worst = 0
    for base in bases[:3]:
        buffer = io.BytesIO()
        base.save(buffer, format="PNG")
        for radius, sigma in MOTION_BLUR:
            for angle in (-135.0, -45.0, -17.5, 0.0, 30.0, 45.0):
                magick = namespace["MotionImage"](blob=buffer.getvalue())
                magick.motion_blur(radius=radius, sigma=sigma, angle=angle)
                theirs = cv2.imdecode(np.frombuffer(magick.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
                ours = motion_blur_image(np.asarray(base), radius, sigma, angle)
                worst = max(worst, int(np.abs(theirs.astype(int) - ours).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="path to make_imagenet_c.py")
    parser.add_argument("--images", type=Path, required=True, help="ImageNet val folder (wnid sub-folders)")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--corruptions", default="", help="comma-separated (default: all 19)")
    parser.add_argument("--severities", default="1,2,3,4,5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()

    from benchbox.datasets import corruptions
    from benchbox.datasets.catalog import imagenet_wnids
    from benchbox.datasets.synthesize import _resized_256, _seed, _val_images
    from benchbox.datasets.transforms import center_crop

    namespace = load_official(args.official)
    frost_dir = Path(corruptions.frost_photo_paths()[0]).parent
    names = [n for n in args.corruptions.split(",") if n] or list(corruptions.CORRUPTIONS)
    severities = [int(s) for s in args.severities.split(",")]
    items = _val_images(args.images, args.limit)
    wnid_index = {w: i for i, w in enumerate(imagenet_wnids())}
    labels = np.array([wnid_index[w] for _, w in items])
    bases = [center_crop(_resized_256(p), 224, 224) for p, _ in items]
    scorer = Scorer()
    clean_wrong = scorer.wrong([np.asarray(b) for b in bases], labels)
    print(f"{len(items)} images; clean top-1 error {100 * clean_wrong.mean():.1f} %")
    print(f"motion blur vs ImageMagick at fixed angles: max |difference| {motion_kernel_check(namespace, bases)}")
    header = "corruption          sev   MAD   PSNR  chg(off) chg(bb)  err(off) err(bb)  diff [95% CI]"
    print(header)
    rows = []
    for name in names:
        for severity in severities:
            off_imgs, bb_imgs, mad, peak = [], [], [], []
            chg_off, chg_bb = [], []
            for (path, _), base in zip(items, bases):
                seed = _seed(args.seed, Path(path).name, name, severity)
                clean = np.asarray(base)
                official = official_corrupt(namespace, base, name, severity, seed, frost_dir)
                ours = corruptions.corrupt(clean, name, severity, seed)
                mad.append(np.abs(official.astype(float) - ours).mean())
                peak.append(psnr(official, ours))
                chg_off.append(np.abs(official.astype(float) - clean).mean())
                chg_bb.append(np.abs(ours.astype(float) - clean).mean())
                off_imgs.append(jpeg_roundtrip(official))
                bb_imgs.append(jpeg_roundtrip(ours))
            wrong_off, wrong_bb = scorer.wrong(off_imgs, labels), scorer.wrong(bb_imgs, labels)
            diff, half = paired_interval(wrong_bb, wrong_off)
            row = {
                "corruption": name,
                "severity": severity,
                "mad": float(np.mean(mad)),
                "psnr": float(np.median(peak)),
                "change_official": float(np.mean(chg_off)),
                "change_benchbox": float(np.mean(chg_bb)),
                "error_official": 100 * float(wrong_off.mean()),
                "error_benchbox": 100 * float(wrong_bb.mean()),
                "diff": diff,
                "ci_half": half,
            }
            rows.append(row)
            print(
                f"{name:<18} {severity:>3} {row['mad']:>6.2f} {row['psnr']:>6.1f} {row['change_official']:>8.2f} "
                f"{row['change_benchbox']:>7.2f} {row['error_official']:>8.1f} {row['error_benchbox']:>7.1f}  "
                f"{diff:+5.1f} [{diff - half:+.1f}, {diff + half:+.1f}]",
                flush=True,
            )
        own = [r for r in rows if r["corruption"] == name]
        mean_diff = np.mean([r["diff"] for r in own])
        print(f"{name:<18} mean error official {np.mean([r['error_official'] for r in own]):.1f}, "
              f"benchbox {np.mean([r['error_benchbox'] for r in own]):.1f} ({mean_diff:+.1f})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
