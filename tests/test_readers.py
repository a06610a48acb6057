"""Layouts, labels and discovery on generated fixtures (tiny images in tmp dirs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from benchbox.datasets.catalog import TESTSETS, imagenet_wnids, parse_sets, resolve_testset, subset_indices
from benchbox.datasets.readers import (
    detect_layout,
    read_flat_val,
    read_image_folder,
    read_numeric_folders,
    val_file_number,
)
from benchbox.datasets.variants import locate, set_variants
from benchbox.errors import UserError
from benchbox.records import SetKey

WNIDS = imagenet_wnids()


def touch_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (120, 30, 200)).save(path)
    return path


def test_wnid_labels_are_positions_in_all_1000(tmp_path):
    touch_image(tmp_path / "val" / "n15075141" / "a.JPEG")  # the last class
    touch_image(tmp_path / "val" / "n01443537" / "b.JPEG")  # class 1
    (tmp_path / "val" / "n01443537" / "notes.txt").write_text("x")
    s = read_image_folder(tmp_path / "val", "val")
    assert sorted(x.label for x in s.samples) == [1, 999]
    assert any("non-image" in p for p in s.problems)


def test_v2_numeric_folders_are_not_string_sorted(tmp_path):
    for label in (0, 2, 10, 100, 999):
        touch_image(tmp_path / str(label) / f"{label}.jpeg")
    assert detect_layout(tmp_path) == "numeric-folders"
    s = read_numeric_folders(tmp_path, SetKey("v2"))
    by_file = {Path(x.path).stem: x.label for x in s.samples}
    assert by_file == {"0": 0, "2": 2, "10": 10, "100": 100, "999": 999}
    assert any("5 of 1000" in p for p in s.problems)


def test_flat_val_with_loc_csv(tmp_path):
    folder = tmp_path / "val"
    touch_image(folder / "ILSVRC2012_val_00000001.JPEG")
    touch_image(folder / "ILSVRC2012_val_00000002.JPEG")
    touch_image(folder / "ILSVRC2012_val_00000003.JPEG")
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00000002,n09193705 1 2 3 4 n09193705 5 6 7 8\n"
        "ILSVRC2012_val_00000001,n01751748 10 20 30 40\n"
    )
    s = read_image_folder(folder, "val")
    labels = {x.key: x.label for x in s.samples}
    assert labels == {
        "ILSVRC2012_val_00000001.JPEG": WNIDS.index("n01751748"),
        "ILSVRC2012_val_00000002.JPEG": 970,
    }
    assert any("1 images have no label" in p for p in s.problems)


def test_flat_val_devkit_ids_need_meta_mat(tmp_path):
    touch_image(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG")
    (tmp_path / "ILSVRC2012_validation_ground_truth.txt").write_text("490\n361\n")
    with pytest.raises(UserError, match="meta.mat"):
        read_flat_val(tmp_path / "val", SetKey("val"))


def test_flat_without_labels_names_the_fix(tmp_path):
    touch_image(tmp_path / "val" / "x.jpg")
    with pytest.raises(UserError) as err:
        read_image_folder(tmp_path / "val", "val")
    assert "LOC_val_solution.csv" in str(err.value)


def test_wrong_layout_is_a_user_error(tmp_path):
    (tmp_path / "a" / "deeper").mkdir(parents=True)
    with pytest.raises(UserError, match="Expected layout"):
        read_image_folder(tmp_path / "a", "a")


def test_c_tree_with_and_without_category_level(tmp_path):
    touch_image(tmp_path / "c1" / "gaussian_noise" / "3" / "n01440764" / "x.JPEG")
    touch_image(tmp_path / "c2" / "noise" / "shot_noise" / "1" / "n01440764" / "x.JPEG")
    c = TESTSETS["c"]
    assert [v.key.variant for v in set_variants(c, {"c": tmp_path / "c1"}, None, {})] == ["gaussian_noise/3"]
    assert [v.key.variant for v in set_variants(c, {"c": tmp_path / "c2"}, None, {})] == ["shot_noise/1"]
    assert set_variants(c, {"c": tmp_path / "c1"}, None, {})[0].read().samples[0].label == 0


def test_locate_and_overrides(tmp_path):
    (tmp_path / "imagenet-a").mkdir()
    (tmp_path / "val").mkdir()
    (tmp_path / "real.json").write_text("[]")
    found = locate(tmp_path, {"r": tmp_path / "elsewhere"})
    assert found["a"] == tmp_path / "imagenet-a" and found["val"] == tmp_path / "val"
    assert found["real"] == tmp_path / "real.json" and found["r"] == tmp_path / "elsewhere"
    assert found["sketch"] is None


def test_subset_masks_match_the_reference_lists():
    a = subset_indices("a")
    assert len(a) == 200 and a[:5] == (6, 11, 13, 15, 17) and a[-1] == 988
    r = subset_indices("r")
    assert len(r) == 200 and r[:5] == (1, 2, 4, 6, 8) and r[-1] == 988
    o = subset_indices("o")
    assert len(o) == 200 and len(set(a) & set(r)) == 86 and len(set(r) & set(o)) == 36 and len(set(a) & set(o)) == 59


def test_set_names_and_aliases():
    assert parse_sets("imagenet-a, val,c").names == ("val", "a", "c")
    assert parse_sets("all").names[0] == "val" and parse_sets("all").everything
    with pytest.raises(UserError, match="did you mean|Did you mean"):
        resolve_testset("imagenet-aa")
    assert val_file_number("ILSVRC2012_val_00012345.JPEG") == 12345 and val_file_number("x.jpg") is None


def test_p_tree_reads_noise_difficulty_levels(tmp_path):
    for name in ("gaussian_noise", "gaussian_noise_2", "rotate", "rotate_2"):
        folder = tmp_path / name / "n01440764"
        folder.mkdir(parents=True)
        (folder / "ILSVRC2012_val_00000293.mp4").write_bytes(b"")
    variants = [v.key.variant for v in set_variants(TESTSETS["p"], {"p": tmp_path}, None, {})]
    assert variants == ["gaussian_noise", "rotate", "gaussian_noise_2"]  # no such thing as rotate_2


def test_symlink_loops_and_dangling_links_are_listed_not_silently_ignored(tmp_path):
    import os

    folder = tmp_path / "val" / "n01440764"
    touch_image(folder / "ok.JPEG")
    os.symlink(folder / "loop.JPEG", folder / "loop.JPEG")  # points at itself
    os.symlink(tmp_path / "gone.JPEG", folder / "gone.JPEG")
    s = read_image_folder(tmp_path / "val", "val")
    assert [x.key for x in s.samples] == ["ok.JPEG"]
    assert any("2 broken or looping symlinks" in p and "loop.JPEG" in p for p in s.problems)


def test_v2_folders_with_leading_zeros_are_read_by_number_and_reported(tmp_path):
    touch_image(tmp_path / "007" / "a.jpeg")
    touch_image(tmp_path / "8" / "b.jpeg")
    s = read_numeric_folders(tmp_path, SetKey("v2"))
    assert sorted(x.label for x in s.samples) == [7, 8]
    assert any("leading zeros" in p for p in s.problems)


def test_file_names_that_are_not_utf8(tmp_path):
    import os

    from benchbox.evaluation.planning import samples_digest

    folder = tmp_path / "val" / "n01440764"
    touch_image(folder / "plain.JPEG")
    raw = os.fsencode(folder) + b"/caf\xe9.JPEG"  # Latin-1 bytes: not valid UTF-8
    with open(raw, "wb") as handle:
        handle.write((folder / "plain.JPEG").read_bytes())
    s = read_image_folder(tmp_path / "val", "val")
    assert len(s.samples) == 2 and len(samples_digest(s)) == 16
