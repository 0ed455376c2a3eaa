"""helpers.leakage: near-duplicate distances, the calibrated threshold, groups and the grouped
validation split, on small synthetic image sets (fast; no TensorFlow, no data files)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import leakage


def _images(n: int, seed: int = 0, size: int = 8) -> np.ndarray:
    """``n`` unrelated random images ``(n, size, size, 1)`` in [0, 1]."""
    return np.random.default_rng(seed).random((n, size, size, 1))


# ------------------------------------------------------------------ distances
def test_standardised_distance_ignores_brightness_and_contrast():
    base = _images(3)
    brighter = 0.5 * base + 0.2  # same film, other exposure
    d, index = leakage.nearest_neighbour_distances(brighter, base)
    np.testing.assert_allclose(d, 0.0, atol=1e-7)
    np.testing.assert_array_equal(index, [0, 1, 2])


def test_exact_and_near_duplicates_are_found_and_unrelated_images_are_far():
    rng = np.random.default_rng(1)
    reference = _images(50, seed=2)
    queries = _images(20, seed=3)
    queries[4] = reference[17]  # an exact copy
    queries[9] = reference[30] + rng.normal(0, 0.005, reference[30].shape)  # a re-encoded copy
    d, index = leakage.nearest_neighbour_distances(queries, reference, chunk_size=7)
    assert index[4] == 17 and d[4] < 1e-7
    assert index[9] == 30 and 0 < d[9] < leakage.DUPLICATE_DISTANCE
    others = np.delete(d, [4, 9])
    assert others.min() > 0.8  # unrelated uniform-noise images: RMS distance near sqrt(2)


def test_chunking_does_not_change_the_answer():
    a, b = _images(23, seed=4), _images(31, seed=5)
    d1, i1 = leakage.nearest_neighbour_distances(a, b, chunk_size=1)
    d2, i2 = leakage.nearest_neighbour_distances(a, b, chunk_size=1000)
    np.testing.assert_allclose(d1, d2)
    np.testing.assert_array_equal(i1, i2)
    # and it matches a brute-force computation
    sa, sb = leakage.standardize_images(a), leakage.standardize_images(b)
    brute = np.sqrt(((sa[:, None, :] - sb[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(d1, brute.min(axis=1), atol=1e-12)


# ------------------------------------------------------------------ threshold rule
def test_threshold_is_the_stated_quantile_of_unrelated_distances():
    unrelated = np.linspace(0.30, 0.69, 40)
    assert leakage.calibrated_threshold(unrelated, quantile=0.0) == pytest.approx(0.30)
    assert leakage.calibrated_threshold(unrelated, quantile=0.25) == pytest.approx(
        np.quantile(unrelated, 0.25)
    )
    # the default flags about 1% of unrelated images, no more
    many = np.random.default_rng(0).uniform(0.3, 0.6, 10_000)
    threshold = leakage.calibrated_threshold(many)
    assert np.mean(many < threshold) == pytest.approx(leakage.DEFAULT_QUANTILE, abs=0.002)


@pytest.mark.parametrize(
    ("distances", "quantile", "message"),
    [
        ([], 0.01, "empty"),
        ([0.3, np.nan], 0.01, "finite"),
        ([0.3, -0.1], 0.01, "non-negative"),
        ([0.3, 0.4], 0.5, "quantile"),
        ([0.3, 0.4], -0.1, "quantile"),
    ],
)
def test_threshold_rejects_bad_input(distances, quantile, message):
    with pytest.raises(ValueError, match=message):
        leakage.calibrated_threshold(distances, quantile)


# ------------------------------------------------------------------ groups
def _pool_with_copies() -> tuple[np.ndarray, list[set[int]]]:
    """40 unrelated images plus copies: a chain 0 ~ 40 ~ 41 and a pair 5 ~ 42."""
    images = _images(40, seed=6)
    rng = np.random.default_rng(7)
    copy_a = images[0] + rng.normal(0, 0.004, images[0].shape)
    copy_b = copy_a + rng.normal(0, 0.004, images[0].shape)  # a copy of the copy
    copy_c = images[5].copy()
    pool = np.concatenate([images, copy_a[None], copy_b[None], copy_c[None]])
    return pool, [{0, 40, 41}, {5, 42}]


def test_near_duplicate_groups_are_connected_components():
    pool, expected = _pool_with_copies()
    groups = leakage.near_duplicate_groups(pool, leakage.DUPLICATE_DISTANCE, chunk_size=5)
    assert groups.shape == (len(pool),)
    for members in expected:
        assert len({groups[i] for i in members}) == 1
    sizes = np.bincount(groups)
    assert sorted(sizes[sizes > 1]) == [2, 3]
    assert np.unique(groups).size == len(pool) - 3
    pairs = leakage.near_duplicate_pairs(pool, leakage.DUPLICATE_DISTANCE)
    assert {tuple(p) for p in pairs} >= {(0, 40), (40, 41), (5, 42)}
    assert (pairs[:, 0] < pairs[:, 1]).all()


def test_threshold_zero_links_nothing_and_a_huge_one_links_everything():
    pool, _ = _pool_with_copies()
    assert np.unique(leakage.near_duplicate_groups(pool, 0.0)).size == len(pool)
    assert np.unique(leakage.near_duplicate_groups(pool, 10.0)).size == 1


# ------------------------------------------------------------------ grouped split
def test_grouped_split_never_puts_a_group_on_both_sides_and_keeps_class_balance():
    rng = np.random.default_rng(8)
    n = 600
    labels = (rng.random(n) < 0.74).astype(int)
    groups = np.arange(n)
    groups[rng.choice(n, 120, replace=False)] = rng.integers(0, 30, 120)  # clusters of ~4
    for seed in range(3):
        train, val = leakage.grouped_validation_split(labels, groups, val_fraction=0.1, seed=seed)
        assert set(groups[train]).isdisjoint(groups[val])
        assert len(train) + len(val) == n and np.intersect1d(train, val).size == 0
        assert abs(len(val) - 60) <= 8
        assert abs(labels[val].mean() - labels.mean()) < 0.05
    # the seed matters (a different validation set) and the same seed repeats the split
    first = leakage.grouped_validation_split(labels, groups, 0.1, seed=0)[1]
    assert not np.array_equal(first, val)
    np.testing.assert_array_equal(
        first, leakage.grouped_validation_split(labels, groups, 0.1, 0)[1]
    )


def test_grouped_split_keeps_duplicates_together_on_real_shaped_input():
    pool, expected = _pool_with_copies()
    labels = np.arange(len(pool)) % 2
    groups = leakage.near_duplicate_groups(pool, leakage.DUPLICATE_DISTANCE)
    for seed in range(5):
        train, val = leakage.grouped_validation_split(labels[:, None], groups, 0.25, seed)
        for members in expected:
            inside = [i in set(val) for i in members]
            assert all(inside) or not any(inside)


@pytest.mark.parametrize(
    ("labels", "groups", "fraction", "message"),
    [
        (np.array([]), np.array([]), 0.1, "non-empty"),
        (np.zeros((4, 2)), np.arange(4), 0.25, "labels"),
        (np.zeros(4), np.arange(3), 0.25, "one label per case"),
        (np.zeros(10), np.arange(10), 0.0, "val_fraction"),
        (np.zeros(10), np.arange(10), 0.9, "val_fraction"),
        (np.zeros(10), np.zeros(10), 0.25, "groups cannot"),
    ],
)
def test_grouped_split_rejects_bad_input(labels, groups, fraction, message):
    with pytest.raises(ValueError, match=message):
        leakage.grouped_validation_split(labels, groups, fraction)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: leakage.nearest_neighbour_distances(np.zeros((0, 4, 4)), _images(3)), "at least"),
        (lambda: leakage.nearest_neighbour_distances(np.zeros(5), _images(3)), "shape"),
        (
            lambda: leakage.nearest_neighbour_distances(_images(2, size=4), _images(3)),
            "differ in size per image",
        ),
        (
            lambda: leakage.nearest_neighbour_distances(np.full((2, 8, 8, 1), np.nan), _images(3)),
            "NaN",
        ),
        (
            lambda: leakage.nearest_neighbour_distances(_images(2), _images(3), chunk_size=0),
            "chunk_size",
        ),
        (lambda: leakage.near_duplicate_groups(_images(3), -1.0), "threshold"),
        (lambda: leakage.near_duplicate_groups(_images(3), np.inf), "threshold"),
    ],
)
def test_distance_functions_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_module_does_not_import_tensorflow():
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, helpers.leakage; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------- domain classifier
def test_pooled_pixels_averages_blocks():
    images = np.arange(2 * 28 * 28, dtype=np.float64).reshape(2, 28, 28, 1)
    pooled = leakage.pooled_pixels(images, side=14)
    assert pooled.shape == (2, 196)
    block = images[0, :2, :2, 0]
    assert pooled[0, 0] == block.mean()
    assert leakage.pooled_pixels(np.zeros((1, 224, 224, 1)), side=14).shape == (1, 196)
    with pytest.raises(ValueError, match=r"\(n, H, W, 1\)"):
        leakage.pooled_pixels(np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="H, W >= 14"):
        leakage.pooled_pixels(np.zeros((2, 8, 8, 1)))


def test_domain_auc_tells_different_sets_apart_and_not_alike_ones():
    rng = np.random.default_rng(0)
    same_a, same_b = rng.normal(size=(60, 5)), rng.normal(size=(60, 5))
    shifted = rng.normal(size=(60, 5)) + 2.0
    alike = leakage.domain_auc(same_a, same_b, c=1.0, folds=5, n_permutations=5)
    apart = leakage.domain_auc(same_a, shifted, c=1.0, folds=5)
    assert apart["auc"] > 0.95
    assert abs(alike["auc"] - 0.5) < 0.2
    assert alike["n_a"] == alike["n_b"] == 60
    assert 0.0 <= alike["null_mean"] <= alike["null_q95"] <= 1.0
