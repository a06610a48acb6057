"""Generated images for runs without data: smooth colour fields, shapes and texture, seeded.

They exercise the whole pipeline (decode, resize, crop, inference) with natural-image statistics, but their
labels mean nothing: results on them are agreement between engines, never accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_image(rng: np.random.Generator, width: int, height: int):
    """One RGB PIL image: a low-frequency colour field, a few ellipses and rectangles, fine noise."""
    from PIL import Image, ImageDraw, ImageFilter

    coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        x1, y1 = x0 + int(rng.integers(8, width // 2 + 9)), y0 + int(rng.integers(8, height // 2 + 9))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 2.0))))
    arr = np.asarray(img, dtype=np.int16) + rng.normal(0, 6, size=(height, width, 3)).astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def write_image_folder(out: str | Path, wnids: list[str], per_class: int, seed: int = 0) -> list[Path]:
    """Write `per_class` JPEGs into out/<wnid>/ for each wnid (ImageNet val layout); returns the paths."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    paths = []
    for wnid in wnids:
        folder = out / wnid
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            width, height = int(rng.integers(200, 420)), int(rng.integers(200, 420))
            path = folder / f"{wnid}_{i:04d}.JPEG"
            make_image(rng, width, height).save(path, quality=90)
            paths.append(path)
    return paths


def synthetic_batch(n: int, transform, seed: int = 0) -> np.ndarray:
    """n generated images through an eval transform: a realistic input batch for parity checks."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [transform(make_image(rng, int(rng.integers(240, 400)), int(rng.integers(240, 400)))) for _ in range(n)]
    )
