"""A test-set family built from the 300-image shared sample, independent of benchbox's own generators.

Used twice: once by `tests/data/make_frozen_records.py` with the version-1 code to freeze its records, and by
`test_frozen_records.py` with the current code, so that a refactor proves it did not change a number. Every set
is derived with plain PIL/numpy/PyAV operations written here (not make-c/make-p), so a change to the
synthesizers does not move these figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from benchbox.datasets.catalog import imagenet_wnids, subset_indices

C_VARIANTS = (("contrast", 1), ("contrast", 3), ("brightness", 2), ("gaussian_noise", 4))
P_PERTURBATIONS = ("gaussian_noise", "translate")


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(source, target)


def _crop224(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
    w, h = img.size
    scale = 256 / min(w, h)
    img = img.resize((max(256, int(w * scale)), max(256, int(h * scale))), Image.BILINEAR)
    left, top = (img.width - 224) // 2, (img.height - 224) // 2
    return np.asarray(img.crop((left, top, left + 224, top + 224)), dtype=np.float64)


def _corrupt(x: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    if name == "contrast":
        mean = x.mean(axis=(0, 1), keepdims=True)
        x = (x - mean) * (0.5 / severity) + mean
    elif name == "brightness":
        x = x + 25.0 * severity
    else:
        x = x + rng.normal(scale=12.0 * severity, size=x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width, stream.height = 224, 224
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def build(sample_root: Path, root: Path) -> Path:
    """Write the family under `root` (symlinks to the sample where possible) and return `root`."""
    from PIL import Image

    wnids = imagenet_wnids()
    index = {w: i for i, w in enumerate(wnids)}
    images = sorted((sample_root / "val").glob("*/*"))
    subsets = {name: {wnids[i] for i in subset_indices(name)} for name in ("a", "r", "o")}
    for k, path in enumerate(images):
        wnid = path.parent.name
        _link(path, root / "val" / wnid / path.name)
        _link(path, root / "imagenetv2-matched-frequency-format-val" / str(index[wnid]) / path.name)
        if k % 3 == 0:
            _link(path, root / "sketch" / wnid / path.name)
        for name, folder in (("a", "imagenet-a"), ("r", "imagenet-r"), ("o", "imagenet-o")):
            if wnid in subsets[name]:
                _link(path, root / folder / wnid / path.name)
    rng = np.random.default_rng(2024)
    for k, path in enumerate(images[::5]):
        base = _crop224(path)
        for name, severity in C_VARIANTS:
            target = root / "imagenet-c" / name / str(severity) / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_corrupt(base, name, severity, rng)).save(target, format="JPEG", quality=85)
        if k % 6 == 0:
            frames_noise = [base.astype(np.uint8)] + [
                np.clip(base + rng.normal(scale=6.0, size=base.shape), 0, 255).astype(np.uint8) for _ in range(9)
            ]
            frames_shift = [np.roll(base, shift, axis=1).astype(np.uint8) for shift in range(0, 20, 2)]
            for name, frames in zip(P_PERTURBATIONS, (frames_noise, frames_shift)):
                _write_video(root / "imagenet-p" / name / path.parent.name / (path.stem + ".mp4"), frames)
    return root
