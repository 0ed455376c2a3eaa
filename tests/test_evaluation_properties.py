"""Property-based checks of helpers.evaluation: any input gives a named error or a right answer.

Hypothesis generates label and score arrays, including NaN, infinities, one-class labels,
labels outside {0, 1} and mismatched lengths. Every function must either refuse the input
with a ``ValueError`` that names the problem, or return numbers that are correct: never a
silent wrong result (a finite interval around NaN, a threshold from one class).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from helpers import evaluation as ev

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
any_labels = st.sampled_from([0, 1, 2, -1])


@st.composite
def labelled_scores(draw, score_values=floats, labels=any_labels):
    n = draw(st.integers(1, 30))
    y = draw(st.lists(labels, min_size=n, max_size=n))
    extra = draw(st.sampled_from([0, 0, 0, 1]))  # sometimes one score too many
    s = draw(st.lists(score_values, min_size=n + extra, max_size=n + extra))
    return np.array(y), np.array(s, dtype=np.float64)


def _valid(y: np.ndarray, s: np.ndarray) -> bool:
    return len(y) == len(s) and np.isin(y, (0, 1)).all() and np.isfinite(s).all()


@SETTINGS
@given(labelled_scores(), st.one_of(finite, st.just(float("nan"))))
def test_binary_metrics_is_right_or_refuses(data, threshold):
    y, s = data
    if not _valid(y, s) or not np.isfinite(threshold):
        with pytest.raises(ValueError):
            ev.binary_metrics(y, s, threshold)
        return
    m = ev.binary_metrics(y, s, threshold)
    called = s >= threshold
    assert m["tp"] == int(np.sum(called & (y == 1))) and m["tn"] == int(np.sum(~called & (y == 0)))
    assert m["tp"] + m["fp"] + m["tn"] + m["fn"] == len(y)
    for key in ("sensitivity", "specificity", "ppv", "npv", "accuracy"):
        assert np.isnan(m[key]) or 0 <= m[key] <= 1


@SETTINGS
@given(labelled_scores())
def test_threshold_choice_needs_two_classes_and_finite_scores(data):
    y, s = data
    two_classes = _valid(y, s) and np.unique(y).size == 2
    for chooser in (ev.youden_threshold, ev.threshold_for_sensitivity):
        if not two_classes:
            with pytest.raises(ValueError):
                chooser(y, s)
        else:
            assert np.isfinite(chooser(y, s))
    if two_classes:  # the sensitivity rule reaches its target on these data
        threshold = ev.threshold_for_sensitivity(y, s, target=0.8)
        assert ev.binary_metrics(y, s, threshold)["sensitivity"] >= 0.8


@SETTINGS
@given(labelled_scores())
def test_bootstrap_never_gives_an_interval_around_an_undefined_estimate(data):
    y, s = data
    if len(y) != len(s) or not np.isfinite(s).all():
        with pytest.raises(ValueError):
            ev.bootstrap_ci(roc_auc_score, y, s, n_boot=20)
        return
    if not np.isin(y, (0, 1)).all():
        return  # roc_auc_score's own business: multi-class labels are out of scope here
    value, low, high = ev.bootstrap_ci(roc_auc_score, y, s, n_boot=20)
    if np.unique(y).size < 2:
        assert np.isnan(value)
    else:
        assert value == pytest.approx(roc_auc_score(y, s))
        assert (np.isnan(low) and np.isnan(high)) or low <= high


@SETTINGS
@given(labelled_scores(score_values=finite, labels=st.sampled_from([0, 1])), st.data())
def test_delong_is_antisymmetric_and_refuses_one_class(data, more):
    y, a = data
    if len(y) != len(a):
        with pytest.raises(ValueError):
            ev.delong_test(y, a, a)
        return
    b = np.array(more.draw(st.lists(finite, min_size=len(y), max_size=len(y))))
    if np.unique(y).size < 2:
        with pytest.raises(ValueError, match="one class only"):
            ev.delong_test(y, a, b)
        return
    ab, ba = ev.delong_test(y, a, b), ev.delong_test(y, b, a)
    assert ab["difference"] == pytest.approx(-ba["difference"], abs=1e-12)
    assert ab["se"] == pytest.approx(ba["se"], abs=1e-12) and 0 <= ab["p"] <= 1
    assert ab["auc_a"] == pytest.approx(roc_auc_score(y, a))


@SETTINGS
@given(st.integers(-3, 40), st.integers(-3, 40), st.sampled_from(["wilson", "exact"]))
def test_proportion_interval_contains_the_estimate_or_refuses(k, n, method):
    if n < 1 or not 0 <= k <= n:
        with pytest.raises(ValueError):
            ev.proportion_ci(k, n, method=method)
        return
    p, low, high = ev.proportion_ci(k, n, method=method)
    assert 0 <= low <= p <= high <= 1


@SETTINGS
@given(st.integers(2, 5), st.integers(2, 5), st.integers(4, 20), st.data())
def test_medmnist_multiclass_refuses_labels_without_a_score_column_or_an_absent_class(
    n_classes, n_labels, n, more
):
    labels = np.array(more.draw(st.lists(st.integers(0, n_labels - 1), min_size=n, max_size=n)))
    scores = np.full((n, n_classes), 1 / n_classes)
    if labels.max() >= n_classes or np.unique(labels).size < n_classes:
        with pytest.raises(ValueError):
            ev.medmnist_auc_acc(labels, scores, "multi-class")
    else:  # constant scores: every one-vs-rest AUC is 0.5, ACC the share of class 0
        auc, acc = ev.medmnist_auc_acc(labels, scores, "multi-class")
        assert auc == pytest.approx(0.5) and acc == pytest.approx(np.mean(labels == 0))
