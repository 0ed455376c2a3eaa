"""helpers.evaluation: metrics, intervals, thresholds, calibration, MedMNIST definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from helpers import evaluation as ev


def test_binary_metrics_on_a_hand_counted_example():
    y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    s = [0.9, 0.8, 0.7, 0.2, 0.6, 0.1, 0.1, 0.3, 0.2, 0.05]
    m = ev.binary_metrics(y, s, threshold=0.5)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (3, 1, 1, 5)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["ppv"] == pytest.approx(3 / 4)
    assert m["npv"] == pytest.approx(5 / 6)
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["f1"] == pytest.approx(6 / 8)
    nobody = ev.binary_metrics(y, s, threshold=2.0)
    assert np.isnan(nobody["ppv"]) and nobody["specificity"] == 1.0


@pytest.mark.parametrize(
    ("y", "s", "message"),
    [
        ([0, 1], [0.1], "y_true has 2 values but y_score has 1"),
        ([0, 2], [0.1, 0.2], "0/1 labels"),
        ([0, 1], [0.1, np.nan], "NaN"),
        ([], [], "no samples"),
    ],
)
def test_bad_inputs_are_named(y, s, message):
    with pytest.raises(ValueError, match=message):
        ev.binary_metrics(y, s)


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(0)

    def sample(n):
        y = rng.integers(0, 2, n)
        return y, y * 0.5 + rng.normal(0, 0.5, n)

    small = ev.bootstrap_ci(roc_auc_score, *sample(100), n_boot=300, seed=1)
    large = ev.bootstrap_ci(roc_auc_score, *sample(3000), n_boot=300, seed=1)
    for value, low, high in (small, large):
        assert low < value < high
    assert (large[2] - large[1]) < (small[2] - small[1]) / 3
    # the same seed gives the same interval
    y, s = sample(200)
    assert ev.bootstrap_ci(roc_auc_score, y, s, n_boot=50, seed=3) == ev.bootstrap_ci(
        roc_auc_score, y, s, n_boot=50, seed=3
    )


@pytest.mark.filterwarnings("error")  # the undefined resamples must not leak warnings
def test_bootstrap_skips_resamples_where_the_metric_is_undefined():
    y = np.array([0] * 49 + [1])
    s = np.linspace(0, 1, 50)
    value, low, high = ev.bootstrap_ci(roc_auc_score, y, s, n_boot=200, seed=0)
    assert value == 1.0 and low == pytest.approx(1.0) and high == pytest.approx(1.0)


def test_clinical_report_rows_and_columns():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = np.clip(y * 0.4 + rng.uniform(0, 0.6, 300), 0, 1)
    report = ev.clinical_report(y, s, threshold=0.5, n_boot=100, seed=0)
    assert list(report.index) == [
        "roc_auc",
        "pr_auc",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "accuracy",
    ]
    assert list(report.columns) == ["value", "ci_low", "ci_high"]
    assert report.loc["roc_auc", "value"] == pytest.approx(roc_auc_score(y, s))
    assert (report["ci_low"] <= report["value"]).all() and (
        report["value"] <= report["ci_high"]
    ).all()


def test_clinical_report_subset_of_metrics_matches_the_full_report():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = np.clip(y * 0.4 + rng.uniform(0, 0.6, 300), 0, 1)
    full = ev.clinical_report(y, s, threshold=0.5, n_boot=100, seed=0)
    subset = ev.clinical_report(
        y, s, threshold=0.5, n_boot=100, seed=0, metrics=("specificity", "roc_auc")
    )
    assert list(subset.index) == ["specificity", "roc_auc"]
    pd.testing.assert_frame_equal(subset, full.loc[["specificity", "roc_auc"]])
    with pytest.raises(ValueError, match=r"unknown or no metrics \['f2'\]; choose from roc_auc"):
        ev.clinical_report(y, s, threshold=0.5, metrics=("f2",))
    with pytest.raises(ValueError, match="unknown or no metrics"):
        ev.clinical_report(y, s, threshold=0.5, metrics=())


def test_bootstrap_ci_of_a_metric_undefined_on_the_data_is_nan():
    value, low, high = ev.bootstrap_ci(
        roc_auc_score, np.ones(10, dtype=int), np.linspace(0, 1, 10), n_boot=20
    )
    assert np.isnan(value) and np.isnan(low) and np.isnan(high)


def test_threshold_for_sensitivity_reaches_the_target_and_is_the_most_specific():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 500)
    s = y + rng.normal(0, 0.8, 500)
    for target in (0.8, 0.9, 0.95, 1.0):
        t = ev.threshold_for_sensitivity(y, s, target)
        assert ev.binary_metrics(y, s, t)["sensitivity"] >= target
        higher = np.min(s[s > t]) if np.any(s > t) else np.inf
        assert ev.binary_metrics(y, s, higher)["sensitivity"] < target
    with pytest.raises(ValueError, match="no positive cases"):
        ev.threshold_for_sensitivity([0, 0], [0.1, 0.2])


def test_youden_threshold_separates_perfectly_separable_scores():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    t = ev.youden_threshold(y, s)
    m = ev.binary_metrics(y, s, t)
    assert m["sensitivity"] == 1.0 and m["specificity"] == 1.0


def test_calibration_perfect_vs_overconfident():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, 20000) < p).astype(int)  # calibrated by construction
    assert ev.expected_calibration_error(y, p) < 0.02
    overconfident = np.where(p > 0.5, 1.0, 0.0)
    assert ev.expected_calibration_error(y, overconfident) > 0.2
    table = ev.reliability_table(y, p, n_bins=5)
    assert table["count"].sum() == 20000 and len(table) == 5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ev.reliability_table([0, 1], [0.5, 1.5])


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(4)
    true_logits = rng.normal(0, 2, 20000)
    y = (rng.uniform(0, 1, 20000) < 1 / (1 + np.exp(-true_logits))).astype(int)
    t = ev.fit_temperature(true_logits * 3, y)  # a model 3x too confident
    assert t == pytest.approx(3, rel=0.1)
    calibrated = ev.apply_temperature(true_logits * 3, t)
    raw = ev.apply_temperature(true_logits * 3, 1.0)
    assert ev.expected_calibration_error(y, calibrated) < ev.expected_calibration_error(y, raw)
    with pytest.raises(ValueError, match="positive"):
        ev.apply_temperature([0.0], 0)


def test_medmnist_definitions():
    # Hand-worked with MedMNIST's own getAUC/getACC (medmnist/evaluator.py): binary tasks use
    # the last score column and ACC at score > 0.5; multi-class takes the mean one-vs-rest AUC
    # and the accuracy of the arg-max.
    y = np.array([[0], [1], [1], [0]])
    s2 = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
    auc, acc = ev.medmnist_auc_acc(y, s2, "binary-class")
    # positives score 0.7 and 0.4, negatives 0.2 and 0.1: every pair ordered, AUC 1; only
    # 0.7 > 0.5 is called positive, so the positive at 0.4 is the one error in four
    assert auc == 1.0 and acc == 0.75
    assert ev.medmnist_auc_acc(y, s2[:, 1], "binary-class") == (auc, acc)

    yc = np.array([0, 1, 2, 2])
    sc = np.array([[0.5, 0.1, 0.4], [0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    auc, acc = ev.medmnist_auc_acc(yc, sc, "multi-class")
    # class 0: 0.5 beats 0.1, 0.2, 0.1 -> 1; class 1: 0.8 beats 0.1, 0.5, 0.1 -> 1;
    # class 2: positives 0.3 and 0.8 vs negatives 0.4 and 0.1 -> 3 of 4 pairs -> 0.75
    assert auc == pytest.approx((1 + 1 + 0.75) / 3)
    assert acc == 0.75  # the third film's arg-max is class 1, not 2

    yl = np.array([[1, 0], [0, 1], [1, 1]])
    sl = np.array([[0.9, 0.2], [0.1, 0.6], [0.4, 0.7]])
    auc, acc = ev.medmnist_auc_acc(yl, sl, "multi-label, binary-class")
    assert auc == pytest.approx(1.0) and acc == pytest.approx((2 / 3 + 1) / 2)
    with pytest.raises(ValueError, match="unknown MedMNIST task"):
        ev.medmnist_auc_acc(y, s2, "regression")


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), "high", None])
def test_a_threshold_that_is_not_a_finite_number_is_refused(threshold):
    with pytest.raises(ValueError, match="threshold"):
        ev.binary_metrics([0, 1, 1], [0.1, 0.6, 0.9], threshold)
    with pytest.raises(ValueError, match="threshold"):
        ev.clinical_report([0, 1, 1, 0], [0.1, 0.6, 0.9, 0.2], threshold, n_boot=5)


def test_bootstrap_refuses_nan_scores_instead_of_an_interval_around_nan():
    with pytest.raises(ValueError, match="y_score contains NaN"):
        ev.bootstrap_ci(roc_auc_score, [0, 1, 0, 1], [0.1, np.nan, 0.3, 0.9], n_boot=10)


@pytest.mark.parametrize("chooser", [ev.youden_threshold, ev.threshold_for_sensitivity])
def test_no_threshold_is_chosen_on_labels_of_one_class(chooser):
    with pytest.raises(ValueError, match="one class only"):
        chooser([1, 1, 1], [0.2, 0.5, 0.9])


def test_medmnist_refuses_labels_the_scores_cannot_describe():
    scores = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match="scores for 3 classes"):
        ev.medmnist_auc_acc([0, 1, 4, 2], scores, "multi-class")
    with pytest.raises(ValueError, match="NaN"):
        ev.medmnist_auc_acc([0, 1], [0.2, np.nan], "binary-class")
    with pytest.raises(ValueError, match="labels must be 0..1"):
        ev.medmnist_auc_acc([0, 1, 2], [0.2, 0.4, 0.9], "binary-class")


# --------------------------------------------------------------------------- comparisons
@pytest.mark.parametrize(
    ("k", "n", "method", "low", "high"),
    [  # reference values: Wilson (1927) and Clopper-Pearson (1934) closed forms
        (0, 10, "wilson", 0.0, 0.27753),
        (0, 10, "exact", 0.0, 0.30850),  # 1 - 0.025 ** (1 / 10)
        (31, 31, "exact", 0.025 ** (1 / 31), 1.0),
        (5, 10, "wilson", 0.23659, 0.76341),
    ],
)
def test_proportion_intervals_match_closed_forms(k, n, method, low, high):
    p, lo, hi = ev.proportion_ci(k, n, method=method)
    assert p == pytest.approx(k / n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize(("k", "n"), [(3, 2), (-1, 5), (1.5, 3), (0, 0)])
def test_proportion_interval_refuses_impossible_counts(k, n):
    with pytest.raises(ValueError, match="successes"):
        ev.proportion_ci(k, n)


def _delong_by_hand(y, a, b):
    """DeLong's variance from the O(m n) definition of the placement values."""

    def placements(s):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    (v10a, v01a), (v10b, v01b) = placements(a), placements(b)
    m, n = v10a.size, v01a.size
    var = (np.var(v10a - v10b, ddof=1) / m) + (np.var(v01a - v01b, ddof=1) / n)
    return v10a.mean() - v10b.mean(), np.sqrt(var)


