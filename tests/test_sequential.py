"""--until-decided: the confidence sequences cover at every time at once (simulation, fixed seeds), the stopping
rule's error rate stays within alpha, the visit order is one uniformly shuffled order shared by every variant, and
an eval stops once decided, says so in its records, agrees with check, and resumes without re-scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import evaluate, run_cli

from benchbox.evaluation.sequential import round_sizes
from benchbox.metrics.sequential import confidence_path, confidence_sequence, difference_sequence, range_sequence


def _miss_rate(draw, alpha: float, runs: int, population: int | None, t: int) -> float:
    misses = 0
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        values, mean = draw(rng)
        x = rng.permutation(values)[:t] if population else values[:t]
        low, high = confidence_sequence(x, alpha, population)
        misses += not low <= mean <= high
    return misses / runs


@pytest.mark.parametrize(
    ("name", "population"),
    [("bernoulli-without-replacement", 800), ("beta-without-replacement", 800), ("bernoulli-iid", None)],
)
def test_confidence_sequence_covers_at_every_time_at_once(name, population):
    """The interval after t observations is the running intersection of every earlier one, so it covering the
    mean means every look covered it: the miss rate over 150 seeded runs stays at or below alpha (0.1), with
    three standard errors of simulation noise."""

    def draw(rng):
        if population is None:
            return (rng.random(300) < 0.3).astype(float), 0.3
        values = (rng.random(population) < 0.3).astype(float) if "bernoulli" in name else rng.beta(2, 5, population)
        return values, float(values.mean())

    rate = _miss_rate(draw, 0.1, 150, population, 300)
    assert rate <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / 150), rate


def test_interval_narrows_with_the_variance_and_reaches_the_mean_at_the_population_size():
    zeros = np.zeros(300)
    widths = [np.diff(difference_sequence(zeros[:t], 100.0, 0.05, 300))[0] for t in (50, 100, 200, 300)]
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] < 1.0  # the whole population seen: the mean is (almost) known
    # three points of top-1 need about ln(1/alpha) / ln(1.03) ~ 100 images without a disagreement (plus hedging)
    assert difference_sequence(zeros[:128], 100.0, 0.05, 300)[1] < 3.0
    noisy = np.random.default_rng(0).choice([-100.0, 0.0, 100.0], 300, p=[0.1, 0.8, 0.1])
    assert np.diff(difference_sequence(noisy, 100.0, 0.05))[0] > np.diff(difference_sequence(zeros, 100.0, 0.05))[0]
    low, high = range_sequence(np.full(200, 99.0), 0.0, 100.0, 0.05)
    assert low < 99.0 < high <= 100.0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        confidence_sequence(np.array([1.5]), 0.05)
    with pytest.raises(ValueError):
        confidence_sequence(np.array([0.5, 0.5]), 0.05, population=1)
    with pytest.raises(ValueError):
        difference_sequence(np.zeros(3), 0.0, 0.05)


def test_stopping_rule_error_rate_is_within_alpha_at_the_limit():
    """The hardest case for a 1-point gate: the full-pass drop is exactly 1.0 (a pass would be wrong to claim
    below it, a fail wrong to claim above it). Checking after every round, as --until-decided does, the
    fraction of runs that decide "pass" stays within alpha (0.05)."""
    n, limit, alpha, runs = 2000, 1.0, 0.05, 100
    wrong = 0
    for seed in range(runs):
        rng = np.random.default_rng(1000 + seed)
        d = np.zeros(n)
        d[:40] = 100.0  # 2 % of images lost ...
        d[40:60] = -100.0  # ... and 1 % gained: a drop of exactly one point
        x = (rng.permutation(d) + 100.0) / 200.0
        sizes = list(round_sizes(n, 32, videos=False))
        for low, high in confidence_path(x, alpha, n, sizes[:-1]):
            low, high = 200.0 * low - 100.0, 200.0 * high - 100.0
            if high <= limit:  # decided pass although the truth is at the limit
                wrong += 1
                break
            if low > limit:
                break
    assert wrong / runs <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / runs)


def test_visit_order_is_one_shuffled_order_for_every_variant(tiny_images):
    import dataclasses

    from benchbox.datasets.readers import Sample, SampleSet
    from benchbox.evaluation.planning import visit_order
    from benchbox.records import SetKey

    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 201)]
    samples = [Sample(f"/x/{name}", i % 10, name) for i, name in enumerate(names)]
    fog = SampleSet(SetKey("c", "fog/1"), tiny_images, samples, "c")
    snow = dataclasses.replace(
        fog, key=SetKey("c", "snow/5"), samples=[Sample(f"/y/{s.key}", s.label, s.key) for s in samples[::-1]]
    )
    a, b = visit_order(fog), visit_order(snow)
    assert [s.key for s in a.samples] == [s.key for s in b.samples]  # the same images first in every variant
    assert sorted(s.key for s in a.samples) == sorted(names)
    assert [s.key for s in a.samples] != names  # shuffled, and the same every time
    assert [s.key for s in visit_order(fog).samples] == [s.key for s in a.samples]
    first = [s.label for s in a.samples[:50]]
    assert len(set(first)) == 10  # a prefix is a spread of the set, not its first classes


@pytest.fixture(scope="module")
def many_images(tmp_path_factory):
    """A labelled val-layout folder large enough to stop early in: 4 classes x 60 images."""
    from benchbox.datasets.synthetic import write_image_folder

    root = tmp_path_factory.mktemp("many")
    write_image_folder(root / "val", ["n01440764", "n01443537", "n01484850", "n15075141"], per_class=60, seed=5)
    from benchbox.datasets.readers import GENERATED_MARKER

    (root / "val" / GENERATED_MARKER).unlink()
    return root


def _policy(tmp_path, limit: float) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(f"[gates]\nmax_top1_drop = {limit}\n")
    return str(path)


def _val_until_decided(artifact, store, images, policy):
    """fp32 and fp16 on val with --until-decided, in batches of 16."""
    return evaluate(
        artifact,
        store,
        sets=["val"],
        data_root=images,
        precisions=["fp32", "fp16"],
        until_decided=True,
        policy=policy,
        batch_size=16,
    )


def test_eval_until_decided_stops_early_says_so_agrees_with_check_and_resumes(
    tmp_path, tiny_full_artifact, many_images
):
    store = tmp_path / "store"
    policy = _policy(tmp_path, 20.0)
    result = _val_until_decided(tiny_full_artifact, store, many_images, policy)
    stopped = result.sequential["val"]
    assert stopped["decided"] and stopped["n"] < stopped["N"] == 240, stopped
    top1 = [r for r in result.records if r.metric == "top1"]
    assert {r.n for r in top1} == {stopped["n"]}
    for record in top1:
        assert "sequential" in record.flags
        info = record.extra["sequential"]
        assert info["n"] == stopped["n"] and info["N"] == 240 and info["seed"] == 0 and info["rule"]
    # check decides the same gate the same way, from the stored prefixes and their confidence sequence
    checked = run_cli("check", "--store", store, "--policy", policy, "--json", tmp_path / "v.json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    verdict = json.loads((tmp_path / "v.json").read_text())
    (gate,) = [g for g in verdict["gates"] if g["gate"] == "max_top1_drop"]
    assert gate["status"] == "pass" and "confidence sequence" in gate["arithmetic"]
    # a full pass continues from the stored chunks: only the images after the prefix are decoded again
    starts = []
    full = evaluate(
        tiny_full_artifact,
        store,
        on_progress=lambda label, done, total: starts.append((label, done, total)),
        sets=["val"],
        data_root=many_images,
        precisions=["fp32", "fp16"],
        batch_size=16,
    )
    assert starts[0][1] >= stopped["n"] and starts[0][2] == 240, starts[:2]
    assert {r.n for r in full.records if r.metric == "top1"} == {240}
    assert not any("sequential" in r.flags for r in full.records)


def test_until_decided_without_a_pair_runs_in_full_and_says_why(tmp_path, tiny_full_artifact, many_images):
    result = evaluate(
        tiny_full_artifact,
        tmp_path / "store",
        sets=["val"],
        data_root=many_images,
        precisions=["fp16"],
        until_decided=True,
        batch_size=16,
        limit=40,
    )
    assert not result.sequential
    assert any("--until-decided" in w for w in result.warnings)
    assert {r.n for r in result.records if r.metric == "top1"} == {40}


def _c_store(tmp_path, sequential: dict | None, extra_val: int = 0):
    """C (2 corruptions x 5 severities x 40 images) and val (the same 40 images, plus `extra_val` others) for
    fp32 and fp16 that agree everywhere; C's cells flagged as sequential prefixes when `sequential` is given."""
    from stored import accurate, add_cell, add_set, cell, summary

    from benchbox.evaluation.scoring import ScoreContext
    from benchbox.evaluation.scoring.corruption import set_records
    from benchbox.records import Record
    from benchbox.store import ResultStore

    store = ResultStore(tmp_path / ("seq" if sequential else "full"))
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(40 + extra_val)]
    info = {"sequential": sequential} if sequential else None
    for precision in ("fp32", "fp16"):
        val = summary([7] * len(names), accurate(len(names), 6, 7), names=names, sids=np.arange(1, len(names) + 1))
        add_cell(store, cell(precision, "val"), val)
        digests, variant_records = [], []
        for k, (corruption, severity) in enumerate((c, s) for c in ("fog", "snow") for s in range(1, 6)):
            top = accurate(40, 10 + severity, 7)
            data = summary([7] * 40, top, names=names[:40], sids=np.arange(1000 * (k + 1), 1000 * (k + 1) + 40))
            data["index"] = np.random.default_rng(0).permutation(40)  # the visit order the eval recorded
            err = float(np.mean(np.asarray(top) != 7))
            at = cell(precision, "c", f"{corruption}/{severity}")
            rec = [Record(at, "error", 100 * err, 40, extra={"error_fraction": err})]
            digests.append(add_cell(store, at, data, rec, info=info))
            variant_records += rec
        add_set(
            store, cell(precision, "c"), digests, set_records(ScoreContext(cell(precision, "c"), ""), variant_records)
        )
    return store


