"""The verdict on hand-made stores: every gate decided by the interval rule (pass, fail, cannot decide with the
images it would take), pairing on the same images only, C/ReaL/P/O decided, scoped and point policies, TensorRT
lint scoped to TensorRT targets, NaN never helping, and check --json agreeing with the terminal."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from stored import accurate, add_cell, add_set, cell, frames, summary

from benchbox.records import Record
from benchbox.reports.comparison import Comparison
from benchbox.reports.policy import load_policy
from benchbox.reports.verdict import decide
from benchbox.store import ResultStore


def policy_file(tmp_path, text: str):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return load_policy(path)


def gates_of(result, name):
    return [g for g in result.gates if g.gate == name]


def val_store(tmp_path, n: int, wrong_fp16: int, name: str = "s"):
    """fp32 right on every image; fp16 wrong on `wrong_fp16` of them."""
    store = ResultStore(tmp_path / name)
    labels = [3] * n
    add_cell(store, cell("fp32", "val"), summary(labels, accurate(n, 0)), [("top1", 100.0)])
    add_cell(
        store, cell("fp16", "val"), summary(labels, accurate(n, wrong_fp16)), [("top1", 100.0 * (n - wrong_fp16) / n)]
    )
    return store


@pytest.mark.parametrize(
    ("n", "wrong", "status"),
    [(300, 0, "pass"), (2000, 6, "pass"), (400, 40, "fail"), (200, 1, "undecided")],
)
def test_top1_drop_is_decided_by_its_interval(tmp_path, n, wrong, status):
    store = val_store(tmp_path, n, wrong)
    result = decide(store, policy_file(tmp_path, "[gates]\nmax_top1_drop = 1.0\n"))
    (gate,) = gates_of(result, "max_top1_drop")
    assert gate.status == status, gate
    assert gate.value == pytest.approx(100.0 * wrong / n)
    assert gate.ci_low <= gate.value <= gate.ci_high
    if status == "undecided":
        assert gate.needed_images and gate.needed_images > n and "images would decide it" in gate.reason
        assert result.verdict.value == "cannot-decide" and result.exit_code == 2
    if status == "pass":
        assert gate.ci_high <= 1.0 and result.exit_code == 0
    if status == "fail":
        assert gate.ci_low > 1.0 and result.exit_code == 1


def test_point_rule_decides_on_the_estimate(tmp_path):
    store = val_store(tmp_path, 100, 1)
    result = decide(store, policy_file(tmp_path, 'decide = "point"\n[gates]\nmax_top1_drop = 1.0\n'))
    assert gates_of(result, "max_top1_drop")[0].status == "pass" and result.exit_code == 0


def test_other_images_never_pair_but_the_same_images_in_another_order_do(tmp_path):
    store = ResultStore(tmp_path / "s")
    labels = [3] * 50
    base = summary(labels, accurate(50, 0))
    add_cell(store, cell("fp32", "val"), base, [("top1", 100.0)])
    order = np.random.default_rng(0).permutation(50)
    shuffled = base[order].copy()  # the same images, read in another order (another source, another sort)
    shuffled["index"] = np.arange(50)
    add_cell(store, cell("fp16", "val"), shuffled, [("top1", 100.0)])
    one_less = base[1:]  # a tree with one image removed
    add_cell(store, cell("int8", "val"), one_less, [("top1", 100.0)])
    rows = {r.precision: r for r in Comparison(store).rows() if r.metric == "top1"}
    assert rows["fp16"].paired and rows["fp16"].delta == 0.0
    assert not rows["int8"].paired and "other images" in rows["int8"].reason
    result = decide(store, policy_file(tmp_path, "[gates]\nmax_top1_drop = 50.0\n"))
    statuses = {g.subject.split()[1]: g.status for g in gates_of(result, "max_top1_drop")}
    assert statuses == {"ort/fp16": "pass", "ort/int8": "undecided"}


def test_two_models_with_one_name_are_two_models(tmp_path):
    """a/model.onnx FP32 was compared with an unrelated b/model.onnx FP16 ('drop 24.67, fail')."""
    store = ResultStore(tmp_path / "s")
    labels = [3] * 300
    add_cell(store, cell("fp32", "val", model="model", model_id="aaaa"), summary(labels, accurate(300, 0)))
    add_cell(store, cell("fp16", "val", model="model", model_id="bbbb"), summary(labels, accurate(300, 74)))
    assert [r for r in Comparison(store).rows() if r.metric == "top1"] == []
    result = decide(store, policy_file(tmp_path, "[gates]\nmax_top1_drop = 1.0\n"))
    assert all(g.status == "skipped" for g in gates_of(result, "max_top1_drop"))


def c_store(tmp_path, fp16_wrong: int = 0, nan_fp16: bool = False):
    """ImageNet-C (2 corruptions x 5 severities x 40 images) and val for fp32 and fp16."""
    from benchbox.evaluation.scoring import ScoreContext
    from benchbox.evaluation.scoring.corruption import set_records

    store = ResultStore(tmp_path / "c")
    labels = [7] * 40
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(40)]
    for precision in ("fp32", "fp16"):
        val_top = accurate(40, 4, 7)
        add_cell(store, cell(precision, "val"), summary(labels, val_top, names=names, sids=np.arange(1, 41)))
        digests, variant_records = [], []
        for k, (corruption, severity) in enumerate((c, s) for c in ("fog", "snow") for s in range(1, 6)):
            wrong = 10 + severity + (fp16_wrong if precision == "fp16" else 0)
            top = accurate(40, wrong, 7)
            if nan_fp16 and precision == "fp16":
                top = [-1 if i % 4 == 0 else t for i, t in enumerate(top)]
            data = summary(labels, top, names=names, sids=np.arange(1000 * (k + 1), 1000 * (k + 1) + 40))
            variant = f"{corruption}/{severity}"
            err = float(np.mean(np.asarray(top) != 7))
            at = cell(precision, "c", variant)
            rec = [
                Record(at, "error", 100 * err, 40, extra={"error_fraction": err}),
                Record(at, "nonfinite_outputs", float(np.sum(np.asarray(top) < 0)), 40),
            ]
            digests.append(add_cell(store, at, data, rec))
            variant_records += rec
        ctx = ScoreContext(cell(precision, "c"), "")
        add_set(store, cell(precision, "c"), digests, set_records(ctx, variant_records))
    return store


def test_c_is_paired_across_precisions_and_decided(tmp_path):
    """The set digest used to include the val cell key, so fp16's C never paired with fp32's: always undecided."""
    store = c_store(tmp_path)
    rows = {(r.metric, r.variant): r for r in Comparison(store).rows() if r.set == "c"}
    assert rows[("mce", None)].paired and rows[("mce", None)].delta == 0.0
    assert rows[("relative_mce", None)].paired
    result = decide(store, policy_file(tmp_path, "[gates]\nmax_mce_increase = 2.0\nmax_relative_mce_increase = 5.0\n"))
    assert {g.gate: g.status for g in result.gates} == {"max_mce_increase": "pass", "max_relative_mce_increase": "pass"}


def test_mce_interval_matches_a_direct_bootstrap(tmp_path):
    """The vectorised paired bootstrap equals resampling the images by hand and recomputing mCE from scratch."""
    from benchbox.metrics.robustness import alexnet_c_baseline, corruption_errors, mce
    from benchbox.metrics.stats import bootstrap_weights

    store = c_store(tmp_path, fp16_wrong=3)
    comparison = Comparison(store, resamples=300)
    row = next(r for r in comparison.rows() if r.set == "c" and r.metric == "mce")
    weights = np.concatenate(list(bootstrap_weights(40, 300, comparison.seed)))
    # cluster ids sort by gid: map each image (name) to its column of the weights
    from benchbox.evaluation.summaries import group_id

    gids = np.array([group_id(7, f"ILSVRC2012_val_{i + 1:08d}.JPEG") for i in range(40)], dtype=np.uint64)
    column = np.searchsorted(np.unique(gids), gids)
    diffs = []
    for w in weights:
        draws = np.repeat(np.arange(40), w[column].astype(int))  # image i drawn w[i] times
        values = []
        for extra in (0, 3):
            errors = {}
            for corruption in ("fog", "snow"):
                for severity in range(1, 6):
                    wrong = np.arange(40) < 10 + severity + extra
                    errors[(corruption, severity)] = float(wrong[draws].mean())
            values.append(mce(corruption_errors(errors))["mce_partial"])
        diffs.append(values[1] - values[0])
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    assert row.ci_low == pytest.approx(lo, abs=1e-4) and row.ci_high == pytest.approx(hi, abs=1e-4)
    # three more errors in each of the 5 severities: ΔCE_c = 100 x 5 x 3/40 / sum_s AlexNet_c,s; ΔmCE = their mean
    alexnet = alexnet_c_baseline()["severity"]
    expected = np.mean([100 * 5 * (3 / 40) / sum(alexnet[c]) for c in ("fog", "snow")])
    assert row.delta == pytest.approx(expected, rel=1e-9)


def test_nan_on_c_is_a_wrong_answer_and_fails_no_nonfinite(tmp_path):
    store = c_store(tmp_path, nan_fp16=True)
    rows = {r.metric: r for r in Comparison(store).rows() if r.set == "c" and r.variant is None}
    assert rows["mce"].delta > 0  # NaN never lowers the error
    result = decide(store, policy_file(tmp_path, "[gates]\nno_nonfinite = true\n"))
    failing = [g for g in gates_of(result, "no_nonfinite") if g.status == "fail"]
    assert failing and all("c" in g.subject and "fp16" in g.subject for g in failing)
    assert any("NaN/Inf" in g.reason and g.set == "c" for g in failing)
    assert result.verdict.value == "not-ready"


def test_real_is_decided_when_both_precisions_score_the_same_val(tmp_path):
    """max_top1_drop on ReaL was undecided even with identical real_top1."""
    store = ResultStore(tmp_path / "s")
    n = 800
    numbers = np.arange(1, n + 1)
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in numbers]
    from benchbox.datasets.catalog import timm_real_labels

    lists = timm_real_labels()
    labels = [lists[i - 1][0] if lists[i - 1] else 0 for i in numbers]
    for precision in ("fp32", "fp16"):
        d = add_cell(store, cell(precision, "val"), summary(labels, labels, names=names, numbers=numbers))
        add_set(store, cell(precision, "real"), [], [("real_top1", 100.0)], {"real_labels": {"path": None}}, [d])
    rows = [r for r in Comparison(store).rows() if r.metric == "real_top1"]
    assert rows and rows[0].paired and rows[0].delta == 0.0
    result = decide(store, policy_file(tmp_path, "[gates]\nmax_top1_drop = 1.0\n"))
    assert {g.set: g.status for g in gates_of(result, "max_top1_drop")} == {"val": "pass", "real": "pass"}


def test_ood_nan_on_out_of_distribution_images_scores_worse_not_better(tmp_path):
    """A graph whose logits are NaN on half the O images raised AUROC and cut FPR95 before."""
    from benchbox.datasets.catalog import subset_indices

    o_class = subset_indices("o")[0]
    store = ResultStore(tmp_path / "s")
    rng = np.random.default_rng(1)
    groups = ("top1:a", "top1:r", "ood:o")
    n_in, n_out = 60, 40
    conf_in, conf_out = rng.uniform(0.5, 1.0, n_in), rng.uniform(0.2, 0.9, n_out)
    for precision, nan in (("fp32", False), ("fp16", True)):
        inside = summary([o_class] * n_in, [o_class] * n_in, groups, sids=np.arange(1, n_in + 1), o_conf=conf_in)
        bad = np.zeros(n_out, bool)
        if nan:
            bad[np.argsort(conf_out)[n_out // 2 :]] = True  # NaN exactly where it would help most
        ood = summary(
            [o_class] * n_out,
            [o_class] * n_out,
            ("ood:o",),
            sids=np.arange(500, 500 + n_out),
            names=[f"o{i}.jpg" for i in range(n_out)],
            nonfinite=bad,
            o_conf=conf_out,
        )
        add_cell(store, cell(precision, "val"), inside)
        add_cell(store, cell(precision, "o"), ood)
    rows = {r.metric: r for r in Comparison(store).rows() if r.set == "o"}
    assert rows["aupr"].delta < 0 and rows["auroc"].delta < 0 and rows["fpr95"].delta > 0


def test_p_nan_frames_raise_flip_probability_and_mfr_is_gated(tmp_path):
    store = ResultStore(tmp_path / "s")
    videos_clean = [(5, [5, 5, 6, 5, 5]) for _ in range(30)]
    videos_nan = [(5, [5, -1, -1, 5, 5]) if i % 3 == 0 else v for i, v in enumerate(videos_clean)]
    baseline = {"flip_prob": {"translate": 10.0}, "top5_dist": {"translate": 1.0}}
    for precision, videos in (("fp32", videos_clean), ("fp16", videos_nan)):
        d = add_cell(store, cell(precision, "p", "translate"), frames(videos))
        add_set(store, cell(precision, "p"), [d], [("mfr", 1.0)], {"p_baseline": baseline})
    rows = {(r.metric, r.variant): r for r in Comparison(store).rows() if r.set == "p"}
    assert rows[("flip_prob", "translate")].delta > 0
    assert rows[("mfr", None)].delta == pytest.approx(10 * rows[("flip_prob", "translate")].delta)
    result = decide(store, policy_file(tmp_path, "[gates]\nmax_mfr_increase = 1.0\n"))
    assert gates_of(result, "max_mfr_increase")[0].status == "fail"


def test_scoped_gates_apply_per_set(tmp_path):
    store = ResultStore(tmp_path / "s")
    for testset in ("val", "a"):
        n, wrong = 3000, 45  # 1.5 points lost: fails 1.0, passes 3.0
        from benchbox.datasets.catalog import subset_indices

        label = subset_indices("a")[0] if testset == "a" else 3
        groups = ("masked:a",) if testset == "a" else ()
        for precision, k in (("fp32", 0), ("fp16", wrong)):
            top = accurate(n, k, label)
            extra = {"a_top1": top} if testset == "a" else {}
            add_cell(store, cell(precision, testset), summary([label] * n, top, groups, **extra))
    result = decide(store, policy_file(tmp_path, "[gates]\nmax_top1_drop = 1.0\n[sets.a]\nmax_top1_drop = 3.0\n"))
    statuses = {g.set: (g.status, g.scope) for g in gates_of(result, "max_top1_drop")}
    assert statuses == {"val": ("fail", "[gates]"), "a": ("pass", "[sets.a]")}


def test_policy_scope_mistakes_are_errors(tmp_path):
    from benchbox.errors import UserError

    with pytest.raises(UserError, match="Unknown set"):
        policy_file(tmp_path, "[sets.imagenet-x]\nmax_top1_drop = 1.0\n")
    with pytest.raises(UserError, match="does not concern val"):
        policy_file(tmp_path, "[sets.val]\nmax_mce_increase = 1.0\n")
    with pytest.raises(UserError, match="expected one of"):
        policy_file(tmp_path, 'decide = "vibes"\n[gates]\nmax_top1_drop = 1.0\n')


def test_trt_lint_gates_only_trt_targets(tmp_path):
    store = val_store(tmp_path, 300, 0)
    lint = Record(cell("int8", None, engine="trt", device="cuda"), "trt_lint_errors", 2.0, extra={"findings": []})
    run_id = store.start_run("lint-key", "lint", lint.cell)
    store.finish_run(run_id, [lint])
    policy = policy_file(tmp_path, "[gates]\nmax_trt_lint_errors = 0\nmax_top1_drop = 1.0\n")
    result = decide(store, policy)
    (gate,) = gates_of(result, "max_trt_lint_errors")
    assert gate.status == "info" and "no TensorRT target" in gate.reason and result.exit_code == 0
    trt = Record(cell("fp32", "val", engine="trt", device="cuda"), "failed", None, error="no GPU")
    run_id = store.start_run("trt-key", "cell", trt.cell)
    store.fail_run(run_id, "no GPU", [trt])
    assert gates_of(decide(store, policy), "max_trt_lint_errors")[0].status == "fail"


def test_check_json_agrees_with_the_terminal_and_explain_shows_the_arithmetic(tmp_path):
    store = val_store(tmp_path, 400, 40)
    store.close()
    out = tmp_path / "verdict.json"
    proc = run_cli("check", "--store", tmp_path / "s", "--json", out, "--explain")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(out.read_text())
    assert data["verdict"] == "not-ready" and data["exit_code"] == 1
    assert "NOT READY" in proc.stdout and "how each gate was decided" in proc.stdout
    drop = next(g for g in data["gates"] if g["gate"] == "max_top1_drop")
    assert drop["status"] == "fail" and drop["value"] == pytest.approx(10.0) and drop["set"] == "val"
    assert {"gate", "set", "subject", "value", "limit", "ci_low", "ci_high", "status", "reason"} <= set(drop)
    assert "drop = baseline - value = +10" in proc.stdout


def test_init_policy_writes_a_commented_default_that_loads(tmp_path):
    target = tmp_path / "mine.toml"
    proc = run_cli("check", "--init-policy", target)
    assert proc.returncode == 0, proc.stderr
    text = target.read_text()
    assert 'decide = "interval"' in text and "# " in text and "[sets.a]" in text
    assert load_policy(target).gates["max_top1_drop"] == 1.0
    assert run_cli("check", "--init-policy", target).returncode == 2  # never overwrites


@pytest.mark.parametrize(("wrong", "n", "expected"), [(0, 300, "pass"), (40, 400, "fail"), (1, 200, "undecided")])
def test_check_junit_is_schema_valid_and_names_every_gate(tmp_path, wrong, n, expected):
    """`check --junit`: one testcase per gate and subject, a failure with value, limit and interval for a failed
    gate, skipped for "cannot decide" with the images it would take; valid against the JUnit schema."""
    import xml.etree.ElementTree as ET
    from pathlib import Path

    import xmlschema

    store = val_store(tmp_path, n, wrong)
    policy = tmp_path / "p.toml"
    policy.write_text("[gates]\nmax_top1_drop = 1.0\nmin_agreement_top1 = 90.0\n")
    out = tmp_path / "reports" / "gates.xml"
    done = run_cli("check", "--store", store.directory, "--policy", policy, "--junit", out)
    assert done.returncode == {"pass": 0, "fail": 1, "undecided": 2}[expected], done.stdout + done.stderr
    xmlschema.XMLSchema(Path(__file__).parent / "data" / "junit.xsd").validate(out)
    root = ET.parse(out).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    drop = cases["max_top1_drop m ort/fp16 val"]
    agreement = cases["min_agreement_top1 m ort/fp16 val"]
    assert agreement.find("failure") is None
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "m ort" and int(suite.get("tests")) == len(cases)
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == {"pass": "ready", "fail": "not-ready", "undecided": "cannot-decide"}[expected]
    if expected == "pass":
        assert drop.find("failure") is None and drop.find("skipped") is None
        assert int(root.get("failures")) == 0
    if expected == "fail":
        message = drop.find("failure").get("message")
        assert "vs limit 1.0" in message and "[" in message  # value, interval and limit
        assert int(suite.get("failures")) == 1
    if expected == "undecided":
        message = drop.find("skipped").get("message")
        assert message.startswith("cannot decide") and "images would decide it" in message


def test_compare_models_uses_the_paired_intervals_and_the_policy(tmp_path):
    """`benchbox compare BASE` and `check --baseline-model BASE`: another model on the same images at the same
    engine and precision is gated against BASE; a copy is READY with zero deltas, a damaged copy NOT READY, and
    two models on other images never pair."""
    n, labels = 400, [3] * 400
    store = ResultStore(tmp_path / "s")
    for model, wrong in (("v1", 4), ("v1-copy", 4), ("v2-damaged", 44)):
        for precision in ("fp32", "fp16"):
            at = cell(precision, "val", model=model, model_id=f"id-{model}")
            add_cell(store, at, summary(labels, accurate(n, wrong)), [("top1", 100.0 * (n - wrong) / n)])
    policy = tmp_path / "p.toml"
    policy.write_text("[gates]\nmax_top1_drop = 1.0\n")
    done = run_cli("compare", "v1", "--store", store.directory, "--policy", policy, "--json", tmp_path / "v.json")
    assert done.returncode == 1, done.stdout + done.stderr  # the damaged copy fails
    gates = json.loads((tmp_path / "v.json").read_text())["gates"]
    by_subject = {g["subject"]: g for g in gates if g["gate"] == "max_top1_drop"}
    for precision in ("fp32", "fp16"):
        same = by_subject[f"v1-copy ort/{precision} val"]
        assert same["status"] == "pass" and same["value"] == 0.0
        damaged = by_subject[f"v2-damaged ort/{precision} val"]
        assert damaged["status"] == "fail" and damaged["value"] == pytest.approx(10.0)
    assert "v1 ort/fp16 val" not in by_subject  # the baseline is not compared with itself
    rows = Comparison(store, baseline_model="v1").rows()
    assert {r.baseline for r in rows} == {"v1 ort/fp32", "v1 ort/fp16"} and {r.kind for r in rows} == {"model"}
    # the copy alone: READY, through check --baseline-model as through compare
    alone = ResultStore(tmp_path / "alone")
    for model in ("v1", "v1-copy"):
        at = cell("fp32", "val", model=model, model_id=f"id-{model}")
        add_cell(alone, at, summary(labels, accurate(n, 4)), [("top1", 99.0)])
    done = run_cli("check", "--store", alone.directory, "--policy", policy, "--baseline-model", "v1")
    assert done.returncode == 0, done.stdout + done.stderr
    # other images: never paired, cannot decide
    other = ResultStore(tmp_path / "other")
    add_cell(other, cell("fp32", "val", model="v1", model_id="id-v1"), summary(labels, accurate(n, 4)), [])
    shifted = summary(labels, accurate(n, 4), sids=np.arange(10_000, 10_000 + n))
    add_cell(other, cell("fp32", "val", model="v2", model_id="id-v2"), shifted, [])
    done = run_cli("compare", "v1", "--store", other.directory, "--policy", policy)
    assert done.returncode == 2 and "other images" in done.stdout, done.stdout
    missing = run_cli("compare", "nope", "--store", other.directory, "--policy", policy)
    assert missing.returncode == 2 and "no results of baseline model 'nope'" in missing.stdout, missing.stdout
    # two stores, one model in each: read side by side, gated the same way
    first, second = ResultStore(tmp_path / "first"), ResultStore(tmp_path / "second")
    add_cell(first, cell("fp32", "val", model="v1", model_id="id-v1"), summary(labels, accurate(n, 4)), [])
    add_cell(second, cell("fp32", "val", model="v2", model_id="id-v2"), summary(labels, accurate(n, 44)), [])
    split = run_cli("compare", "v1", "--store", first.directory, "--other-store", second.directory, "--policy", policy)
    assert split.returncode == 1 and "v2 ort/fp32 val" in split.stdout, split.stdout + split.stderr
    wrong = run_cli("compare", "v1", "--store", first.directory, "--other-store", tmp_path / "nowhere")
    assert wrong.returncode == 2 and "is not a benchbox results store" in wrong.stderr + wrong.stdout
