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
    """Running mean of the 256 image scaled by 1 + 0.004 i about its centre (bilinear), then cropped."""
    zoomed = _pil_frames(img, lambda i: _affine_about_centre(img, scale=1 + 0.004 * i))  # scale 1: the plain crop
    total, frames = np.zeros(zoomed[0].shape, np.float32), [zoomed[0]]
    for i, frame in enumerate(zoomed):
        total += frame.astype(np.float32) / np.float32(255)  # the reference sums float32 tensors ...
        if i:
            frames.append((total / np.float32(i + 1) * np.float32(255)).astype(np.uint8))  # ... and truncates
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
    """skimage's gaussian as ImageNet-P calls it: on [0, 1] values, edges `nearest`, kernel cut at 6 sigma (not
    ImageNet-C's 4), then truncated to 8 bits."""
    x = _crop(img).astype(np.float64) / 255.0
    blur = lambda s: ndimage.gaussian_filter(x, sigma=(s, s, 0), mode="nearest", truncate=6.0)  # noqa: E731
    return [np.uint8(255 * blur(0.25 + 0.035 * i)) for i in range(31)]


# ImageNet-P's liquid spatter: one field, shaded as ImageNet-C's liquid spatter, running down the image.
P_SPATTER = {"loc": 0.65, "scale": 0.27, "sigma": 3.7, "threshold": 0.69, "intensity": 0.6}
SMEAR_KERNEL = (0.05, 0.1, 0.15, 0.7)  # weights of rows y + 1, y, y - 1, y - 2: drops move down ~2.5 rows a frame


def smear_down(field: np.ndarray) -> np.ndarray:
    """One step of the drops running down: each row becomes a weighted sum of itself, the row below and the two
    above (zero beyond the image), as the reference's per-column 'same' convolution."""
    padded = np.pad(field, ((2, 1), (0, 0)))
    h = field.shape[0]
    below, here, above, above2 = (padded[start : start + h] for start in (3, 2, 1, 0))
    k = SMEAR_KERNEL
    return k[0] * below + k[1] * here + k[2] * above + k[3] * above2


def spatter(img, rng):
    p = P_SPATTER
    x = _crop(img).astype(np.float32) / 255.0
    liquid = rng.normal(size=x.shape[:2], loc=p["loc"], scale=p["scale"])
    liquid = ndimage.gaussian_filter(liquid, p["sigma"], mode="nearest", truncate=4.0)
    liquid[liquid < p["threshold"]] = 0
    colour = np.array([175, 238, 238], dtype=np.float32) / 255
    frames = []
    for _ in range(31):
        liquid8 = (liquid * 255).astype(np.uint8)
        shade = liquid8 * C.liquid_shading(liquid8)
        shade = shade / max(float(shade.max()), 1e-12) * p["intensity"]
        frames.append(_u8(np.clip(x + shade[..., None] * colour, 0, 1) * 255))
        liquid = smear_down(liquid)
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
    # the reference's torchvision shear of (i - 15) degrees leans the image the other way from this helper's
    return _pil_frames(img, lambda i: _affine_about_centre(img, shear_deg=15 - i))


def tilt_homography(width: int, height: int, degrees: float) -> np.ndarray:
    """The image plane turned by `degrees` about its vertical and then its horizontal axis through the centre,
    seen by a pinhole camera at focal length sqrt(w^2 + h^2) set that far in front (the reference's model)."""
    a = np.deg2rad(degrees)
    focal = float(np.hypot(width, height))
    cos, sin = np.cos(a), np.sin(a)
    lift = np.array([[1, 0, -width / 2], [0, 1, -height / 2], [0, 0, 1], [0, 0, 1]])  # pixel -> centred 3D point
    about_y = np.array([[cos, 0, -sin, 0], [0, 1, 0, 0], [sin, 0, cos, 0], [0, 0, 0, 1]])
    about_x = np.array([[1, 0, 0, 0], [0, cos, -sin, 0], [0, sin, cos, 0], [0, 0, 0, 1]])
    push = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, focal], [0, 0, 0, 1]])
    project = np.array([[focal, 0, width / 2, 0], [0, focal, height / 2, 0], [0, 0, 1, 0]])
    return project @ push @ about_x @ about_y @ lift


def tilt(img, rng):
    """Perspective tilt by (i - 15) degrees about both axes, warped by OpenCV (bilinear, black border), cropped."""
    import cv2

    h, w = img.shape[:2]
    return [_crop(cv2.warpPerspective(img, tilt_homography(w, h, i - 15), (w, h))) for i in range(31)]


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
