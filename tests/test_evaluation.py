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
    [([0, 1], [0.1], "y_true has 2 values but y_score has 1"),
     ([0, 2], [0.1, 0.2], "0/1 labels"),
     ([0, 1], [0.1, np.nan], "NaN"),
     ([], [], "no samples")],
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
    assert ev.bootstrap_ci(roc_auc_score, y, s, n_boot=50, seed=3) == \
        ev.bootstrap_ci(roc_auc_score, y, s, n_boot=50, seed=3)


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
    assert list(report.index) == ["roc_auc", "pr_auc", "sensitivity", "specificity", "ppv", "npv",
                                  "accuracy"]
    assert list(report.columns) == ["value", "ci_low", "ci_high"]
    assert report.loc["roc_auc", "value"] == pytest.approx(roc_auc_score(y, s))
    assert (report["ci_low"] <= report["value"]).all() and (report["value"] <= report["ci_high"]).all()


def test_clinical_report_subset_of_metrics_matches_the_full_report():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = np.clip(y * 0.4 + rng.uniform(0, 0.6, 300), 0, 1)
    full = ev.clinical_report(y, s, threshold=0.5, n_boot=100, seed=0)
    subset = ev.clinical_report(y, s, threshold=0.5, n_boot=100, seed=0, metrics=("specificity", "roc_auc"))
    assert list(subset.index) == ["specificity", "roc_auc"]
    pd.testing.assert_frame_equal(subset, full.loc[["specificity", "roc_auc"]])
    with pytest.raises(ValueError, match=r"unknown or no metrics \['f2'\]; choose from roc_auc"):
        ev.clinical_report(y, s, threshold=0.5, metrics=("f2",))
    with pytest.raises(ValueError, match="unknown or no metrics"):
        ev.clinical_report(y, s, threshold=0.5, metrics=())


def test_bootstrap_ci_of_a_metric_undefined_on_the_data_is_nan():
    value, low, high = ev.bootstrap_ci(roc_auc_score, np.ones(10, dtype=int), np.linspace(0, 1, 10), n_boot=20)
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
    y = np.array([[0], [1], [1], [0]])
    s2 = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
    auc, acc = ev.medmnist_auc_acc(y, s2, "binary-class")
    assert auc == pytest.approx(roc_auc_score(y[:, 0], s2[:, 1])) and acc == pytest.approx(0.75)
    assert ev.medmnist_auc_acc(y, s2[:, 1], "binary-class") == (auc, acc)

    yc = np.array([0, 1, 2, 2])
    sc = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    auc, acc = ev.medmnist_auc_acc(yc, sc, "multi-class")
    expected = np.mean([roc_auc_score(yc == k, sc[:, k]) for k in range(3)])
    assert auc == pytest.approx(expected) and acc == pytest.approx(0.75)

    yl = np.array([[1, 0], [0, 1], [1, 1]])
    sl = np.array([[0.9, 0.2], [0.1, 0.6], [0.4, 0.7]])
    auc, acc = ev.medmnist_auc_acc(yl, sl, "multi-label, binary-class")
    assert auc == pytest.approx(1.0) and acc == pytest.approx((2 / 3 + 1) / 2)
    with pytest.raises(ValueError, match="unknown MedMNIST task"):
        ev.medmnist_auc_acc(y, s2, "regression")
