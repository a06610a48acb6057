"""The project's own ImageNet-C corruptions (15 benchmark + 4 extra), with the official severity parameters.

Each function takes a 224 x 224 x 3 uint8-range float image in [0, 255] and a numpy Generator, and returns a
float array in [0, 255]. The behaviour follows the official generator (hendrycks/robustness make_imagenet_c.py),
measured side by side with benchmarks/c_fidelity.py: ImageMagick's motion blur is reimplemented here (2r+1
Gaussian taps along the line, edge pixels repeated, 8-bit output), frost uses the official photographs (shipped
in the `imagecorruptions` wheel, read as files), spatter uses OpenCV's edge/distance shading. Results on
synthesized sets are labelled as such; the released ImageNet-C JPEGs are preferred whenever a user has them.

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
    # the reference's skimage.filters.gaussian: edge pixels repeated, truncated at 4 sigma
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)


def gaussian_blur(x, severity, rng):
    return _out(_blur(_unit(x), GAUSSIAN_BLUR[severity - 1]))


def glass_pass(img: np.ndarray, delta: int, offsets: np.ndarray) -> np.ndarray:
    """One pixel-shuffling pass of glass blur, vectorized.

    The reference scans rows and columns from `size - delta` down to `delta + 1` and, for each pixel, assigns the
    value found at (row + dy, col + dx). Its tuple "swap" on numpy views is in effect this copy, so a value can be
    carried along several steps of the scan: when the source pixel was written earlier in the scan, the pixel
    receives the source's new value. Each pixel is written once per pass, so following the chain of sources back
    to the first one not yet written gives the same result as the sequential loop. `offsets` holds (dx, dy) per
    visited pixel, in scan order.
    """
    h, w = img.shape[:2]
    rows = np.arange(h - delta, delta, -1)
    cols = np.arange(w - delta, delta, -1)
    grid_r, grid_c = (a.ravel() for a in np.meshgrid(rows, cols, indexing="ij"))
    src_r, src_c = grid_r + offsets[:, 1], grid_c + offsets[:, 0]
    order = np.full((h, w), -1, dtype=np.int64)  # scan position of each visited pixel, -1 elsewhere
    order[grid_r, grid_c] = np.arange(grid_r.size)
    src_order = order[src_r, src_c]
    written_before = (src_order >= 0) & (src_order < np.arange(grid_r.size))
    # pointer doubling: follow `jump` until a pixel whose source was still unwritten when it was read
    jump = np.where(written_before, src_order, np.arange(grid_r.size))
    while True:
        nxt = jump[jump]
        if np.array_equal(nxt, jump):
            break
        jump = nxt
    out = img.copy()
    out[grid_r, grid_c] = img[src_r[jump], src_c[jump]]
    return out


def glass_blur(x, severity, rng):
    """Blur, 8-bit quantize, shuffle pixels locally `iterations` times (see glass_pass), blur again."""
    sigma, delta, iterations = GLASS_BLUR[severity - 1]
    img = np.uint8(_blur(_unit(x), sigma) * 255)
    visited = (img.shape[0] - 2 * delta) * (img.shape[1] - 2 * delta)
    for _ in range(iterations):
        img = glass_pass(img, delta, rng.integers(-delta, delta, size=(visited, 2)))
    return _out(_blur(img / 255.0, sigma))


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    import cv2

    if radius <= 8:
        span, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        span, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(span, span)
    kernel = ((xx**2 + yy**2) <= radius**2).astype(np.float32)
    kernel /= kernel.sum()
    # OpenCV's antialiasing blur, whose reflected border lets the kernel sum to slightly more than 1 (as the reference)
    return cv2.GaussianBlur(kernel, ksize=ksize, sigmaX=alias_blur)


def _convolve(x, kernel):
    import cv2

    return np.stack([cv2.filter2D(x[..., ch], -1, kernel) for ch in range(x.shape[2])], axis=2)


def defocus_blur(x, severity, rng):
    radius, alias = DEFOCUS_BLUR[severity - 1]
    return _out(_convolve(_unit(x), _disk(radius, alias)))


def motion_taps(radius: float, sigma: float, angle_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ImageMagick's MotionBlurImage kernel: weights and (dx, dy) offsets of its 2 * ceil(radius) + 1 taps.

    Tap i weighs exp(-i^2 / 2 sigma^2) (normalized) and reads the pixel at
    (x + ceil(i cos a - 0.5), y + ceil(i sin a - 0.5)), y growing downwards.
    """
    width = 2 * int(np.ceil(radius)) + 1
    steps = np.arange(width, dtype=np.float64)
    weights = np.exp(-(steps**2) / (2 * sigma**2))
    theta = np.deg2rad(angle_deg)
    dx = np.ceil(steps * np.cos(theta) - 0.5).astype(int)
    dy = np.ceil(steps * np.sin(theta) - 0.5).astype(int)
    return weights / weights.sum(), dx, dy


