"""The project's ImageNet-C corruptions and ImageNet-P perturbations: determinism, shape, dtype, severity."""

from __future__ import annotations

import numpy as np
import pytest

from benchbox.datasets.corruptions import CORRUPTIONS, corrupt
from benchbox.datasets.perturbations import PERTURBATIONS, perturb

# Official parameters that are not monotone in strength (AlexNet's published errors are not monotone either):
# snow (s2 > s3), elastic_transform (large affine at s1-2, small at s3-5), saturate (s3 raises saturation),
# glass_blur (s1 shuffles twice at delta 1, s2 once at delta 2: the reference's pixel copy moves s1 pixels more).
# fog s3 and s4 share the same strength (2.5) and differ only in fractal roughness; frost also darkens the image,
# so for both the severity order is checked on the correlation with the clean image instead of pixel change.
NOT_MONOTONE = {"snow", "elastic_transform", "saturate", "glass_blur"}
BY_CORRELATION = {"frost", "fog"}


@pytest.fixture(scope="module")
def real_images(sample_root):
    from PIL import Image

    from benchbox.datasets.transforms import center_crop, shorter_side_size

    images = []
    for folder in sorted((sample_root / "val").iterdir())[::60][:5]:
        img = Image.open(next(folder.iterdir())).convert("RGB")
        img = img.resize(shorter_side_size(img.width, img.height, 256), Image.BILINEAR)
        images.append(np.asarray(center_crop(img, 224, 224)))
    return images


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corruption_is_seeded_shaped_and_ordered_by_severity(name, real_images):
    images = real_images[:2] if name == "glass_blur" else real_images
    x = images[0]
    a, b = corrupt(x, name, 3, seed=5), corrupt(x, name, 3, seed=5)
    assert a.dtype == np.uint8 and a.shape == (224, 224, 3)
    assert np.array_equal(a, b)
    if name not in NOT_MONOTONE:
        change, correlation = [], []
        for severity in range(1, 6):
            outs = [corrupt(img, name, severity, seed=i).astype(np.float64) for i, img in enumerate(images)]
            change.append(np.mean([np.abs(o - img).mean() for o, img in zip(outs, images)]))
            correlation.append(np.mean([np.corrcoef(o.ravel(), img.ravel())[0, 1] for o, img in zip(outs, images)]))
        if name in BY_CORRELATION:
            assert correlation[0] > correlation[2] > correlation[4], correlation
        else:
            assert all(lo < hi for lo, hi in zip(change, change[1:])), change
    assert np.abs(corrupt(x, name, 5, seed=5).astype(float) - x).mean() > 0.5


def test_unknown_corruption_and_bad_severity():
    from benchbox.errors import UserError

    with pytest.raises(UserError, match="Unknown corruption"):
        corrupt(np.zeros((224, 224, 3)), "rain", 1, 0)
    with pytest.raises(ValueError):
        corrupt(np.zeros((224, 224, 3)), "fog", 6, 0)


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_perturbation_sequences(name):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(256, 300, 3), dtype=np.uint8)
    frames = perturb(base, name, seed=1)
    assert len(frames) == (41 if name == "translate" else 31)
    assert all(f.shape == (224, 224, 3) and f.dtype == np.uint8 for f in frames)
    again = perturb(base, name, seed=1)
    assert all(np.array_equal(f, g) for f, g in zip(frames, again))
    if name in ("gaussian_noise", "shot_noise", "speckle_noise", "zoom_blur"):
        centre = base[16:240, 38:262]
        assert np.array_equal(frames[0], centre)  # frame 0 is the clean image


def test_mp4_round_trip(tmp_path):
    from benchbox.datasets.synthesize import decode_mp4, write_mp4

    frames = [np.full((224, 224, 3), v, np.uint8) for v in (20, 120, 220)]
    write_mp4(tmp_path / "v.mp4", frames)
    decoded = decode_mp4(tmp_path / "v.mp4")
    assert len(decoded) == 3 and decoded[0].shape == (224, 224, 3)
    assert [int(round(f.mean())) for f in decoded] == pytest.approx([20, 120, 220], abs=3)