def test_stored_prefixes_are_compared_with_their_confidence_sequence(tmp_path):
    """check reads a sequentially scored set as the eval decided it: the mCE and relative-mCE rows carry the
    confidence sequence at the run's alpha over n of N images (never the fixed-n bootstrap), relative mCE reads
    clean val only on C's own images, and the same data scored in full keeps its bootstrap interval."""
    from benchbox.reports.comparison import Comparison

    info = {"n": 40, "N": 1000, "seed": 0, "rule": "test", "alpha_gate": 0.01}
    rows = {
        (r.set, r.metric): r for r in Comparison(_c_store(tmp_path, info, extra_val=25)).rows() if r.variant is None
    }
    full = {(r.set, r.metric): r for r in Comparison(_c_store(tmp_path, None)).rows() if r.variant is None}
    for metric in ("mce", "relative_mce"):
        row = rows[("c", metric)]
        assert row.sequential and row.n_text == "40/1000" and row.method.startswith("confidence sequence")
        assert row.delta == pytest.approx(0.0) and row.ci_low < 0 < row.ci_high
        assert row.ci_high - row.ci_low > full[("c", metric)].ci_high - full[("c", metric)].ci_low
        assert "bootstrap" in full[("c", metric)].method and not full[("c", metric)].sequential
    agreement = rows[("c", "agreement_top1")]
    assert agreement.value == 100.0 and agreement.value_ci[0] < 100.0 and agreement.sequential
    assert not rows[("val", "top1")].sequential  # val ran in full


def test_a_set_no_gate_concerns_stops_at_once_and_says_so(tmp_path, tiny_full_artifact, many_images):
    policy = tmp_path / "only-c.toml"
    policy.write_text("[gates]\nmax_mce_increase = 2.0\n")
    result = _val_until_decided(tiny_full_artifact, tmp_path / "store", many_images, policy)
    stopped = result.sequential["val"]
    assert stopped["n"] == 64 and stopped["decided"]
    assert any("no gate of the policy concerns val" in w for w in result.warnings)
