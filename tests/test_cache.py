"""The preprocessed-image cache: same pixels as decoding, never stale, bounded, where the user says."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from conftest import evaluate

from benchbox.datasets.cache import CropCache, default_cache_dir, open_cache
from benchbox.datasets.loader import prepare
from benchbox.datasets.transforms import EvalTransform
from benchbox.models import DataConfig


@pytest.fixture
def transform():
    return EvalTransform(DataConfig(input_size=(3, 64, 64), crop_pct=0.875))


def test_a_hit_is_the_decoded_crop_bit_for_bit(tiny_images, tmp_path, transform):
    cache = CropCache(tmp_path, transform.cache_key(), 10**9)
    paths = sorted(str(p) for p in (tiny_images / "val").rglob("*.JPEG"))
    decoded = [prepare(p, transform)[0] for p in paths]
    first = [prepare(p, transform, cache)[0] for p in paths]
    again = [prepare(p, transform, cache)[0] for p in paths]
    assert cache.misses == len(paths) and cache.hits == len(paths)
    assert all(np.array_equal(a, b) and np.array_equal(a, c) for a, b, c in zip(decoded, first, again))


def test_a_changed_file_is_never_served_stale(tiny_images, tmp_path, transform):
    cache = CropCache(tmp_path / "c", transform.cache_key(), 10**9)
    image = tmp_path / "x.JPEG"
    sources = sorted((tiny_images / "val").rglob("*.JPEG"))
    shutil.copy(sources[0], image)
    first = prepare(str(image), transform, cache)[0]
    shutil.copy(sources[1], image)  # same path, other content
    second = prepare(str(image), transform, cache)[0]
    assert not np.array_equal(first, second)
    assert np.array_equal(second, prepare(str(image), transform)[0])


def test_geometry_not_normalisation_decides_the_entry(tmp_path):
    a = EvalTransform(DataConfig(input_size=(3, 64, 64), mean=(0.5,) * 3, std=(0.5,) * 3))
    b = EvalTransform(DataConfig(input_size=(3, 64, 64)))  # other mean/std: same crop
    c = EvalTransform(DataConfig(input_size=(3, 64, 64), interpolation="bilinear"))
    assert a.cache_key() == b.cache_key() != c.cache_key()


def test_the_cache_is_trimmed_to_its_bound_oldest_first(tmp_path, transform):
    cache = CropCache(tmp_path, transform.cache_key(), max_bytes=3 * 64 * 64 * 3)
    for i in range(6):
        cache.put(f"{i:032x}", np.full((64, 64, 3), i, np.uint8))
        os.utime(cache._path(f"{i:032x}"), (1000 + i, 1000 + i))
    assert cache.trim() == 3 * 64 * 64 * 3
    kept = sorted(p.stem for p in tmp_path.rglob("*.rgb"))
    assert kept == [f"{i:032x}" for i in (3, 4, 5)]


def test_a_truncated_entry_is_a_miss(tmp_path, transform):
    cache = CropCache(tmp_path, transform.cache_key(), 10**9)
    cache.put("ab" * 16, np.zeros((64, 64, 3), np.uint8))
    path = cache._path("ab" * 16)
    path.write_bytes(path.read_bytes()[:100])
    assert cache.get("ab" * 16) is None


def test_where_it_lives(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCHBOX_CACHE", "off")
    assert default_cache_dir() is None and open_cache(None, False, 1.0, {"crop": [8, 8]}) is None
    monkeypatch.delenv("BENCHBOX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "benchbox" / "crops"
    monkeypatch.setenv("BENCHBOX_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    assert open_cache(tmp_path / "flag", False, 1.0, {"crop": [8, 8]}).root == tmp_path / "flag"
    assert open_cache(tmp_path / "flag", True, 1.0, {"crop": [8, 8]}) is None  # --no-cache wins


def test_a_warm_eval_gives_the_same_records_without_decoding(tiny_artifact, tiny_images, tmp_path, monkeypatch):
    cold = evaluate(tiny_artifact, tmp_path / "s1", data_root=tiny_images, cache_dir=tmp_path / "cache")
    import benchbox.datasets.loader as loader

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image that was in the cache")

    monkeypatch.setattr(loader, "load_rgb", no_decoding)
    warm = evaluate(tiny_artifact, tmp_path / "s2", data_root=tiny_images, cache_dir=tmp_path / "cache")
    values = lambda result: {(r.cell.precision, r.metric): r.value for r in result.records}  # noqa: E731
    assert values(cold) == values(warm) and warm.cache["hits"] == 12
