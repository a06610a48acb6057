"""Eval preprocessing that reproduces timm's `transforms_imagenet_eval` exactly, in PIL + numpy.

timm: Resize(floor(size / crop_pct)) on the shorter side (the longer side truncated with int()), the
configured PIL interpolation, CenterCrop(size) with round((h - size) / 2) offsets, ToTensor, Normalize.
Tests compare the output with timm's own transform pixel for pixel.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from benchbox.errors import UserError, printable
from benchbox.models import DataConfig

INTERPOLATIONS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


class UnreadableImage(Exception):
    """A file that PIL cannot decode (truncated, zero bytes, not an image)."""


def load_rgb(path: str | Path | io.BytesIO):
    """Decode any PIL-readable file (or bytes) to RGB (CMYK, grayscale, PNG-named-JPEG all work).

    Raises UnreadableImage for anything PIL cannot decode, and for decompression bombs."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            return img if img.mode == "RGB" else img.convert("RGB")  # convert() of RGB is only a copy
    except Exception as exc:
        raise UnreadableImage(f"{type(exc).__name__}: {_plain_message(exc)}") from exc


def _plain_message(exc: Exception) -> str:
    """PIL's message without the in-memory buffer it names ('cannot identify image file <_io.BytesIO ...>'): the
    caller names the file."""
    import re

    text = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", printable(str(exc)))
    return {"cannot identify image file": "not an image PIL can decode"}.get(text.strip(), text)


def shorter_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """torchvision's Resize(int) output (width, height): shorter side = size, longer side truncated."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


class EvalTransform:
    """PIL RGB image -> float32 CHW array, normalised. `resize=False` keeps pre-cropped images (ImageNet-C/P)."""

    def __init__(self, config: DataConfig, resize: bool = True) -> None:
        if config.interpolation not in INTERPOLATIONS:
            raise UserError(
                f"Unsupported interpolation {config.interpolation!r}.",
                f"Use one of {sorted(INTERPOLATIONS)}.",
            )
        if config.crop_mode not in ("center", "squash"):
            raise UserError(f"Unsupported crop_mode {config.crop_mode!r}.", "benchbox supports center and squash.")
        self.config = config
        self.resize = resize
        self.crop_h, self.crop_w = int(config.input_size[1]), int(config.input_size[2])
        if resize and config.crop_mode == "center" and self.crop_h != self.crop_w:
            raise UserError("Non-square input sizes with center crop are not supported.")
        self._mean = np.asarray(config.mean, dtype=np.float32).reshape(3, 1, 1)
        self._std = np.asarray(config.std, dtype=np.float32).reshape(3, 1, 1)

    def geometry(self, img):
        """Resize and crop a PIL image to the model's input size (uint8, still PIL)."""
        resample = INTERPOLATIONS[self.config.interpolation]
        if self.resize:
            scale = self.config.resize_size
            if self.config.crop_mode == "squash":
                target = (scale, scale)
            else:
                target = shorter_side_size(img.width, img.height, scale)
            if target != img.size:
                img = img.resize(target, resample)
        elif img.size != (self.crop_w, self.crop_h) and (img.width < self.crop_w or img.height < self.crop_h):
            img = img.resize((self.crop_w, self.crop_h), resample)
        return center_crop(img, self.crop_h, self.crop_w)

    def crop(self, img) -> np.ndarray:
        """Decoded PIL image -> the model-sized uint8 HWC crop (what the preprocessed-image cache keeps)."""
        return np.asarray(self.geometry(img), dtype=np.uint8)

    def normalize_batch(self, crops: np.ndarray) -> np.ndarray:
        """uint8 NHWC -> float32 NCHW, (x / 255 - mean) / std in float32 like torchvision, element for element."""
        arr = np.ascontiguousarray(np.asarray(crops, dtype=np.uint8).transpose(0, 3, 1, 2), dtype=np.float32)
        arr /= np.float32(255.0)
        arr -= self._mean
        arr /= self._std
        return arr

    def cache_key(self) -> dict:
        """What decides a crop: the geometry, not the normalisation (so models sharing a crop share the cache)."""
        c = self.config
        return {
            "resize": self.resize,
            "size": c.resize_size,
            "crop": [self.crop_h, self.crop_w],
            "interpolation": c.interpolation,
            "crop_mode": c.crop_mode,
        }

    def __call__(self, img) -> np.ndarray:
        """One decoded PIL image -> float32 CHW, normalised."""
        return self.normalize_batch(self.crop(img)[None])[0]


def center_crop(img, crop_h: int, crop_w: int):
    """torchvision's CenterCrop on a PIL image (zero padding when the crop is larger than the image)."""
    from PIL import Image

    if img.width < crop_w or img.height < crop_h:
        padded = Image.new(img.mode, (max(img.width, crop_w), max(img.height, crop_h)))
        left = (crop_w - img.width) // 2 if img.width < crop_w else 0
        top = (crop_h - img.height) // 2 if img.height < crop_h else 0
        padded.paste(img, (left, top))
        img = padded
        if img.size == (crop_w, crop_h):
            return img
    top = int(round((img.height - crop_h) / 2.0))
    left = int(round((img.width - crop_w) / 2.0))
    return img.crop((left, top, left + crop_w, top + crop_h))