def motion_blur_image(img: np.ndarray, radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """Motion blur of an 8-bit image (H x W or H x W x C) as ImageMagick computes it; returns uint8.

    Pixels beyond the border repeat the edge (ImageMagick's default virtual pixels); the sum is rounded to
    ImageMagick's 16-bit quantum, then truncated to the 8 bits of the PNG the reference reads back (this matches
    ImageMagick 6 Q16 byte for byte at any angle, measured by benchmarks/c_fidelity.py).
    """
    weights, dxs, dys = motion_taps(radius, sigma, angle_deg)
    h, w = img.shape[:2]
    rows, cols = np.arange(h), np.arange(w)
    out = np.zeros(img.shape, dtype=np.float64)
    for weight, dx, dy in zip(weights, dxs, dys):
        out += weight * img[np.clip(rows + dy, 0, h - 1)][:, np.clip(cols + dx, 0, w - 1)]
    return np.uint8(np.clip(np.floor(np.rint(out * 257) / 257), 0, 255))


def motion_blur(x, severity, rng):
    radius, sigma = MOTION_BLUR[severity - 1]
    return motion_blur_image(np.uint8(np.clip(x, 0, 255)), radius, sigma, rng.uniform(-45, 45)).astype(np.float64)


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


def snow_layer(rng, loc: float, scale: float, zoom: float, threshold: float) -> np.ndarray:
    """The 8-bit snowflake layer before motion blur: zoomed Gaussian noise, thresholded."""
    layer = rng.normal(size=(SIZE, SIZE), loc=loc, scale=scale)
    layer = _clipped_zoom(layer[..., None], zoom)[..., 0]
    layer[layer < threshold] = 0
    return (np.clip(layer, 0, 1) * 255).astype(np.uint8)


def snow_frame(img: np.ndarray, flakes: np.ndarray, blend: float) -> np.ndarray:
    """Greyed, brightened image plus the (blurred, [0, 1]) snow layer and its 180-degree rotation, in [0, 1]."""
    img = blend * img + (1 - blend) * np.maximum(img, _gray(img)[..., None] * 1.5 + 0.5)
    layer = flakes[..., None]
    return np.clip(img + layer + np.rot90(layer, k=2), 0, 1)


def snow(x, severity, rng):
    loc, scale, zoom, threshold, radius, sigma, blend = SNOW[severity - 1]
    flakes = snow_layer(rng, loc, scale, zoom, threshold)
    flakes = motion_blur_image(flakes, radius, sigma, rng.uniform(-135, -45)) / 255.0
    return _out(snow_frame(_unit(x).astype(np.float32), flakes, blend))


# The reference draws among the first five photographs only (randint(5)); the sixth ships but is never used.
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
FROST_PACKAGE = "imagecorruptions"


def frost_photo_paths() -> list[str]:
    """The official frost photographs, found inside the installed `imagecorruptions` wheel without importing it
    (its import fails on current scikit-image; only its files are used)."""
    import importlib.util
    import os

    from benchbox.errors import UserError

    spec = importlib.util.find_spec(FROST_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    paths = [os.path.join(folders[0], "frost", name) for name in FROST_FILES] if folders else []
    if not paths or not all(os.path.isfile(p) for p in paths):
        raise UserError(
            f"The official frost photographs were not found (they come with the '{FROST_PACKAGE}' package).",
            f"Reinstall benchbox's dependencies: pip install {FROST_PACKAGE}",
        )
    return paths


_FROST_CACHE: dict[str, np.ndarray] = {}


def _frost_photo(path: str) -> np.ndarray:
    import cv2

    if path not in _FROST_CACHE:
        _FROST_CACHE[path] = cv2.imread(path)[..., ::-1]  # OpenCV reads BGR, as the reference did
    return _FROST_CACHE[path]


def frost(x, severity, rng):
    """A random 224 x 224 crop of one of the official frost photographs, added with the severity's weights."""
    weight_img, weight_frost = FROST[severity - 1]
    photo = _frost_photo(frost_photo_paths()[int(rng.integers(len(FROST_FILES)))])
    top = int(rng.integers(0, photo.shape[0] - SIZE))
    left = int(rng.integers(0, photo.shape[1] - SIZE))
    layer = photo[top : top + SIZE, left : left + SIZE].astype(np.float64)
    return np.clip(weight_img * np.asarray(x, dtype=np.float64) + weight_frost * layer, 0, 255)


def _plasma(rng, size: int = 256, decay: float = 3.0) -> np.ndarray:
    """Diamond-square plasma fractal in [0, 1] (the fog pattern).

    Each new point is the mean of its neighbours plus `wibble * uniform(-wibble, wibble)`: the reference's
    amplitude is wibble squared (10^4 at the first octave) and falls by decay squared per octave, which is what
    makes fog smooth clouds rather than mottled haze.
    """
    grid = np.zeros((size, size))
    step, wibble = size, 100.0

    def perturbed_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = grid[0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, 0)
        square = square + np.roll(square, -1, 1)
        grid[half:size:step, half:size:step] = perturbed_mean(square)
        a = grid[0:size:step, 0:size:step]
        b = grid[half:size:step, half:size:step]
        grid[0:size:step, half:size:step] = perturbed_mean(a + np.roll(a, -1, 1) + b + np.roll(b, 1, 0))
        grid[half:size:step, 0:size:step] = perturbed_mean(a + np.roll(a, -1, 0) + b + np.roll(b, 1, 1))
        step, wibble = half, wibble / decay
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


SPATTER_EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64)


def liquid_shading(liquid: np.ndarray) -> np.ndarray:
    """Glossy-drop shading of an 8-bit liquid mask: distance to the drops' edges (Canny), truncated at 20,
    smoothed, histogram-equalized, embossed and smoothed again (OpenCV, 8-bit steps as the reference)."""
    import cv2

    dist = cv2.distanceTransform(255 - cv2.Canny(liquid, 50, 150), cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
    dist = cv2.filter2D(dist, cv2.CV_8U, SPATTER_EMBOSS)
    return cv2.blur(dist, (3, 3)).astype(np.float32)


def mud_mask(liquid: np.ndarray, threshold: float, sigma: float) -> np.ndarray:
    """Where mud covers the image: the thresholded field, blurred by `sigma`, with values under 0.8 dropped."""
    mask = ndimage.gaussian_filter((liquid > threshold).astype(np.float32), sigma, mode="nearest", truncate=4.0)
    mask[mask < 0.8] = 0
    return mask


def spatter(x, severity, rng):
    """Liquid (severities 1-3: pale turquoise glossy drops) or mud (4-5: brown splashes) over the image."""
    loc, scale, sigma, threshold, intensity, mode = SPATTER[severity - 1]
    img = _unit(x).astype(np.float32)
    liquid = rng.normal(size=img.shape[:2], loc=loc, scale=scale)
    liquid = ndimage.gaussian_filter(liquid, sigma, mode="nearest", truncate=4.0)
    liquid[liquid < threshold] = 0
    if mode == 0:
        liquid8 = (liquid * 255).astype(np.uint8)
        shade = liquid8 * liquid_shading(liquid8)
        shade = shade / max(float(shade.max()), 1e-12) * intensity
        colour = np.array([175, 238, 238], dtype=np.float32) / 255
        return _out(img + shade[..., None] * colour)
    mask = mud_mask(liquid, threshold, intensity)[..., None]
    mud = np.array([63, 42, 20], dtype=np.float32) / 255
    return _out(img * (1 - mask) + mud * mask)


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
