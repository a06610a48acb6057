"""Every metric against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchbox.metrics.calibration import confidence_and_label_logprob, ece, nll, rms_calibration_error, softmax
from benchbox.metrics.classification import accuracy, agreement_top1, correct_at_k, real_correct, topk_indices
from benchbox.metrics.ood import aupr, auroc, fpr_at_recall
from benchbox.metrics.robustness import (
    corruption_errors,
    flip_probability,
    mce,
    top5_distance,
    top5_distance_pair,
)
from benchbox.metrics.stats import (
    bootstrap_p_value,
    bootstrap_weights,
    mcnemar_exact,
    paired_difference,
    paired_interval,
    percentile_interval,
    samples_to_decide,
    wilson_interval,
)


def test_topk_and_accuracy():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    labels = np.array([1, 2, 1, 1])
    top = topk_indices(logits, 2)
    # row 1 ties 0.1 (class 1) with 0.1 (class 2): the lower index comes first, as in torch.topk
    assert top.tolist() == [[1, 0], [0, 1], [2, 1], [0, 1]]
    top1 = correct_at_k(top, labels, 1)
    top2 = correct_at_k(top, labels, 2)
    assert top1.tolist() == [True, False, False, False]
    assert top2.tolist() == [True, False, True, True]
    acc = accuracy(top2)
    assert acc["value"] == 75.0 and acc["n"] == 4 and acc["hits"] == 3


def test_wilson_interval_hand_computed():
    # p = 0.8, n = 100, z = 1.96: centre = (0.8 + 1.9208/100) / 1.038416 = 0.78891,
    # half = 1.96 * sqrt(0.0016 + 0.000096) / 1.038416 = 0.077733
    lo, hi = wilson_interval(80, 100)
    assert lo == pytest.approx(0.7112, abs=1e-4) and hi == pytest.approx(0.8666, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0


def test_paired_difference_and_mcnemar():
    a = np.array([1, 1, 1, 1, 0, 0, 1, 1, 0, 1], bool)
    b = np.array([1, 0, 1, 1, 1, 0, 0, 1, 0, 1], bool)
    out = paired_difference(a, b)
    # n10 = 2 (a right, b wrong: idx 1, 6), n01 = 1 (idx 4); diff = (1 - 2) / 10 = -0.1
    # Bonett-Price: p10 = 3/12 = .25, p01 = 2/12 = .166667, centre -.083333,
    # var = ((.25 + .166667) - .083333^2) / 12 = .0341435, half = 1.959964 * .184780 = .362162
    assert (out["n10"], out["n01"]) == (2, 1)
    assert out["diff"] == pytest.approx(-0.1)
    assert out["lo"] == pytest.approx(-0.083333 - 0.362162, abs=2e-6)
    assert out["hi"] == pytest.approx(-0.083333 + 0.362162, abs=2e-6)
    # no disagreement on 300 images still leaves +-0.92 points: p10 = p01 = 1/302, half = 1.96 sqrt(2/302) / sqrt(302)
    lo, hi = paired_interval(0, 0, 300)
    assert hi == pytest.approx(1.959964 * math.sqrt(2 / 302) / math.sqrt(302), rel=1e-7) and lo == pytest.approx(-hi)
    # exact two-sided: 2 * P(X <= 1), X ~ Bin(3, .5) = 2 * (1 + 3) / 8 = 1.0
    assert mcnemar_exact(2, 1) == 1.0
    # 2 * P(X <= 0), X ~ Bin(10, .5) = 2 / 1024
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 1024)
    # (12, 1): m = 13, 2 * (C(13,0) + C(13,1)) / 2^13 = 28 / 8192
    assert mcnemar_exact(12, 1) == pytest.approx(28 / 8192)
    assert mcnemar_exact(0, 0) == 1.0
    assert 0.0 <= mcnemar_exact(30000, 29000) < 1e-4  # large counts stay exact, no overflow


def test_fast_topk_equals_a_stable_full_sort_with_ties():
    rng = np.random.default_rng(0)
    logits = rng.integers(0, 6, size=(400, 1000)).astype(np.float32)  # many ties at every rank
    logits[0, :] = 1.0  # all equal
    logits[1, 7] = np.float32(-0.0)
    expected = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    assert np.array_equal(topk_indices(logits, 5), expected)
    smooth = rng.normal(size=(64, 1000)).astype(np.float32)
    assert np.array_equal(topk_indices(smooth, 5), np.argsort(-smooth, axis=1, kind="stable")[:, :5])


def test_agreement_of_nan_outputs_is_never_agreement():
    assert agreement_top1(np.array([3, -1, 2]), np.array([3, -1, 1])).tolist() == [True, False, False]


def test_real():
    correct = real_correct(np.array([3, 7, 1]), [[3, 4], [], [2]])
    assert correct.tolist() == [True, False]  # the empty list is skipped


def test_ece_hand_computed():
    conf = np.array([0.95, 0.95, 0.55, 0.55, 0.25])
    correct = np.array([1, 0, 1, 1, 0])
    # 15 bins: 0.95 -> bin 14, 0.55 -> bin 8, 0.25 -> bin 3
    # bin14: 2/5 * |0.5 - 0.95| = 0.18; bin8: 2/5 * |1 - 0.55| = 0.18; bin3: 1/5 * |0 - 0.25| = 0.05
    assert ece(conf, correct) == pytest.approx(0.41)
    assert ece(np.array([1.0]), np.array([1])) == pytest.approx(0.0)  # 1.0 lands in the last bin


def test_rms_calibration_error_reproduces_reference_quirk():
    conf = np.concatenate([np.full(100, 0.9), np.full(100, 0.6), np.full(50, 0.3)])
    correct = np.concatenate([np.ones(100), np.zeros(100), np.ones(50)])
    # sorted by confidence: bins [0,100) -> the 50 at .3 (acc 1) and 50 of .6 (acc 0), [100,250) -> the rest
    # only the first bin is visited (reference skips the last): mean conf .45, acc .5, weight 100/250
    expected = math.sqrt(100 / 250 * (0.45 - 0.5) ** 2)
    assert rms_calibration_error(conf, correct) == pytest.approx(expected)
    assert math.isnan(rms_calibration_error(conf[:50], correct[:50]))


def test_nll_and_softmax():
    logits = np.array([[0.0, math.log(3.0)], [math.log(4.0), 0.0]])
    # softmax rows: [1/4, 3/4], [4/5, 1/5]; labels 1, 1 -> -(log .75 + log .2) / 2
    assert softmax(logits)[0].tolist() == pytest.approx([0.25, 0.75])
    confidence, logprob = confidence_and_label_logprob(logits, np.array([1, 1]))
    assert confidence.tolist() == pytest.approx([0.75, 0.8])
    assert logprob.tolist() == pytest.approx([math.log(0.75), math.log(0.2)])
    assert nll(logprob) == pytest.approx(-(math.log(0.75) + math.log(0.2)) / 2)
    assert math.isnan(confidence_and_label_logprob(logits, np.array([-1, 0]))[1][0])  # no label, no log-prob


def test_ood_metrics_hand_computed():
    pos = np.array([0.9, 0.8, 0.4])
    neg = np.array([0.7, 0.3, 0.2, 0.1])
    # ranking desc: .9P .8P .7N .4P .3N .2N .1N
    # AP = sum over positives of precision at its rank / 3 = (1/1 + 2/2 + 3/4) / 3
    assert aupr(pos, neg) == pytest.approx((1 + 1 + 0.75) / 3)
    # AUROC: pairs pos > neg: .9 > all 4, .8 > all 4, .4 > 3 -> 11 / 12
    assert auroc(pos, neg) == pytest.approx(11 / 12)
    # recall 1 first reached at threshold .4 with 1 false positive of 4 -> FPR 0.25
    assert fpr_at_recall(pos, neg, 0.95) == pytest.approx(0.25)
    assert auroc(np.array([0.5]), np.array([0.5])) == pytest.approx(0.5)  # ties count half


def test_ood_matches_sklearn_when_available():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 300).round(1), rng.normal(0, 1, 700).round(1)  # rounding makes ties
    labels = np.r_[np.ones(300), np.zeros(700)]
    scores = np.r_[pos, neg]
    assert aupr(pos, neg) == pytest.approx(sk.average_precision_score(labels, scores))
    assert auroc(pos, neg) == pytest.approx(sk.roc_auc_score(labels, scores))


def test_corruption_errors_and_mce():
    errors = {("gaussian_noise", s): e for s, e in zip(range(1, 6), [0.2, 0.3, 0.4, 0.5, 0.6])}
    per = corruption_errors(errors)
    # CE = sum(errors) / sum(AlexNet severities) = 2.0 / 4.43214 * 100
    assert per["gaussian_noise"]["ce"] == pytest.approx(100 * 2.0 / (0.69528 + 0.82542 + 0.93554 + 0.98138 + 0.99452))
    assert per["gaussian_noise"]["error"] == pytest.approx(40.0)
    summary = mce(per, clean_error=0.25)
    assert math.isnan(summary["mce"]) and summary["n_corruptions"] == 1  # 14 missing: no full mCE
    # relative CE = (0.4 - 0.25) / (0.886428 - 0.4348)
    assert summary["relative_mce_partial"] == pytest.approx(100 * 0.15 / (0.886428 - 0.4348), rel=1e-5)


def test_full_mce_is_mean_of_15():
    from benchbox.datasets.catalog import C_CORRUPTIONS
    from benchbox.metrics.robustness import alexnet_c_baseline

    base = alexnet_c_baseline()["severity"]
    # a model with exactly half of AlexNet's error everywhere has CE 50 on each and mCE 50
    errors = {(c, s): base[c][s - 1] / 2 for c in C_CORRUPTIONS for s in range(1, 6)}
    errors[("saturate", 1)] = 0.9  # extras are reported but never averaged
    summary = mce(corruption_errors(errors))
    assert summary["mce"] == pytest.approx(50.0)


def test_flip_probability_noise_vs_sequence():
    preds = [np.array([1, 2, 1, 1, 3])]
    # sequence: pairs (0,1)(1,2)(2,3)(3,4): flips 1,1,0,1 -> 3/4
    assert flip_probability(preds, noise=False) == pytest.approx(0.75)
    # noise: every frame vs frame 0 (=1): 2!=1, 1, 1, 3!=1 -> 2/4
    assert flip_probability(preds, noise=True) == pytest.approx(0.5)
    # difficulty 2 (non-noise): subsequences 0,2,4 and 1,3: pairs (0,2)(2,4)(1,3) -> 0,1,1 -> 2/3
    assert flip_probability(preds, noise=False, difficulty=2) == pytest.approx(2 / 3)


def test_top5_distance():
    ref = np.array([0, 1, 2, 3, 4])  # top-5 classes, best first
    assert top5_distance_pair(ref, ref) == 0
    swapped = np.array([1, 0, 2, 3, 4])  # top-2 swapped: |0-1| + |1-0| = 2
    assert top5_distance_pair(ref, swapped) == 2
    dropped = np.array([1, 2, 3, 4, 5])  # class 0 falls out of the top 5 (rank >= 6): |0 - 5| = 5, others shift
    # sigma - 1 of classes 0..4 in other = [>=5, 0, 1, 2, 3] -> |0-5| + |1-0| + |2-1| + |3-2| + |4-3| = 9
    assert top5_distance_pair(ref, dropped) == 9
    assert top5_distance([np.stack([ref, swapped, ref])], noise=False) == pytest.approx(2.0)
    assert top5_distance([np.stack([ref, swapped, ref])], noise=True) == pytest.approx(1.0)


def test_top5_distance_from_lists_equals_the_reference_on_logits():
    """test.py ranks every class of the other frame; the top-5 lists alone give the same number."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        a, b = rng.normal(size=50), rng.normal(size=50)
        b[rng.integers(0, 50, 3)] = a.max() + rng.normal(size=3)  # reshuffle the top now and then
        rank_b = np.empty(50, int)
        rank_b[np.argsort(-b, kind="stable")] = np.arange(1, 51)
        sigma = rank_b[np.argsort(-a, kind="stable")[:5]]
        reference = int(np.sum(np.abs(np.arange(5) - np.minimum(sigma - 1, 5))))
        top_a, top_b = (topk_indices(x[None], 5)[0] for x in (a, b))
        assert top5_distance_pair(top_a, top_b) == reference


