"""The project's own ImageNet-C corruptions (15 benchmark + 4 extra), with the official severity parameters.

Each function takes a 224 x 224 x 3 uint8-range float image in [0, 255] and a numpy Generator, and returns a
float array in [0, 255]. Where the official code used ImageMagick (motion blur, snow) or shipped texture files
(frost), this module has its own equivalents: a one-sided Gaussian line kernel for motion blur and seeded
procedural frost textures. Results on synthesized sets are labelled as such; the released ImageNet-C JPEGs
are preferred whenever a user has them.

Long because it holds the 19 corruptions with their official parameter tables, side by side.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from scipy import ndimage

SIZE = 224

GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)
SHOT_NOISE = (60, 25, 12, 5, 3)
IMPULSE_NOISE = (0.03, 0.06, 0.09, 0.17, 0.27)
SPECKLE_NOISE = (0.15, 0.2, 0.35, 0.45, 0.6)
GAUSSIAN_BLUR = (1, 2, 3, 4, 6)
GLASS_BLUR = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))
DEFOCUS_BLUR = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
MOTION_BLUR = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))
ZOOM_BLUR = (
    np.arange(1, 1.11, 0.01),
    np.arange(1, 1.16, 0.01),
    np.arange(1, 1.21, 0.02),
    np.arange(1, 1.26, 0.02),
    np.arange(1, 1.31, 0.03),
)
SNOW = (
    (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
    (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
    (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
)
FROST = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
FOG = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
SATURATE = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))
SPATTER = (
    (0.65, 0.3, 4, 0.69, 0.6, 0),
    (0.65, 0.3, 3, 0.68, 0.6, 0),
    (0.65, 0.3, 2, 0.68, 0.5, 0),
    (0.65, 0.3, 1, 0.65, 1.5, 1),
    (0.67, 0.4, 1, 0.65, 1.5, 1),
)
JPEG_QUALITY = (25, 18, 15, 10, 7)
PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)
ELASTIC = ((244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2), (244 * 0.05, 244 * 0.01, 244 * 0.02),
           (244 * 0.07, 244 * 0.01, 244 * 0.02), (244 * 0.12, 244 * 0.01, 244 * 0.02))  # fmt: skip


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) / 255.0


def _out(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 1) * 255.0


def gaussian_noise(x, severity, rng):
    x = _unit(x)
    return _out(x + rng.normal(size=x.shape, scale=GAUSSIAN_NOISE[severity - 1]))


def shot_noise(x, severity, rng):
    c = SHOT_NOISE[severity - 1]
    return _out(rng.poisson(_unit(x) * c) / c)


def impulse_noise(x, severity, rng):
    """Salt and pepper on a fraction `amount` of the values, half salt, half pepper."""
    x = _unit(x).copy()
    amount = IMPULSE_NOISE[severity - 1]
    hit = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < 0.5
    x[hit & salt] = 1.0
    x[hit & ~salt] = 0.0
    return _out(x)


def speckle_noise(x, severity, rng):
    x = _unit(x)
    return _out(x + x * rng.normal(size=x.shape, scale=SPECKLE_NOISE[severity - 1]))


def _blur(x, sigma):
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="reflect")


def gaussian_blur(x, severity, rng):
    return _out(_blur(_unit(x), GAUSSIAN_BLUR[severity - 1]))


def glass_blur(x, severity, rng):
    """Blur, then swap each pixel with a random neighbour within delta, `iterations` times, then blur again."""
    sigma, delta, iterations = GLASS_BLUR[severity - 1]
    img = _blur(_unit(x), sigma)
    h, w = img.shape[:2]
    for _ in range(iterations):
        offsets = rng.integers(-delta, delta, size=(h, w, 2))
        for row in range(h - delta, delta, -1):
            for col in range(w - delta, delta, -1):
                dy, dx = offsets[row, col]
                r2, c2 = row + dy, col + dx
                img[row, col], img[r2, c2] = img[r2, c2].copy(), img[row, col].copy()
    return _out(_blur(img, sigma))


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    if radius <= 8:
        span, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        span, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(span, span)
    kernel = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    kernel /= kernel.sum()
    return ndimage.gaussian_filter(kernel, sigma=alias_blur, truncate=(ksize[0] // 2) / max(alias_blur, 1e-6))


def _convolve(x, kernel):
    return np.stack([ndimage.convolve(x[..., ch], kernel, mode="reflect") for ch in range(x.shape[2])], axis=2)


def defocus_blur(x, severity, rng):
    radius, alias = DEFOCUS_BLUR[severity - 1]
    return _out(_convolve(_unit(x), _disk(radius, alias)))


def _motion_kernel(radius: int, sigma: float, angle_deg: float) -> np.ndarray:
    """One-sided Gaussian-weighted line (ImageMagick-style motion blur) at an angle."""
    size = 2 * radius + 1
    kernel = np.zeros((size, size))
    theta = np.deg2rad(angle_deg)
    for step in range(radius + 1):
        weight = np.exp(-(step**2) / (2 * sigma**2))
        col = int(round(radius + step * np.cos(theta)))
        row = int(round(radius - step * np.sin(theta)))
        kernel[row, col] += weight
    return kernel / kernel.sum()


def motion_blur(x, severity, rng):
    radius, sigma = MOTION_BLUR[severity - 1]
    return _out(_convolve(_unit(x), _motion_kernel(radius, sigma, rng.uniform(-45, 45))))


def _clipped_zoom(img, factor):
    h = img.shape[0]
    ch = int(np.ceil(h / factor))
    top = (h - ch) // 2
    zoomed = ndimage.zoom(img[top : top + ch, top : top + ch], (factor, factor, 1), order=1)
    trim = (zoomed.shape[0] - h) // 2
    return zoomed[trim : trim + h, trim : trim + h]


def zoom_blur(x, severity, rng):
    img = _unit(x)
    out = np.zeros_like(img)
    for factor in ZOOM_BLUR[severity - 1]:
        out += _clipped_zoom(img, factor)
    return _out((img + out) / (len(ZOOM_BLUR[severity - 1]) + 1))


def _gray(img):
    return img @ np.array([0.299, 0.587, 0.114])


def snow(x, severity, rng):
    loc, scale, zoom, threshold, radius, sigma, blend = SNOW[severity - 1]
    img = _unit(x)
    layer = rng.normal(size=img.shape[:2], loc=loc, scale=scale)
    layer = _clipped_zoom(layer[..., None], zoom)[..., 0]
    layer[layer < threshold] = 0
    layer = ndimage.convolve(np.clip(layer, 0, 1), _motion_kernel(int(radius), sigma, rng.uniform(-135, -45)))
    layer = layer[..., None]
    img = blend * img + (1 - blend) * np.maximum(img, _gray(img)[..., None] * 1.5 + 0.5)
    return _out(img + layer + np.rot90(layer, k=2))


def _frost_texture(rng, size: int) -> np.ndarray:
    """A seeded procedural frost texture in [0, 1]: branching crystal strokes on a faint haze."""
    canvas = np.zeros((size, size))
    for _ in range(int(size * 1.2)):
        r, c = rng.integers(0, size, 2).astype(float)
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(8, 40))):
            angle += rng.normal(0, 0.35)
            r, c = r + np.sin(angle), c + np.cos(angle)
            if 0 <= r < size and 0 <= c < size:
                canvas[int(r), int(c)] = 1.0
    texture = ndimage.gaussian_filter(canvas, 0.8) * 2.5 + ndimage.gaussian_filter(rng.random((size, size)), 6)
    texture = np.clip(texture / texture.max(), 0, 1)
    tint = np.array([0.85, 0.92, 1.0])
    return texture[..., None] * tint


def frost(x, severity, rng):
    weight_img, weight_frost = FROST[severity - 1]
    return _out(weight_img * _unit(x) + weight_frost * _frost_texture(rng, x.shape[0]))


def _plasma(rng, size: int = 256, decay: float = 3.0) -> np.ndarray:
    """Diamond-square plasma fractal in [0, 1] (the fog pattern)."""
    grid = np.zeros((size, size))
    step, scale = size, 100.0
    while step >= 2:
        half = step // 2
        corners = grid[0:size:step, 0:size:step]
        centres = (
            corners + np.roll(corners, -1, 0) + np.roll(corners, -1, 1) + np.roll(np.roll(corners, -1, 0), -1, 1)
        ) / 4
        grid[half:size:step, half:size:step] = centres + rng.uniform(-scale, scale, centres.shape)
        a = grid[0:size:step, 0:size:step]
        b = grid[half:size:step, half:size:step]
        left = (a + np.roll(a, -1, 1) + b + np.roll(b, 1, 0)) / 4
        grid[0:size:step, half:size:step] = left + rng.uniform(-scale, scale, left.shape)
        top = (a + np.roll(a, -1, 0) + b + np.roll(b, 1, 1)) / 4
        grid[half:size:step, 0:size:step] = top + rng.uniform(-scale, scale, top.shape)
        step, scale = half, scale / decay
    grid -= grid.min()
    return grid / max(grid.max(), 1e-12)


def fog(x, severity, rng):
    strength, decay = FOG[severity - 1]
    img = _unit(x)
    peak = img.max()
    layer = _plasma(rng, 256, decay)[: img.shape[0], : img.shape[1]][..., None]
    return _out((img + strength * layer) * peak / (peak + strength))


def _rgb_to_hsv(img):
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    v = img.max(axis=2)
    delta = v - img.min(axis=2)
    s = np.where(v > 0, delta / np.where(v > 0, v, 1), 0)
    safe = np.where(delta > 0, delta, 1)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = np.where(delta > 0, (h / 6) % 1, 0)
    return np.stack([h, s, v], axis=2)


def _hsv_to_rgb(hsv):
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [np.stack(c, axis=2) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    return np.choose(i[..., None], choices)


def brightness(x, severity, rng):
    hsv = _rgb_to_hsv(_unit(x))
    hsv[..., 2] = np.clip(hsv[..., 2] + BRIGHTNESS[severity - 1], 0, 1)
    return _out(_hsv_to_rgb(hsv))


def saturate(x, severity, rng):
    scale, shift = SATURATE[severity - 1]
    hsv = _rgb_to_hsv(_unit(x))
    hsv[..., 1] = np.clip(hsv[..., 1] * scale + shift, 0, 1)
    return _out(_hsv_to_rgb(hsv))


def contrast(x, severity, rng):
    img = _unit(x)
    means = img.mean(axis=(0, 1), keepdims=True)
    return _out((img - means) * CONTRAST[severity - 1] + means)


def _pil(x):
    from PIL import Image

    return Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))


def jpeg_compression(x, severity, rng):
    from PIL import Image

    buffer = io.BytesIO()
    _pil(x).save(buffer, "JPEG", quality=JPEG_QUALITY[severity - 1])
    return np.asarray(Image.open(buffer), dtype=np.float64)


def pixelate(x, severity, rng):
    from PIL import Image

    img = _pil(x)
    small = img.resize((int(img.width * PIXELATE[severity - 1]),) * 2, Image.BOX)
    return np.asarray(small.resize(img.size, Image.BOX), dtype=np.float64)


def elastic_transform(x, severity, rng):
    """Random affine jitter, then a smooth random displacement field (official parameters, 244 quirk kept)."""
    alpha, sigma, affine = ELASTIC[severity - 1]
    img = _unit(x)
    h, w = img.shape[:2]
    centre = np.array([h, w]) / 2
    square = min(h, w) // 3
    src = np.array([centre + square, [centre[0] + square, centre[1] - square], centre - square], dtype=np.float64)
    dst = src + rng.uniform(-affine, affine, size=src.shape)
    matrix = np.linalg.lstsq(np.c_[dst, np.ones(3)], src, rcond=None)[0].T  # output -> input coordinates
    warped = np.stack(
        [ndimage.affine_transform(img[..., ch], matrix[:, :2], offset=matrix[:, 2], mode="reflect") for ch in range(3)],
        axis=2,
    )
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect") * alpha
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect") * alpha
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = [np.clip(rows + dy, 0, h - 1), np.clip(cols + dx, 0, w - 1)]
    out = np.stack(
        [ndimage.map_coordinates(warped[..., ch], coords, order=1, mode="reflect") for ch in range(3)], axis=2
    )
    return _out(out)


def spatter(x, severity, rng):
    """Liquid (severities 1-3: glossy drops) or mud (4-5: brown splashes) over the image."""
    loc, scale, sigma, threshold, intensity, mode = SPATTER[severity - 1]
    img = _unit(x)
    liquid = ndimage.gaussian_filter(rng.normal(size=img.shape[:2], loc=loc, scale=scale), sigma)
    liquid[liquid < threshold] = 0
    if mode == 0:
        mask = np.clip((liquid > 0) * 1.0, 0, 1)
        mask = ndimage.gaussian_filter(mask, 1.5) * intensity
        colour = np.array([175 / 255, 238 / 255, 238 / 255])
        return _out(img + mask[..., None] * colour * 0.5)
    mask = (liquid >= threshold).astype(np.float64)
    mask = ndimage.gaussian_filter(mask, 0.8)[..., None]
    mud = np.array([63 / 255, 42 / 255, 20 / 255]) * mask
    return _out(img * (1 - mask) + mud)


CORRUPTIONS: dict[str, Callable] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "glass_blur": glass_blur, "motion_blur": motion_blur, "zoom_blur": zoom_blur,
    "snow": snow, "frost": frost, "fog": fog, "brightness": brightness,
    "contrast": contrast, "elastic_transform": elastic_transform, "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
    "speckle_noise": speckle_noise, "gaussian_blur": gaussian_blur, "spatter": spatter, "saturate": saturate,
}  # fmt: skip


def corrupt(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """Apply one corruption at severity 1..5 to a 224 x 224 RGB image; returns uint8 (truncated like the official
    `np.uint8(img)` before saving)."""
    from benchbox.errors import unknown_name

    if name not in CORRUPTIONS:
        raise unknown_name("corruption", name, CORRUPTIONS)
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"severity must be 1..5, got {severity}")
    rng = np.random.default_rng(seed)
    out = CORRUPTIONS[name](np.asarray(image, dtype=np.float64), severity, rng)
    return np.uint8(np.clip(out, 0, 255))
