"""Behaviours of the official ImageNet-C/P generators that benchbox's synthesis reproduces, pinned on small arrays.

Each test states the reference behaviour in plain numbers (hand-computed or from a literal loop written here), so
a change that drifts from the official generator fails here before it moves anybody's mCE.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchbox.datasets import corruptions as C
from benchbox.datasets import perturbations as P


class _HighRng:
    """A stand-in Generator whose uniform() returns its upper bound and records the bounds it was asked for."""

    def __init__(self):
        self.bounds = []

    def uniform(self, low, high, size):
        self.bounds.append((low, high))
        return np.full(size, float(high))


def test_plasma_perturbation_is_wibble_squared_falling_by_decay_squared():
    # size 4, decay 2, every draw at its upper bound: octave 1 adds 100 * 100, octave 2 adds 50 * 50
    rng = _HighRng()
    grid = C._plasma(rng, size=4, decay=2.0)
    expected = np.array(
        [
            [0, 12500, 15000, 12500],
            [12500, 12500, 15000, 12500],
            [15000, 15000, 10000, 15000],
            [12500, 12500, 15000, 12500],
        ]
    )
    np.testing.assert_allclose(grid, expected / 15000)
    assert [b[1] for b in rng.bounds] == [100, 100, 100, 50, 50, 50]


def _glass_loop(img: np.ndarray, delta: int, offsets: np.ndarray) -> np.ndarray:
    """The reference's scan, literally: x[h, w] takes the current value at (h + dy, w + dx)."""
    x = img.copy()
    h, w = x.shape[:2]
    k = 0
    for row in range(h - delta, delta, -1):
        for col in range(w - delta, delta, -1):
            dx, dy = offsets[k]
            k += 1
            x[row, col] = x[row + dy, col + dx].copy()
    return x


@pytest.mark.parametrize("delta", [1, 2, 3, 4])
def test_glass_pass_copies_like_the_sequential_scan(delta):
    rng = np.random.default_rng(delta)
    img = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
    offsets = rng.integers(-delta, delta, size=((20 - 2 * delta) ** 2, 2))
    np.testing.assert_array_equal(C.glass_pass(img, delta, offsets), _glass_loop(img, delta, offsets))


def test_glass_pass_is_a_copy_not_a_swap():
    img = np.arange(36, dtype=np.uint8).reshape(6, 6, 1)
    offsets = np.zeros(((6 - 2) ** 2, 2), dtype=int)
    offsets[0] = (0, -1)  # the first visited pixel (5, 5) reads (4, 5); a swap would also change (4, 5)
    out = C.glass_pass(img, 1, offsets)
    assert out[5, 5, 0] == img[4, 5, 0]
    assert out[4, 5, 0] == img[4, 5, 0]


def test_motion_kernel_has_two_r_plus_one_gaussian_taps():
    weights, dx, dy = C.motion_taps(10, 3, 0.0)
    assert len(weights) == 21
    raw = np.exp(-(np.arange(21) ** 2) / 18.0)
    np.testing.assert_allclose(weights, raw / raw.sum())
    assert list(dx) == list(range(21)) and set(dy) == {0}
    _, dx90, dy90 = C.motion_taps(2, 1, 90.0)
    assert set(dx90) == {0} and list(dy90) == [0, 1, 2, 3, 4]  # positive angles point down the image


def test_motion_blur_image_smears_an_impulse_along_its_taps_with_imagemagick_rounding():
    img = np.zeros((12, 12), dtype=np.uint8)
    img[6, 6] = 255
    out = C.motion_blur_image(img, 2, 1.0, 0.0)
    raw = np.exp(-(np.arange(5) ** 2) / 2.0)
    expected = np.floor(np.rint(255 * 257 * raw / raw.sum()) / 257)  # 16-bit quantum, then 8 bits
    assert list(out[6, 2:7][::-1]) == list(expected)  # tap i reads x + i, so the impulse spreads to x - i
    assert out.dtype == np.uint8 and out[5].sum() == 0


def test_motion_blur_repeats_the_edge():
    img = np.zeros((4, 8), dtype=np.uint8)
    img[:, -1] = 200
    out = C.motion_blur_image(img, 3, 2.0, 0.0)
    assert (out[:, -1] == 200).all()  # every tap past the border reads the edge pixel


def test_mud_mask_drops_values_under_point_eight():
    field = np.zeros((40, 40))
    field[5, 5] = 1.0  # a lone speck: blurred well under 0.8, so no mud
    field[15:35, 15:35] = 1.0  # a large splash: its interior stays mud
    mask = C.mud_mask(field, 0.65, 1.5)
    assert mask[:10, :10].max() == 0
    assert mask[25, 25] == pytest.approx(1.0)
    assert mask[mask > 0].min() >= 0.8


def test_liquid_spatter_is_zero_off_the_drops_and_pale_turquoise_on_them():
    x = np.full((224, 224, 3), 64.0)
    out = C.spatter(x, 1, np.random.default_rng(3))
    added = out - x
    changed = added.max(axis=2) > 0
    assert changed.any() and not changed.all()
    ratio = added[..., 0][changed] / np.maximum(added[..., 1][changed], 1e-9)
    np.testing.assert_allclose(ratio, 175 / 238, rtol=1e-5)


def test_frost_uses_an_official_photograph_crop():
    import cv2

    paths = C.frost_photo_paths()
    assert [p.rsplit("/", 1)[-1] for p in paths] == list(C.FROST_FILES)
    x = np.zeros((224, 224, 3))
    out = C.frost(x, 1, np.random.default_rng(11))
    replay = np.random.default_rng(11)
    photo = cv2.imread(paths[int(replay.integers(5))])[..., ::-1]
    top, left = int(replay.integers(0, photo.shape[0] - 224)), int(replay.integers(0, photo.shape[1] - 224))
    np.testing.assert_allclose(out, 0.4 * photo[top : top + 224, left : left + 224])


def test_missing_frost_package_is_a_clear_error(monkeypatch):
    from benchbox.errors import UserError

    monkeypatch.setattr(C, "FROST_PACKAGE", "no_such_package_for_frost")
    with pytest.raises(UserError, match="no_such_package_for_frost"):
        C.frost_photo_paths()


def test_defocus_kernel_sums_slightly_over_one_like_opencv_reflect_border():
    kernel = C._disk(3, 0.1)
    assert kernel.shape == (17, 17)
    assert kernel.sum() == pytest.approx(1.0, abs=0.02)


def test_p_snow_uses_imagenet_p_parameters():
    assert P.P_SNOW == {"loc": 0.05, "scale": 0.3, "zoom": 3, "threshold": 0.5, "radius": 14, "sigma": 4, "blend": 0.85}
    img = np.full((256, 256, 3), 100, dtype=np.uint8)
    frames = P.snow(img, np.random.default_rng(0))
    assert len(frames) == 31 and frames[0].shape == (224, 224, 3)
    # blend 0.85 of the image with 0.15 of its brightened grey: 0.85 * 100/255 + 0.15 * (1.5 * 100/255 + 0.5)
    base = 0.85 * 100 / 255 + 0.15 * (1.5 * 100 / 255 + 0.5)
    assert np.median(frames[0]) == int(base * 255)