def test_mcnemar_log_space_agrees_with_exact_integers():
    from benchbox.metrics import stats

    exact = 2 * sum(math.comb(2001, i) for i in range(982)) / 2**2001  # P(X <= 981)
    assert stats.mcnemar_exact(1020, 981) == pytest.approx(exact, rel=1e-9)


def test_weighted_metrics_equal_the_plain_ones_on_unit_weights_and_on_repeated_rows():
    """A bootstrap weight of k is the same as the row appearing k times: one implementation, two uses."""
    rng = np.random.default_rng(3)
    conf, correct = rng.uniform(size=40), rng.uniform(size=40) < 0.6
    logp = np.log(rng.uniform(0.01, 1, size=40))
    counts = rng.integers(0, 4, size=40)
    repeated = np.repeat(np.arange(40), counts)
    weights = np.stack([np.ones(40), counts.astype(float)])
    assert ece(conf, correct, weights=weights) == pytest.approx(
        [ece(conf, correct), ece(conf[repeated], correct[repeated])]
    )
    assert nll(logp, weights=weights) == pytest.approx([nll(logp), nll(logp[repeated])])
    pos, neg = rng.normal(1, 1, 25).round(1), rng.normal(0, 1, 15).round(1)
    scores = np.r_[pos, neg]
    flat_pos, flat_neg = (
        scores[:25][np.repeat(np.arange(25), counts[:25])],
        scores[25:][np.repeat(np.arange(15), counts[25:])],
    )
    for fn in (aupr, auroc, fpr_at_recall):
        assert fn(pos, neg, weights=weights) == pytest.approx([fn(pos, neg), fn(flat_pos, flat_neg)])


