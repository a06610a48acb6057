"""Every set of the family wired end to end on generated fixtures: labels, masks, keying, metric plumbing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import evaluate, run_cli

from benchbox.datasets.catalog import imagenet_wnids, subset_indices
from benchbox.datasets.discovery import survey
from benchbox.datasets.synthetic import write_image_folder
from benchbox.metrics.classification import topk_indices
from benchbox.metrics.ood import aupr
from benchbox.metrics.robustness import flip_probability, top5_distance
from benchbox.records import Cell
from benchbox.store import ResultStore

WNIDS = imagenet_wnids()
A_CLASSES = subset_indices("a")
O_CLASSES = subset_indices("o")
R_CLASSES = subset_indices("r")


@pytest.fixture(scope="module")
def family_root(tmp_path_factory):
    """A data root with val (ReaL-named files), V2, sketch, A, R, O, a synthesized C and P."""
    from PIL import Image

    from benchbox.datasets.synthesize import make_c, make_p

    root = tmp_path_factory.mktemp("family")
    val_classes = sorted(
        {WNIDS[i] for i in (A_CLASSES[0], A_CLASSES[1], O_CLASSES[0], O_CLASSES[1], R_CLASSES[0], 500)}
    )
    write_image_folder(root / "val", val_classes, per_class=2, seed=11)
    number = 1
    for path in sorted((root / "val").rglob("*.JPEG")):  # rename to official val names: ReaL keys by number
        path.rename(path.with_name(f"ILSVRC2012_val_{number * 7:08d}.JPEG"))
        number += 1
    write_image_folder(root / "imagenet-a", [WNIDS[A_CLASSES[0]], WNIDS[A_CLASSES[2]]], per_class=2, seed=12)
    write_image_folder(root / "imagenet-r", [WNIDS[R_CLASSES[0]]], per_class=2, seed=13)
    write_image_folder(root / "imagenet-o", [WNIDS[O_CLASSES[0]], WNIDS[O_CLASSES[2]]], per_class=3, seed=14)
    write_image_folder(root / "sketch", [WNIDS[3]], per_class=2, seed=15)
    for label in (0, 10, 999):
        folder = root / "imagenetv2-matched-frequency-format-val" / str(label)
        folder.mkdir(parents=True)
        Image.new("RGB", (64, 48), (label % 255, 90, 20)).save(folder / f"{label}.jpeg")
    make_c(root / "val", root / "imagenet-c", ["gaussian_noise", "contrast"], [1, 2], workers=1)
    make_p(root / "val", root / "imagenet-p", ["gaussian_noise", "rotate"], limit=2, workers=1)
    return root


P_BASELINE = {
    "flip_prob": {"gaussian_noise": 10.0, "rotate": 20.0},
    "top5_dist": {"gaussian_noise": 1.0, "rotate": 2.0},
}


@pytest.fixture(scope="module")
def family_eval(family_root, tiny_artifact, tmp_path_factory):
    """Every set at once, keeping the logits so the tests can recompute each figure from them independently."""
    store_dir = tmp_path_factory.mktemp("family_store")
    baseline = tmp_path_factory.mktemp("p_base") / "p.json"
    baseline.write_text(json.dumps(P_BASELINE))
    result = evaluate(
        tiny_artifact,
        store_dir,
        sets="all",
        data_root=family_root,
        batch_size=4,
        p_baseline=str(baseline),
        keep_logits=True,
    )
    store = ResultStore(store_dir)

    def preds(testset, variant=None):
        arrays = store.cell_predictions(Cell(tiny_artifact.model, "ort", "cpu", "fp32", testset, variant))
        return Logits(arrays)

    return result, preds, store


class Logits:
    """Stored logits with their labels, for recomputing metrics the long way."""

    def __init__(self, arrays):
        summary = arrays["summary"]
        self.logits = arrays["logits"]
        self.labels = summary["label"].astype(np.int64)
        self.frames = summary


def by(records, testset, metric, variant=None, reference=None):
    return next(
        r
        for r in records
        if r.cell.testset == testset and r.metric == metric and r.cell.variant == variant and r.reference == reference
    )


def test_v2_labels_come_from_folder_numbers(family_eval):
    result, preds, _ = family_eval
    v2 = preds("v2", "matched-frequency")
    assert sorted(v2.labels.tolist()) == [0, 10, 999]
    assert by(result.records, "v2", "top1", "matched-frequency").n == 3


def test_a_and_r_are_masked_with_their_clean_baselines(family_eval):
    result, preds, _ = family_eval
    a = preds("a")
    masked = a.logits[:, list(A_CLASSES)]
    expected = 100.0 * np.mean(np.asarray(A_CLASSES)[masked.argmax(1)] == a.labels)
    assert by(result.records, "a", "top1").value == pytest.approx(expected)
    val = preds("val")
    keep = np.isin(val.labels, A_CLASSES)
    clean = 100.0 * np.mean(np.asarray(A_CLASSES)[val.logits[keep][:, list(A_CLASSES)].argmax(1)] == val.labels[keep])
    record = by(result.records, "a", "clean_top1", reference="val-200-clean")
    assert record.value == pytest.approx(clean) and record.n == int(keep.sum()) > 0
    assert by(result.records, "r", "clean_top1", reference="val-200-clean").n == int(
        np.isin(val.labels, R_CLASSES).sum()
    )


def test_o_scores_o_images_against_val_of_the_o_classes(family_eval):
    result, preds, _ = family_eval
    from benchbox.metrics.calibration import softmax

    o, val = preds("o"), preds("val")
    keep = np.isin(val.labels, O_CLASSES)
    expected = aupr(
        -softmax(o.logits[:, list(O_CLASSES)]).max(1), -softmax(val.logits[keep][:, list(O_CLASSES)]).max(1)
    )
    record = by(result.records, "o", "aupr")
    assert record.value == pytest.approx(100 * expected) and record.n == 6 + int(keep.sum())
    assert {"auroc", "fpr95", "aupr_sigmoid"} <= {r.metric for r in result.records if r.cell.testset == "o"}


def test_real_is_keyed_by_val_file_number(family_root, tiny_artifact, tmp_path):
    evaluate(tiny_artifact, tmp_path / "s0", sets="val", data_root=family_root, batch_size=4, keep_logits=True)
    arrays = ResultStore(tmp_path / "s0").cell_predictions(Cell(tiny_artifact.model, "ort", "cpu", "fp32", "val"))
    real = [[] for _ in range(100)]
    top1 = {int(index): int(row.argmax()) for index, row in zip(arrays["summary"]["index"], arrays["logits"])}
    # give every other image (by file number) its predicted class; leave one image with an empty list
    from benchbox.datasets.readers import read_image_folder, val_file_number
    from benchbox.evaluation.planning import visit_order

    sample_set = visit_order(read_image_folder(family_root / "val", "val"))  # summaries are in visit order
    expected = []
    for index, sample in enumerate(sample_set.samples):
        number = val_file_number(sample.key)
        if number == 7:
            continue  # empty list: skipped
        hit = number % 14 == 0
        real[number - 1] = [top1[index]] if hit else [(top1[index] + 1) % 1000]
        expected.append(hit)
    assert 0 < np.mean(expected) < 1  # both hits and misses: a wrong keying cannot pass by accident
    root = tmp_path / "root"
    shutil.copytree(family_root / "val", root / "val")
    (root / "real.json").write_text(json.dumps(real))
    result = evaluate(tiny_artifact, tmp_path / "s1", sets="real", data_root=root, batch_size=4)
    record = by(result.records, "real", "real_top1")
    assert record.n == len(sample_set.samples) - 1 and record.value == pytest.approx(100 * np.mean(expected))
    assert {r.cell.testset for r in result.records} == {"real"}  # val was needed, not asked for


def test_c_ce_and_mce_from_error_records(family_eval):
    result, preds, _ = family_eval
    from benchbox.metrics.robustness import alexnet_c_baseline

    base = alexnet_c_baseline()["severity"]["contrast"]
    errors = []
    for severity in (1, 2):
        c = preds("c", f"contrast/{severity}")
        errors.append(1 - np.mean(c.logits.argmax(1) == c.labels))
        assert by(result.records, "c", "error", f"contrast/{severity}").value == pytest.approx(100 * errors[-1])
    ce = by(result.records, "c", "ce", "contrast")
    assert ce.value == pytest.approx(100 * sum(errors) / (base[0] + base[1]))
    assert set(ce.flags) == {"partial-severities", "synthesized", "generated"}
    mce = by(result.records, "c", "mce")
    assert "only 2 of 15 corruptions" in mce.flags and "synthesized" in mce.flags
    # C images are 224 x 224 already and must not be resized: the tiny model takes 160, so they are cropped
    assert preds("c", "contrast/1").labels.size == preds("val").labels.size


def test_p_flip_probability_top5_distance_and_normalised_means(family_eval):
    result, preds, _ = family_eval

    def per_video(p):
        video = p.frames["video"]
        return [p.logits[video == v] for v in np.unique(video)]

    noise = per_video(preds("p", "gaussian_noise"))
    assert len(noise) == 2 and all(v.shape == (31, 1000) for v in noise)
    fp = 100 * flip_probability([v.argmax(1) for v in noise], noise=True)
    assert by(result.records, "p", "flip_prob", "gaussian_noise").value == pytest.approx(fp)
    rotate = per_video(preds("p", "rotate"))
    t5 = top5_distance([topk_indices(v, 5) for v in rotate], noise=False)
    assert by(result.records, "p", "top5_dist", "rotate").value == pytest.approx(t5)
    fp_rot = by(result.records, "p", "flip_prob", "rotate").value
    mfr = by(result.records, "p", "mfr")
    assert mfr.value == pytest.approx(100 * np.mean([fp / 10.0, fp_rot / 20.0]))
    assert "only 2 of 10 perturbations" in mfr.flags


def test_every_set_has_records_and_none_failed(family_eval):
    result, _, _ = family_eval
    assert not result.failures and not result.missing_sets
    assert {r.cell.testset for r in result.records} >= {"val", "v2", "sketch", "a", "r", "o", "c", "p"}


def test_survey_counts_and_flags(family_root, tmp_path):
    rows = {r["set"]: r for r in survey(family_root)}
    assert rows["a"]["found"] and rows["a"]["count"] == 4
    assert any("200" in p for p in rows["a"]["problems"])  # partial: 2 class folders
    assert any("synthesized" in p for p in rows["c"]["problems"])
    assert any("severities [3, 4, 5] missing" in p for p in rows["c"]["problems"])
    assert any("997 of 1000" in p or "3 of 1000" in p for p in rows["v2"]["problems"])
    bad = tmp_path / "imagenetv2-matched-frequency-format-val"
    (bad / "n01440764").mkdir(parents=True)
    (bad / "12").mkdir()
    row = next(r for r in survey(tmp_path) if r["set"] == "v2")
    assert any("not class indices" in p for p in row["problems"])
    assert not next(r for r in survey(tmp_path) if r["set"] == "sketch")["found"]


def test_all_sets_scores_what_is_present(family_root, tiny_artifact, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(family_root / "val", root / "val")
    shutil.copytree(family_root / "imagenet-a", root / "imagenet-a")
    result = evaluate(tiny_artifact, tmp_path / "s", sets="all", data_root=root, batch_size=4)
    assert set(result.missing_sets) == {"v2", "sketch", "r", "o", "c", "p"}
    assert {r.cell.testset for r in result.records} >= {"val", "a", "real"}


def test_p_baseline_reaches_the_cli(family_root, tiny_artifact, tmp_path):

    baseline = tmp_path / "p.json"
    baseline.write_text(
        json.dumps(
            {"flip_prob": {"gaussian_noise": 10.0, "rotate": 20.0}, "top5_dist": {"gaussian_noise": 1.0, "rotate": 2.0}}
        )
    )
    out = tmp_path / "r.json"
    proc = run_cli(
        "eval",
        str(tiny_artifact.directory),
        "--sets",
        "p",
        "--data-root",
        str(family_root),
        "--p-baseline",
        str(baseline),
        "--store",
        str(tmp_path / "s"),
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = {r["metric"] for r in json.loads(out.read_text())["records"]}
    assert {"mfr", "mt5d", "flip_prob", "top5_dist"} <= metrics
