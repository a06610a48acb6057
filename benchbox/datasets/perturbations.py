"""The project's own ImageNet-P perturbation sequences (10 test + 4 validation), official frame parameters.

Frames start from Resize(256) of the val image; geometric changes act on that image before CenterCrop(224),
as in the official generator. Each function returns a list of 224 x 224 x 3 uint8 frames.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from benchbox.datasets import corruptions as C

NOISE = ("gaussian_noise", "shot_noise", "speckle_noise")


def _crop(img: np.ndarray, size: int = 224) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img[top : top + size, left : left + size]


def _u8(x: np.ndarray) -> np.ndarray:
    return np.uint8(np.clip(x, 0, 255))


def _noise(img, rng, draw) -> list[np.ndarray]:
    x = _crop(img).astype(np.float64) / 255.0
    return [_u8(x * 255)] + [_u8(np.clip(draw(x, rng), 0, 1) * 255) for _ in range(30)]


def gaussian_noise(img, rng):
    return _noise(img, rng, lambda x, r: x + 0.03 * r.normal(size=x.shape))


def shot_noise(img, rng):
    return _noise(img, rng, lambda x, r: r.poisson(x * 300) / 300)


def speckle_noise(img, rng):
    return _noise(img, rng, lambda x, r: x + x * r.normal(size=x.shape, scale=0.05))


def motion_blur(img, rng):
    """ImageMagick-style motion blur (radius 10, sigma 3) swept from -120 to 0 degrees in 4-degree steps."""
    x = _crop(img)
    return [C.motion_blur_image(x, 10, 3, (i - 30) * 4) for i in range(31)]


def zoom_blur(img, rng):
    x = _crop(img).astype(np.float64) / 255.0
    frames, total = [_u8(x * 255)], x.copy()
    for i in range(1, 31):
        total += C._clipped_zoom(x, 1 + 0.004 * i)
        frames.append(_u8(total / (i + 1) * 255))
    return frames


# ImageNet-P's snow, not ImageNet-C's severity 1: sparser flakes, a longer streak, less greying.
P_SNOW = {"loc": 0.05, "scale": 0.3, "zoom": 3, "threshold": 0.5, "radius": 14, "sigma": 4, "blend": 0.85}


def snow(img, rng):
    """One 8-bit snow layer, motion-blurred at an angle turning 4 degrees per frame from -150."""
    x = _crop(img).astype(np.float32) / 255.0
    p = P_SNOW
    flakes = C.snow_layer(rng, p["loc"], p["scale"], p["zoom"], p["threshold"])
    frames = []
    for i in range(31):
        moving = C.motion_blur_image(flakes, p["radius"], p["sigma"], 4 * i - 150) / 255.0
        frames.append(_u8(C.snow_frame(x, moving, p["blend"]) * 255))
    return frames


def brightness(img, rng):
    hsv = C._rgb_to_hsv(_crop(img).astype(np.float64) / 255.0)
    frames = []
    for i in range(31):
        shifted = hsv.copy()
        shifted[..., 2] = np.clip(shifted[..., 2] + (i - 15) * 2 / 100, 0, 1)
        frames.append(_u8(C._hsv_to_rgb(shifted) * 255))
    return frames


def gaussian_blur(img, rng):
    x = _crop(img).astype(np.float64)
    return [_u8(C._blur(x, 0.25 + 0.035 * i)) for i in range(31)]


def spatter(img, rng):
    x = _crop(img).astype(np.float64) / 255.0
    liquid = ndimage.gaussian_filter(rng.normal(size=(224 + 62, 224), loc=0.65, scale=0.3), 3)
    frames = []
    for i in range(31):
        layer = liquid[2 * i : 2 * i + 224]
        mask = ndimage.gaussian_filter((layer > 0.68) * 1.0, 1.5)[..., None] * 0.6
        frames.append(_u8(np.clip(x + mask * np.array([175, 238, 238]) / 255 * 0.5, 0, 1) * 255))
    return frames


def _pil_frames(img, transform_for: Callable[[int], tuple], count: int = 31):
    from PIL import Image

    pil = Image.fromarray(img)
    frames = []
    for i in range(count):
        method, data = transform_for(i)
        frames.append(_crop(np.asarray(pil.transform(pil.size, method, data, Image.BILINEAR))))
    return frames


def _affine_about_centre(img, angle_deg=0.0, scale=1.0, shear_deg=0.0, shift=(0.0, 0.0)):
    from PIL import Image

    h, w = img.shape[:2]
    cx, cy = w / 2, h / 2
    a = np.deg2rad(angle_deg)
    sh = np.tan(np.deg2rad(shear_deg))
    forward = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.array([[1, sh], [0, 1]]) * scale
    inverse = np.linalg.inv(forward)
    offset = np.array([cx, cy]) - inverse @ (np.array([cx, cy]) + np.array(shift))
    return Image.AFFINE, (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])


def translate(img, rng):
    return _pil_frames(img, lambda i: _affine_about_centre(img, shift=(i - 20, 0)), count=41)


def rotate(img, rng):
    return _pil_frames(img, lambda i: _affine_about_centre(img, angle_deg=i - 15))


def scale(img, rng):
    return _pil_frames(img, lambda i: _affine_about_centre(img, scale=(2.5 * i + 40) / 100))


def shear(img, rng):
    return _pil_frames(img, lambda i: _affine_about_centre(img, shear_deg=i - 15))


def tilt(img, rng):
    """Perspective tilt by phi = theta = (i - 15) degrees about both axes."""
    from PIL import Image

    h, w = img.shape[:2]

    def coefficients(i):
        t = np.deg2rad(i - 15)
        dx, dy = w * 0.5 * np.sin(t) * 0.35, h * 0.5 * np.sin(t) * 0.35
        src = [(0, 0), (w, 0), (w, h), (0, h)]
        dst = [(0 + dx, 0 + dy), (w - dx, 0 - dy), (w + dx, h + dy), (0 - dx, h - dy)]
        rows = []
        for (x, y), (u, v) in zip(dst, src):
            rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
            rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs = np.array([c for pair in src for c in pair], dtype=np.float64)
        return Image.PERSPECTIVE, tuple(np.linalg.solve(np.array(rows, dtype=np.float64), rhs))

    return _pil_frames(img, coefficients)


PERTURBATIONS: dict[str, Callable] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "motion_blur": motion_blur,
    "zoom_blur": zoom_blur, "snow": snow, "brightness": brightness, "translate": translate, "rotate": rotate,
    "tilt": tilt, "scale": scale,
    "speckle_noise": speckle_noise, "gaussian_blur": gaussian_blur, "spatter": spatter, "shear": shear,
}  # fmt: skip


def perturb(resized_256: np.ndarray, name: str, seed: int) -> list[np.ndarray]:
    """Frames of one perturbation sequence for an image already resized so its shorter side is 256."""
    from benchbox.errors import unknown_name

    if name not in PERTURBATIONS:
        raise unknown_name("perturbation", name, PERTURBATIONS)
    return PERTURBATIONS[name](np.asarray(resized_256, dtype=np.uint8), np.random.default_rng(seed))