def test_nan_outputs_take_the_worst_rank_in_ood_metrics():
    """A NaN used to sort as the highest anomaly score: NaN on every O image gave AUPR and AUROC 100."""
    from benchbox.evaluation.summaries import anomaly_scores, empty

    ood, inside = (
        np.zeros(4, empty().dtype.descr + [("o_conf", "<f8")]),
        np.zeros(6, empty().dtype.descr + [("o_conf", "<f8")]),
    )
    ood["o_conf"], inside["o_conf"] = [0.2, 0.3, 0.1, 0.25], [0.9, 0.8, 0.7, 0.95, 0.6, 0.85]
    clean = auroc(anomaly_scores(ood, "o", True), anomaly_scores(inside, "o", False))
    assert clean == 1.0
    ood["nonfinite"] = 1  # every O image NaN: each is missed at every threshold
    assert auroc(anomaly_scores(ood, "o", True), anomaly_scores(inside, "o", False)) == 0.0
    ood["nonfinite"], inside["nonfinite"] = 0, 1  # every inlier NaN: each is a false alarm at every threshold
    assert auroc(anomaly_scores(ood, "o", True), anomaly_scores(inside, "o", False)) == 0.0
    assert fpr_at_recall(anomaly_scores(ood, "o", True), anomaly_scores(inside, "o", False)) == 1.0


