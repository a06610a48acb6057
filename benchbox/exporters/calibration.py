"""Calibration images for FP16 ranges and INT8: seeded class-balanced selection, decoded once to uint8 crops
through the artifact's exact eval transform, fed to ONNX Runtime one normalised image at a time.

Crops are kept as uint8 (150 KB an image at 224 px), so even 1,024 calibration images take ~150 MB; the
activations ONNX Runtime collects are bounded separately (see int8.py).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from benchbox.errors import UserError, printable


def select_calibration_files(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` images from an ImageNet-style folder (class-balanced round robin) or a flat folder, seeded."""
    from benchbox.datasets.sources.tree import IMAGE_EXTENSIONS, natural_key

    if not folder.is_dir():
        raise UserError(f"Calibration folder {printable(folder)} does not exist.", "Pass --calib-data DIR with images.")
    if count < 1:
        raise UserError("--calib-size must be at least 1.")
    rng = random.Random(seed)
    root = folder / "val" if (folder / "val").is_dir() and not any(folder.glob("*.*")) else folder
    subdirs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))
    pools: list[list[Path]] = []
    for sub in subdirs or [root]:
        files = sorted(
            (p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
            key=lambda p: natural_key(p.name),
        )
        rng.shuffle(files)
        if files:
            pools.append(files)
    if not pools:
        raise UserError(
            f"No images (.jpg/.jpeg/.png) found in {printable(folder)}.", "Pass --calib-data DIR with images."
        )
    chosen: list[Path] = []
    depth = 0
    while len(chosen) < count and any(depth < len(p) for p in pools):
        order = list(range(len(pools)))
        rng.shuffle(order)
        for i in order:
            if depth < len(pools[i]) and len(chosen) < count:
                chosen.append(pools[i][depth])
        depth += 1
    return chosen


def calibration_crops(files: list[Path], transform):
    """(uint8 crops of the readable calibration images, which files they are, the unreadable ones with why, the
    used ones' content ids)."""
    from benchbox.datasets.loader import prepare

    crops, used, skipped, ids = [], [], [], []
    for path in files:
        prepared = prepare(str(path), transform)
        if isinstance(prepared, str):
            skipped.append((path, prepared))
            continue
        crops.append(prepared[0])
        used.append(path)
        ids.append(prepared[1])
    if not crops:
        examples = "; ".join(f"{printable(p)}: {why}" for p, why in skipped[:3])
        raise UserError(
            f"None of the {len(files)} calibration images could be read ({examples}).", "Check --calib-data."
        )
    return np.stack(crops), used, skipped, ids


class CropReader:
    """ONNX Runtime CalibrationDataReader over uint8 crops: one normalised image per `get_next`.

    Batches of one (ORT's histogram calibrators stack per-item arrays and fail on a short last batch);
    `__len__` and `set_range` let ORT calibrate in strides (CalibStridedMinMax), which bounds the activations it
    holds at once to one stride's worth.
    """

    def __init__(self, crops: np.ndarray, transform, input_name: str = "input") -> None:
        self.crops, self.transform, self.input_name = crops, transform, input_name
        self.start, self.stop, self.position = 0, len(crops), 0

    def __len__(self) -> int:
        return len(self.crops)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.stop, self.position = start_index, min(end_index, len(self.crops)), start_index

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= self.stop:
            return None
        batch = self.transform.normalize_batch(self.crops[self.position : self.position + 1])
        self.position += 1
        return {self.input_name: batch}

    def rewind(self) -> None:
        self.position = self.start
