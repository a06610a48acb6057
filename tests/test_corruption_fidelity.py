"""Behaviours of the official ImageNet-C/P generators that benchbox's synthesis reproduces, pinned on small arrays.

Each test states the reference behaviour in plain numbers (hand-computed or from a literal loop written here), so
a change that drifts from the official generator fails here before it moves anybody's mCE.
"""

from __future__ import annotations

import os

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
    assert C._disk(3, 0.1).shape == (17, 17)
    # the antialiasing blur reflects at the kernel's border, so severity 5's kernel sums to ~1.011 as the reference's
    # (a renormalized or zero-padded blur would give 1.000 or less)
    assert 1.005 < C._disk(10, 0.5).sum() < 1.02


def test_p_snow_uses_imagenet_p_parameters():
    assert P.P_SNOW == {"loc": 0.05, "scale": 0.3, "zoom": 3, "threshold": 0.5, "radius": 14, "sigma": 4, "blend": 0.85}
    img = np.full((256, 256, 3), 100, dtype=np.uint8)
    frames = P.snow(img, np.random.default_rng(0))
    assert len(frames) == 31 and frames[0].shape == (224, 224, 3)
    # blend 0.85 of the image with 0.15 of its brightened grey: 0.85 * 100/255 + 0.15 * (1.5 * 100/255 + 0.5)
    base = 0.85 * 100 / 255 + 0.15 * (1.5 * 100 / 255 + 0.5)
    assert np.median(frames[0]) == int(base * 255)


def _torchvision_affine_crop(img: np.ndarray, **kwargs) -> np.ndarray:
    """The reference's frame: torchvision's affine of the 256 image (bilinear), then CenterCrop(224)."""
    import torchvision.transforms.functional as TF
    from PIL import Image
    from torchvision.transforms import InterpolationMode

    out = TF.affine(Image.fromarray(img), interpolation=InterpolationMode.BILINEAR, **kwargs)
    return np.asarray(TF.center_crop(out, [224, 224]))


@pytest.fixture(scope="module")
def resized_256(sample_root):
    from PIL import Image

    from benchbox.datasets.transforms import shorter_side_size

    path = next(next(iter(sorted((sample_root / "val").iterdir()))).iterdir())
    img = Image.open(path).convert("RGB")
    return np.asarray(img.resize(shorter_side_size(img.width, img.height, 256), Image.BILINEAR))


def test_shear_frames_lean_like_torchvision(resized_256):
    frames = P.shear(resized_256, np.random.default_rng(0))
    # the reference passes shear=i-15 as a number: an x-shear only (a one-element list would shear y too)
    expected = _torchvision_affine_crop(resized_256, angle=0, translate=[0, 0], scale=1.0, shear=5.0)
    np.testing.assert_array_equal(frames[20], expected)


def test_p_zoom_blur_scales_the_256_image(resized_256):
    frames = P.zoom_blur(resized_256, np.random.default_rng(0))
    first = _torchvision_affine_crop(resized_256, angle=0, translate=[0, 0], scale=1.0, shear=0.0) / 255.0
    zoomed = _torchvision_affine_crop(resized_256, angle=0, translate=[0, 0], scale=1.004, shear=0.0) / 255.0
    expected = np.uint8(np.clip((first + zoomed) / 2 * 255, 0, 255))
    assert np.abs(frames[1].astype(int) - expected).max() <= 1


def test_p_zoom_blur_averages_like_the_reference_float32_tensors(resized_256):
    """The reference sums ToTensor() frames (float32) and saves ToPILImage(avg / (i + 1)): multiply by 255, then
    truncate. Equal to the byte on every pixel of every frame."""
    import torch
    from torchvision.transforms import functional as TF

    frames = P.zoom_blur(resized_256, np.random.default_rng(0))
    crops = [
        _torchvision_affine_crop(resized_256, angle=0, translate=[0, 0], scale=1 + 0.004 * i, shear=0.0)
        for i in range(31)
    ]
    total = TF.to_tensor(crops[0])
    np.testing.assert_array_equal(frames[0], crops[0])
    for i in range(1, 31):
        total += TF.to_tensor(crops[i])
        expected = np.asarray(TF.to_pil_image(total / (i + 1)))
        assert torch.is_floating_point(total)
        np.testing.assert_array_equal(frames[i], expected)


def test_p_gaussian_blur_is_skimage_with_a_six_sigma_kernel():
    gaussian = pytest.importorskip("skimage.filters").gaussian  # scikit-image comes with imagecorruptions

    img = np.random.default_rng(3).integers(0, 256, (256, 300, 3), dtype=np.uint8)
    frames = P.gaussian_blur(img, np.random.default_rng(0))
    crop = img[16:240, 38:262] / 255.0
    for i in (0, 10, 30):
        expected = np.uint8(255 * gaussian(crop, sigma=0.25 + 0.035 * i, channel_axis=-1, truncate=6.0))
        np.testing.assert_array_equal(frames[i], expected)


