"""Real accuracy of the bundled EfficientNet-Lite0 on the 300-image ImageNet sample (skips without it).

Reference (the sample's README, a timm pipeline): top-1 86.67 % (260 / 300), top-5 98.00 % (294 / 300).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import cost_rows, evaluate, export_options


@pytest.fixture(scope="module")
def lite0(tmp_path_factory, sample_root):
    from benchbox.build import build_artifacts

    work = tmp_path_factory.mktemp("lite0")
    calib, test = work / "calib", work / "test" / "val"
    for i, folder in enumerate(sorted((sample_root / "val").iterdir())):
        target = (calib if i % 3 == 0 else test) / folder.name
        target.mkdir(parents=True)
        for image in folder.iterdir():
            os.symlink(image, target / image.name)
    options = export_options(
        precisions=["fp32", "fp16", "int8"], calib_data=calib, calib_size=64, calib_method="entropy"
    )
    artifact = build_artifacts("efficientnet_lite0", work / "art", options)
    return artifact, work


def by_key(records):
    return {(r.cell.engine, r.cell.precision, r.metric): r for r in records}


def test_fp32_matches_the_reference_pipeline(lite0, sample_root, tmp_path):
    artifact, _ = lite0
    records = by_key(evaluate(artifact, tmp_path / "s", engines=["ort", "torch"], data_root=sample_root).records)
    for engine in ("ort", "torch"):
        hits = round(records[(engine, "fp32", "top1")].value * 3)
        assert hits == 260, (engine, hits)  # exactly the peer pipeline of the sample's README
        assert round(records[(engine, "fp32", "top5")].value * 3) == 294
    assert cost_rows(tmp_path / "s")[("ort", "fp32", "val", None, "agreement_top1")].value >= 99.7  # vs torch


def test_lower_precisions_on_held_out_images(lite0, tmp_path):
    artifact, work = lite0
    result = evaluate(
        artifact, tmp_path / "s", precisions=["fp32", "fp16", "int8", "int8-trt"], data_root=work / "test"
    )
    from benchbox.environment import cpu_has_vnni

    records = by_key(result.records)
    cost = cost_rows(tmp_path / "s")
    assert not [w for w in result.warnings if "calibration" in w]  # calibration images are disjoint from the test
    fp32 = records[("ort", "fp32", "top1")].value
    assert abs(records[("ort", "fp16", "top1")].value - fp32) <= 0.3
    assert cost[("ort", "fp16", "val", None, "agreement_top1")].value >= 99.5
    # int8 on ORT CPU is the int8-cpu flavour; int8-trt (signed activations) saturates on CPUs without VNNI
    flavours = ("int8", "int8-trt") if cpu_has_vnni() else ("int8",)
    if not cpu_has_vnni():
        assert any("without VNNI" in w for w in result.warnings)
    for flavour in flavours:
        assert abs(records[("ort", flavour, "top1")].value - fp32) <= 1.5, flavour
        assert cost[("ort", flavour, "val", None, "agreement_top1")].value >= 97.0, flavour


def test_a_corrupt_file_is_reported_and_the_rest_scored(lite0, sample_root, tmp_path):
    artifact, _ = lite0
    root = tmp_path / "data"
    for folder in (sample_root / "val").iterdir():
        (root / "val" / folder.name).mkdir(parents=True)
        for image in folder.iterdir():
            os.symlink(image, root / "val" / folder.name / image.name)
    first = next((root / "val").iterdir())
    Path(first / "corrupt.JPEG").write_bytes(next(first.iterdir()).read_bytes()[:2000])
    result = evaluate(artifact, tmp_path / "s", data_root=root)
    records = by_key(result.records)
    assert records[("ort", "fp32", "unreadable_files")].value == 1.0
    assert records[("ort", "fp32", "top1")].n == 300
    assert round(records[("ort", "fp32", "top1")].value * 3) == 260