def test_delong_matches_its_definition_and_the_paired_bootstrap():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 240)
    a = np.round(y + rng.normal(0, 1.0, 240), 1)  # rounded: ties are handled too
    b = np.round(y + rng.normal(0, 1.4, 240), 1)
    result = ev.delong_test(y, a, b)
    diff, se = _delong_by_hand(y, a, b)
    assert result["difference"] == pytest.approx(diff, abs=1e-12)
    assert result["se"] == pytest.approx(se, rel=1e-9)
    assert result["auc_a"] == pytest.approx(roc_auc_score(y, a))
    boot = ev.paired_bootstrap(roc_auc_score, y, a, b, n_boot=400, seed=0)
    assert boot[0] == pytest.approx(diff)
    assert boot[1] == pytest.approx(result["ci_low"], abs=0.03)
    assert boot[2] == pytest.approx(result["ci_high"], abs=0.03)


def test_pairing_finds_a_difference_that_overlapping_intervals_hide():
    # Model b is model a plus a small, consistent loss of signal on the same patients:
    # the separate intervals overlap, the paired comparison sees the difference.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    base = y + rng.normal(0, 1.2, 400)
    a, b = base, base + rng.normal(0, 0.5, 400)
    separate = [ev.bootstrap_ci(roc_auc_score, y, s, n_boot=300) for s in (a, b)]
    assert separate[0][1] < separate[1][2]  # the marginal intervals overlap
    result = ev.delong_test(y, a, b)
    assert result["ci_low"] > 0 and result["p"] < 0.05
    assert ev.paired_bootstrap(roc_auc_score, y, a, b, n_boot=300)[1] > 0


def test_identical_models_differ_by_exactly_nothing():
    y = np.array([0, 1, 0, 1, 1, 0])
    s = np.array([0.1, 0.8, 0.3, 0.7, 0.2, 0.4])
    result = ev.delong_test(y, s, s)
    assert result["difference"] == 0 and result["p"] == 1.0


def test_paired_comparisons_refuse_unpaired_inputs():
    with pytest.raises(ValueError, match="same cases"):
        ev.paired_bootstrap(roc_auc_score, [0, 1, 1], [0.1, 0.5, 0.9], [0.2, 0.3])
    with pytest.raises(ValueError, match="one class only"):
        ev.delong_test([1, 1, 1], [0.1, 0.5, 0.9], [0.2, 0.3, 0.4])


def test_accuracy_at_half_counts_the_default_rule():
    # scores 0.5 and above are called positive: 0.5 (y=1) right, 0.49 (y=1) wrong, 0.7 (y=0) wrong
    assert ev.accuracy_at_half([1, 1, 0, 0], [0.5, 0.49, 0.7, 0.1]) == 0.5
    with pytest.raises(ValueError, match="NaN"):
        ev.accuracy_at_half([1, 0], [np.nan, 0.2])
