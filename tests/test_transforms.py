"""The eval transform must equal timm's, value for value."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchbox.datasets.transforms import EvalTransform, center_crop, load_rgb, shorter_side_size
from benchbox.models import DataConfig

CONFIGS = [
    DataConfig(input_size=(3, 224, 224), mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=0.875, interpolation="bicubic"),
    DataConfig(input_size=(3, 240, 240), crop_pct=0.882, interpolation="bicubic"),
    DataConfig(input_size=(3, 260, 260), crop_pct=0.89, interpolation="bilinear"),
    DataConfig(input_size=(3, 160, 160), crop_pct=0.95, interpolation="bicubic"),
]
SIZES = [(500, 375), (375, 500), (257, 256), (1024, 683), (231, 800), (300, 300), (199, 150)]


def timm_transform(cfg: DataConfig):
    from timm.data import create_transform

    return create_transform(
        input_size=cfg.input_size,
        interpolation=cfg.interpolation,
        mean=cfg.mean,
        std=cfg.std,
        crop_pct=cfg.crop_pct,
        crop_mode=cfg.crop_mode,
        is_training=False,
    )


def random_image(size, seed):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.input_size[1]}-{c.crop_pct}-{c.interpolation}")
def test_transform_equals_timm(cfg):
    ours, theirs = EvalTransform(cfg), timm_transform(cfg)
    for i, size in enumerate(SIZES):
        img = random_image(size, i)
        expected = theirs(img).numpy()
        got = ours(img)
        assert got.shape == expected.shape == tuple(cfg.input_size)
        assert np.max(np.abs(got - expected)) <= 1e-6, size


def test_resize_size_is_floor_like_timm():
    assert DataConfig(input_size=(3, 224, 224), crop_pct=0.875).resize_size == 256
    assert DataConfig(input_size=(3, 240, 240), crop_pct=0.882).resize_size == 272  # 272.1 floored
    assert DataConfig(input_size=(3, 260, 260), crop_pct=0.89).resize_size == 292  # 292.13 floored


def test_shorter_side_truncates_long_side():
    assert shorter_side_size(500, 375, 256) == (341, 256)  # 341.33 -> 341
    assert shorter_side_size(375, 500, 256) == (256, 341)
    assert shorter_side_size(199, 150, 256) == (339, 256)  # upscale: 339.62 -> 339


def test_center_crop_offsets_round_like_torchvision():
    img = random_image((341, 256), 0)
    crop = center_crop(img, 224, 224)
    expected = img.crop((58, 16, 282, 240))  # round(117 / 2) = 58 (banker's), round(32 / 2) = 16
    assert np.array_equal(np.asarray(crop), np.asarray(expected))


def test_cmyk_grayscale_and_png_named_jpeg_decode(tmp_path):
    rgb = random_image((64, 48), 1)
    rgb.convert("CMYK").save(tmp_path / "cmyk.JPEG")
    rgb.convert("L").save(tmp_path / "gray.JPEG")
    rgb.save(tmp_path / "png_named.JPEG", format="PNG")
    for name in ("cmyk.JPEG", "gray.JPEG", "png_named.JPEG"):
        img = load_rgb(tmp_path / name)
        assert img.mode == "RGB" and img.size == (64, 48)
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "png_named.JPEG")), np.asarray(rgb))


def test_no_resize_mode_keeps_224_images_untouched():
    cfg = CONFIGS[0]
    img = random_image((224, 224), 5)
    out = EvalTransform(cfg, resize=False)(img)
    expected = (np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    assert np.max(np.abs(out - expected)) < 1e-6