def test_nan_frames_flip_and_are_the_farthest_top5():
    from benchbox.metrics.robustness import video_flip_rates

    # -1 is a non-finite frame: two of them "agreed" before
    assert video_flip_rates([np.array([4, -1, -1, 4])], noise=False).tolist() == [1.0]  # pairs (4,-1)(-1,-1)(-1,4)
    assert video_flip_rates([np.array([4, -1, 4])], noise=True).tolist() == [0.5]  # vs frame 0: flip, same
    assert top5_distance_pair(np.full(5, -1), np.full(5, -1)) == 15  # sum of |k - 5| over k < 5
    assert top5_distance_pair(np.arange(5), np.full(5, -1)) == 15


def test_corruption_errors_take_resampled_arrays():
    errors = {("fog", s): np.array([0.1 * s, 0.1 * s + 0.05]) for s in (1, 2)}
    per = corruption_errors(errors)
    plain = corruption_errors({k: float(v[0]) for k, v in errors.items()})
    assert per["fog"]["ce"][0] == pytest.approx(plain["fog"]["ce"]) and per["fog"]["ce"].shape == (2,)


def test_bootstrap_weights_are_multinomial_and_seeded():
    blocks = list(bootstrap_weights(7, resamples=450, seed=5, block=200))
    assert [len(b) for b in blocks] == [200, 200, 50]
    stacked = np.concatenate(blocks)
    assert (stacked.sum(axis=1) == 7).all() and stacked.dtype == np.float32
    assert np.array_equal(stacked, np.concatenate(list(bootstrap_weights(7, resamples=450, seed=5, block=200))))
    assert stacked.mean() == pytest.approx(1.0, abs=0.05)  # each cluster drawn once per resample on average


def test_percentile_interval_p_value_and_images_needed():
    values = np.arange(1, 1001, dtype=float)
    lo, hi = percentile_interval(values)
    assert lo == pytest.approx(np.quantile(values, 0.025)) and hi == pytest.approx(np.quantile(values, 0.975))
    assert bootstrap_p_value(values - 500.5) == pytest.approx(1.0)
    assert bootstrap_p_value(values) == 0.0
    # estimate 0.5, limit 1, half-width 1 on 100 images: (1 / 0.5)^2 x 100 = 400 images
    assert samples_to_decide(0.5, -0.5, 1.5, 1.0, 100) == 400
    assert samples_to_decide(1.0, 0.0, 2.0, 1.0, 100) is None  # on the limit: nothing decides it
