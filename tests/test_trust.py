"""Unit tests of helpers.trust: corruptions, selective prediction, subgroup metrics, PEHE,
Dirichlet partitions and federated averaging (tiny synthetic arrays only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import trust


def _images(n: int = 6, size: int = 28, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.8, size=(n, size, size, 1)).astype(np.float32)


# ---------------------------------------------------------------- corrupt
@pytest.mark.parametrize("kind", list(trust.CORRUPTIONS))
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_corrupt_keeps_shape_dtype_and_range(kind, severity):
    x = _images()
    out = trust.corrupt(x, kind, severity, seed=1)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out, x)  # every kind changes the images at every severity


@pytest.mark.parametrize("kind", list(trust.CORRUPTIONS))
def test_corrupt_severity_zero_is_an_unchanged_copy(kind):
    x = _images()
    out = trust.corrupt(x, kind, 0)
    np.testing.assert_array_equal(out, x)
    assert out is not x


@pytest.mark.parametrize("kind", list(trust.CORRUPTIONS))
def test_corrupt_gets_worse_with_severity(kind):
    x = _images(n=4)
    errors = [np.mean((trust.corrupt(x, kind, s, seed=0) - x) ** 2) for s in range(6)]
    assert errors[0] == 0.0
    assert all(b > a for a, b in zip(errors, errors[1:], strict=False)), errors


def test_corrupt_contrast_keeps_each_image_mean_and_shrinks_its_spread():
    x = _images(n=3)
    out = trust.corrupt(x, "contrast", 2)  # factor 0.5
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 0.5 * x.std(axis=(1, 2, 3)), rtol=1e-5)


def test_corrupt_noise_is_reproducible_and_has_the_listed_strength():
    x = np.full((50, 28, 28), 0.5, dtype=np.float64)  # far from the clip limits
    a = trust.corrupt(x, "gaussian_noise", 3, seed=7)
    b = trust.corrupt(x, "gaussian_noise", 3, seed=7)
    c = trust.corrupt(x, "gaussian_noise", 3, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == x.shape and a.dtype == np.float64
    assert np.std(a - x) == pytest.approx(trust.CORRUPTIONS["gaussian_noise"][2], rel=0.02)


def test_corrupt_resolution_loss_removes_fine_detail_but_keeps_flat_images():
    flat = np.full((2, 28, 28, 1), 0.3, dtype=np.float32)
    np.testing.assert_allclose(trust.corrupt(flat, "resolution", 5), flat, atol=1e-6)
    checker = (np.indices((28, 28)).sum(axis=0) % 2).astype(np.float32)[None, ..., None]
    blurred = trust.corrupt(checker, "resolution", 2)  # 14 px: each block averages to 0.5
    np.testing.assert_allclose(blurred, 0.5, atol=1e-6)


def test_corrupt_accepts_uint8_and_returns_uint8():
    x = (np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256).astype(np.uint8)
    out = trust.corrupt(x, "gaussian_blur", 2)
    assert out.dtype == np.uint8 and out.shape == x.shape
    np.testing.assert_array_equal(trust.corrupt(x, "gaussian_blur", 0), x)


@pytest.mark.parametrize(
    ("kind", "severity", "match"),
    [
        ("snow", 1, "unknown corruption 'snow'"),
        ("contrast", 6, "severity must be an integer from 0"),
        ("contrast", -1, "severity must be an integer from 0"),
        ("contrast", 1.5, "severity must be an integer from 0"),
    ],
)
def test_corrupt_rejects_bad_kind_and_severity(kind, severity, match):
    with pytest.raises(ValueError, match=match):
        trust.corrupt(_images(), kind, severity)


def test_corrupt_rejects_out_of_range_and_badly_shaped_images():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        trust.corrupt(_images() * 255.0, "contrast", 1)
    with pytest.raises(ValueError, match="expected images"):
        trust.corrupt(np.zeros((28, 28)), "contrast", 1)
    with pytest.raises(ValueError, match="uint8 or float"):
        trust.corrupt(np.zeros((2, 8, 8), dtype=np.int32), "contrast", 1)


# ---------------------------------------------------------------- selective prediction
def test_selective_prediction_keeps_the_most_certain_cases():
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.1, 0.2, 0.8, 0.7, 0.3])  # cases 2 and 3 are wrong at 0.5
    u = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.4])  # ... and the least certain
    table = trust.selective_prediction(y, p, u, [1.0, 2 / 3, 0.5])
    assert list(table.columns) == [
        "coverage",
        "referred",
        "n_kept",
        "accuracy",
        "sensitivity",
        "specificity",
        "auc",
    ]
    assert table["n_kept"].tolist() == [6, 4, 3]
    np.testing.assert_allclose(table["accuracy"], [4 / 6, 1.0, 1.0])
    np.testing.assert_allclose(table["referred"], [0.0, 1 / 3, 0.5])
    assert table.loc[0, "sensitivity"] == pytest.approx(2 / 3)
    assert table.loc[1, "auc"] == pytest.approx(1.0)


def test_selective_prediction_gives_nan_auc_when_one_class_is_kept():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.4, 0.3])
    table = trust.selective_prediction(y, p, [0, 1, 2, 3], [0.5], threshold=0.5)
    assert table.loc[0, "n_kept"] == 2 and np.isnan(table.loc[0, "auc"])
    assert np.isnan(table.loc[0, "specificity"]) and table.loc[0, "accuracy"] == 1.0


def test_selective_prediction_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        trust.selective_prediction([0, 1], [0.2, 0.8], [0.1], [1.0])
    with pytest.raises(ValueError, match=r"coverages must lie in \(0, 1\]"):
        trust.selective_prediction([0, 1], [0.2, 0.8], [0.1, 0.2], [0.0, 1.0])
    with pytest.raises(ValueError, match="uncertainty contains NaN"):
        trust.selective_prediction([0, 1], [0.2, 0.8], [np.nan, 0.2], [1.0])


# ---------------------------------------------------------------- subgroup report
def test_subgroup_report_scores_each_group_separately():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.9, 0.1, 0.3, 0.6])
    g = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    table = trust.subgroup_report(y, p, g, threshold=0.5, n_boot=50, seed=0)
    assert set(table.columns) == {"group", "n", "positives", "metric", "value", "ci_low", "ci_high"}
    assert len(table) == 6
    value = table.set_index(["group", "metric"])["value"]
    assert value[("a", "auc")] == 1.0 and value[("a", "sensitivity")] == 1.0
    assert value[("b", "auc")] == pytest.approx(0.25)  # of 4 pairs only 0.6 > 0.3 is ranked right
    assert value[("b", "sensitivity")] == 0.5 and value[("b", "specificity")] == 0.5
    assert (table["n"] == 4).all() and (table["positives"] == 2).all()
    assert (table["ci_low"] <= table["value"] + 1e-12).all()


def test_subgroup_report_auc_is_nan_in_a_group_with_one_class():
    y = np.array([0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.4])
    g = np.array(["a", "a", "a", "a", "b", "b"])
    value = trust.subgroup_report(y, p, g, threshold=0.5, n_boot=20, seed=0).set_index(
        ["group", "metric"]
    )
    assert np.isnan(value.loc[("b", "auc"), "value"]) and np.isnan(
        value.loc[("b", "auc"), "ci_low"]
    )
    assert np.isnan(value.loc[("b", "specificity"), "value"])
    assert value.loc[("b", "sensitivity"), "value"] == 0.5


def test_subgroup_report_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        trust.subgroup_report([0, 1], [0.1, 0.9], ["a"], threshold=0.5)
    with pytest.raises(ValueError, match="no patients"):
        trust.subgroup_report([], [], [], threshold=0.5)


# ---------------------------------------------------------------- PEHE
def test_pehe_is_the_root_mean_squared_effect_error():
    assert trust.pehe([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.0
    assert trust.pehe([0.0, 0.0], [3.0, -4.0]) == pytest.approx(np.sqrt(12.5))
    # a constant estimate equal to the mean effect leaves the spread of the true effects
    tau = np.array([-2.0, 0.0, 2.0])
    assert trust.pehe(tau, np.zeros(3)) == pytest.approx(np.std(tau))


def test_pehe_rejects_bad_input():
    with pytest.raises(ValueError, match="tau_true has 2 values but tau_hat has 3"):
        trust.pehe([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        trust.pehe([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match="no effects"):
        trust.pehe([], [])


# ---------------------------------------------------------------- Dirichlet partition
def test_dirichlet_partition_covers_every_case_once_and_respects_min_size():
    labels = np.repeat([0, 1], [300, 700])
    parts = trust.dirichlet_partition(labels, n_clients=4, alpha=0.5, seed=3, min_size=50)
    assert len(parts) == 4
    together = np.concatenate(parts)
    assert np.array_equal(np.sort(together), np.arange(1000))
    assert min(len(p) for p in parts) >= 50
    again = trust.dirichlet_partition(labels, n_clients=4, alpha=0.5, seed=3, min_size=50)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_dirichlet_partition_alpha_controls_label_skew():
    labels = np.repeat([0, 1], [2000, 2000])

    def spread(alpha):
        parts = trust.dirichlet_partition(labels, 5, alpha, seed=0, min_size=10)
        return np.std([labels[p].mean() for p in parts])

    assert spread(0.3) > 0.15  # very different class mixes
    assert spread(1000.0) < 0.02  # nearly identical (IID-like) mixes


def test_dirichlet_partition_rejects_bad_arguments():
    labels = np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match="n_clients must be an integer >= 2"):
        trust.dirichlet_partition(labels, 1, 0.5)
    with pytest.raises(ValueError, match="alpha must be positive"):
        trust.dirichlet_partition(labels, 2, 0.0)
    with pytest.raises(ValueError, match="cannot give 3 clients at least 10 cases"):
        trust.dirichlet_partition(labels, 3, 0.5, min_size=10)
    with pytest.raises(ValueError, match="no partition with >= 9 cases"):
        trust.dirichlet_partition(labels, 2, 0.01, seed=0, min_size=9, max_tries=3)


# ---------------------------------------------------------------- federated averaging
def test_federated_average_weights_clients_by_size():
    a = [np.array([[0.0, 2.0]]), np.array([1.0])]
    b = [np.array([[4.0, 6.0]]), np.array([5.0])]
    avg = trust.federated_average([a, b], sizes=[300, 100])
    np.testing.assert_allclose(avg[0], [[1.0, 3.0]])
    np.testing.assert_allclose(avg[1], [2.0])
    same = trust.federated_average([a, a, a], sizes=[1, 5, 9])
    np.testing.assert_allclose(same[0], a[0])


def test_federated_average_keeps_dtypes():
    a = [np.ones(3, dtype=np.float32), np.array([4], dtype=np.int64)]
    b = [np.zeros(3, dtype=np.float32), np.array([2], dtype=np.int64)]
    avg = trust.federated_average([a, b], [1, 1])
    assert avg[0].dtype == np.float32 and avg[1].dtype == np.int64
    assert avg[1][0] == 3


def test_federated_average_rejects_bad_input():
    a = [np.zeros((2, 2)), np.zeros(2)]
    with pytest.raises(ValueError, match="no client weights"):
        trust.federated_average([], [])
    with pytest.raises(ValueError, match="2 weight lists but 1 sizes"):
        trust.federated_average([a, a], [1])
    with pytest.raises(ValueError, match="client 1 has weights of a different structure"):
        trust.federated_average([a, [np.zeros((2, 3)), np.zeros(2)]], [1, 1])
    with pytest.raises(ValueError, match="sizes must be non-negative"):
        trust.federated_average([a, a], [0, 0])


def test_selective_prediction_keeps_the_most_certain_cases_hand_counted():
    # uncertainty order: cases 2, 0, 3, 1; at coverage 0.5 the two most certain (2 and 0)
    # are kept: case 2 (y=1, 0.9) right, case 0 (y=0, 0.7) wrong -> accuracy 0.5
    y, score, unc = [0, 1, 1, 0], [0.7, 0.2, 0.9, 0.1], [0.2, 0.9, 0.1, 0.3]
    table = trust.selective_prediction(y, score, unc, [0.5, 1.0])
    assert isinstance(table, pd.DataFrame)
    assert table["n_kept"].tolist() == [2, 4] and table["referred"].tolist() == [0.5, 0.0]
    assert table["accuracy"].tolist() == [0.5, 0.5]  # all four: cases 3 right, 1 wrong
    assert table["sensitivity"].tolist() == [1.0, 0.5] and table["specificity"].tolist() == [
        0.0,
        0.5,
    ]


# ---------------------------------------------------------------- subgroup gap
def _two_groups(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    groups = np.where(np.arange(n) < n // 2, "a", "b")
    noise = np.where(groups == "a", 0.2, 3.0)  # group a is ranked well, group b poorly
    return y, y + rng.normal(0, noise), groups


def test_subgroup_gap_matches_the_group_aucs_and_finds_a_real_gap():
    from sklearn.metrics import roc_auc_score

    y, s, g = _two_groups()
    gap = trust.subgroup_gap(y, s, g, "a", "b", n_boot=300, seed=1)
    a, b = g == "a", g == "b"
    assert gap["auc_a"] == pytest.approx(roc_auc_score(y[a], s[a]))
    assert gap["auc_b"] == pytest.approx(roc_auc_score(y[b], s[b]))
    assert gap["difference"] == pytest.approx(gap["auc_a"] - gap["auc_b"])
    assert gap["n_a"] == gap["n_b"] == 100 and gap["draws"].size == 300
    assert 0 < gap["ci_low"] <= gap["difference"] <= gap["ci_high"]
    # swapping the groups flips the sign of the gap and of its interval
    swapped = trust.subgroup_gap(y, s, g, "b", "a", n_boot=300, seed=1)
    assert swapped["difference"] == pytest.approx(-gap["difference"])
    assert swapped["ci_high"] < 0


def test_subgroup_gap_interval_contains_zero_for_exchangeable_groups():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = y + rng.normal(0, 1.0, 300)
    g = rng.choice(["x", "y"], 300)
    gap = trust.subgroup_gap(y, s, g, "x", "y", n_boot=300, seed=0)
    assert gap["ci_low"] < 0 < gap["ci_high"]
    narrow = trust.subgroup_gap(y, s, g, "x", "y", n_boot=300, alpha=0.5, seed=0)
    assert narrow["ci_high"] - narrow["ci_low"] < gap["ci_high"] - gap["ci_low"]


def test_subgroup_gap_ignores_other_groups_and_rejects_bad_input():
    y, s, g = _two_groups(n=120)
    g = g.astype(object)
    g[:10] = "c"  # a third group is left out of the comparison
    gap = trust.subgroup_gap(y, s, g, "a", "b", n_boot=20)
    assert gap["n_a"] == 50 and gap["n_b"] == 60
    with pytest.raises(ValueError, match="no patient belongs to group 'z'"):
        trust.subgroup_gap(y, s, g, "a", "z")
    with pytest.raises(ValueError, match="one class only"):
        trust.subgroup_gap(np.r_[y[:60], np.ones(60, int)], s, np.repeat(["a", "b"], 60), "a", "b")
    with pytest.raises(ValueError, match="same length"):
        trust.subgroup_gap(y[:5], s, g, "a", "b")


# ---------------------------------------------------------------- occlusion map
def _bright_corner_score(images: np.ndarray) -> np.ndarray:
    """A toy 'model': the mean intensity of the top-left 8x8 corner."""
    return images[:, :8, :8, 0].mean(axis=(1, 2))


def test_occlusion_map_finds_the_region_the_score_reads():
    x = np.full((2, 20, 20, 1), 0.2, dtype=np.float32)
    x[:, :8, :8] = 0.9  # bright where the toy model looks
    maps = trust.occlusion_map(_bright_corner_score, x, patch=4, stride=2)
    assert maps.shape == (2, 20, 20)
    assert maps[:, :8, :8].mean() > 0.05  # hiding the corner lowers the score
    np.testing.assert_allclose(maps[:, 12:, 12:], 0.0, atol=1e-9)  # elsewhere nothing changes


def test_occlusion_map_rejects_bad_input():
    x = np.zeros((1, 10, 10, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="expected images"):
        trust.occlusion_map(_bright_corner_score, x[..., 0])
    with pytest.raises(ValueError, match="patch"):
        trust.occlusion_map(_bright_corner_score, x, patch=11)
    with pytest.raises(ValueError, match="scores for 1 images"):
        trust.occlusion_map(lambda imgs: np.zeros(3), x, patch=4)


def test_occlusion_map_does_not_depend_on_the_batch_size():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3, 12, 12, 1)).astype(np.float32)
    calls = []

    def score(images):
        calls.append(len(images))
        return images[:, 2:7, 3:9, 0].mean(axis=(1, 2)) - images[:, 8:, 8:, 0].mean(axis=(1, 2))

    small = trust.occlusion_map(score, x, patch=4, stride=3, max_batch=5)
    n_small = len(calls)
    calls.clear()
    large = trust.occlusion_map(score, x, patch=4, stride=3)
    np.testing.assert_allclose(small, large, atol=1e-12)
    assert n_small > len(calls) == 2  # base scores, then all occluded films at once