def test_smear_down_is_the_reference_column_convolution():
    field = np.random.default_rng(4).random((12, 5))
    reference = np.stack([np.convolve(field[:, j], np.array(P.SMEAR_KERNEL), mode="same") for j in range(5)], axis=1)
    np.testing.assert_allclose(P.smear_down(field), reference)


def test_p_spatter_drops_run_down_between_frames():
    img = np.full((256, 256, 3), 60, dtype=np.uint8)
    frames = P.spatter(img, np.random.default_rng(2))
    assert len(frames) == 31
    wet = [(f.astype(float) - 60).sum(axis=2) for f in (frames[0], frames[4])]
    assert wet[0].max() > 0
    # the kernel moves content 1.5 rows a frame on average: after 4 frames the pattern sits ~6 rows lower
    scores = [np.corrcoef(wet[0][: 224 - k].ravel(), wet[1][k:].ravel())[0, 1] for k in range(0, 16)]
    assert 3 <= int(np.argmax(scores)) <= 9, scores


def test_tilt_homography_keeps_the_centre_and_follows_the_pinhole_model():
    # at 0 degrees the reference is not the identity: pixels are lifted to depth 1, so the image shrinks by f/(f+1)
    f0 = np.hypot(320, 256)
    flat = P.tilt_homography(320, 256, 0.0)
    flat = flat / flat[2, 2]
    np.testing.assert_allclose(np.diag(flat)[:2], [f0 / (f0 + 1)] * 2)
    for degrees in (-15, -4, 9, 15):
        m = P.tilt_homography(320, 256, degrees)
        centre = m @ np.array([160, 128, 1.0])
        np.testing.assert_allclose(centre[:2] / centre[2], [160, 128], atol=0.5)  # depth 1 turns off-axis a bit
    # a point 10 px right of the centre, both rotations by 15 degrees, focal sqrt(320^2 + 256^2): by hand
    a, f = np.deg2rad(15), np.hypot(320, 256)
    x, z = 10 * np.cos(a) - np.sin(a), 10 * np.sin(a) + np.cos(a)
    y, z = -z * np.sin(a), z * np.cos(a)
    point = P.tilt_homography(320, 256, 15) @ np.array([170, 128, 1.0])
    np.testing.assert_allclose(point[:2] / point[2], [f * x / (z + f) + 160, f * y / (z + f) + 128])


def test_p_encoder_settings_are_the_official_ones():
    from benchbox.datasets import synthesize

    assert synthesize.ENCODER == {"crf": "20", "preset": "veryslow", "threads": "1"}
    assert synthesize.ENCODER_GRAIN == {"tune": "grain", "preset": "veryslow", "threads": "1"}  # default crf 23


def test_videos_are_encoded_on_one_thread_whatever_cpus_the_process_sees(tmp_path):
    """libx264's automatic thread count follows the CPUs a process may use, and the thread count changes the
    bitstream: make-p wrote different videos per machine. The encoder's own record of its settings (the SEI it
    writes into every video) must say one thread, also when the process may use a single CPU."""
    import subprocess
    import sys

    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    y, x = np.mgrid[0:224, 0:224]
    base = np.stack([(x + y) % 256, (3 * x) % 256, (x * y // 97) % 256], axis=-1).astype(np.uint8)
    np.save(tmp_path / "frames.npy", np.stack([np.roll(base, 2 * i, axis=1) for i in range(31)]))
    child = (
        "import os, sys, numpy as np; from pathlib import Path; from benchbox.datasets.synthesize import write_mp4\n"
        "folder, one = Path(sys.argv[1]), sys.argv[2] == '1'\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}) if one else None\n"
        "frames = list(np.load(folder / 'frames.npy'))\n"
        "write_mp4(folder / f'{one}.mp4', frames)\n"
        "write_mp4(folder / f'{one}-grain.mp4', frames, grain=True)\n"
    )
    for one in ("0", "1"):
        subprocess.run([sys.executable, "-c", child, str(tmp_path), one], check=True)
    for name in ("False.mp4", "True.mp4", "False-grain.mp4", "True-grain.mp4"):
        settings = (tmp_path / name).read_bytes().split(b"options: ", 1)[1].split(b"\x00", 1)[0].decode()
        assert " threads=1 " in settings and " lookahead_threads=1 " in settings, settings
        assert ("crf=20.0" in settings) == ("grain" not in name) and "subme=10" in settings  # veryslow


def test_older_synthesized_trees_are_flagged_outdated(tmp_path):
    import json

    from benchbox.datasets.readers import set_markers
    from benchbox.datasets.synthesize import MARKER

    for kind, version, outdated in (("c", 1, True), ("c", 2, False), ("p", 2, True), ("p", 3, False)):
        (tmp_path / MARKER).write_text(json.dumps({"kind": kind, "generator_version": version}))
        assert set_markers(tmp_path) == (True, False, outdated)
    (tmp_path / MARKER).write_text("{not json")
    assert set_markers(tmp_path)[2] is True
