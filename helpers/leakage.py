"""Leakage between data splits: near-duplicate images and a validation split that resists them.

A validation split cut at random from the same pool as the training split, image by image,
can hold copies of training images, or other films of the same patients, and then rewards a
model for recognising them. Chapter 04 measures this on PneumoniaMNIST, whose official
validation split was cut from the source training set (Kermany et al. 2018) while the test
split comes from other children:

- :func:`standardize_images` puts every image on the same footing (mean 0, sd 1 per image),
  as chapter 04's CNN does, so a brighter exposure of the same film still matches;
- :func:`nearest_neighbour_distances` finds, for each image of one set, its nearest image in
  another (root-mean-square difference of standardised pixels: 0 means identical, two
  unrelated 28 px chest films are about 0.3-0.6 apart);
- :func:`calibrated_threshold` reads the cut-off from a pair of sets that *cannot* share a
  patient (training vs test): a pair closer than almost every such pair is a likely copy;
- :func:`near_duplicate_pairs` and :func:`near_duplicate_groups` link every pair of images
  closer than the threshold and return the connected components (a copy of a copy is in
  the same group);
- :func:`grouped_validation_split` cuts a validation split in which no group is on both
  sides, stratified by class as far as the groups allow (scikit-learn's
  ``StratifiedGroupKFold``);
- :func:`pooled_pixels` and :func:`domain_auc` ask the other question, whether two splits
  come from different populations: a cross-validated logistic regression on down-sampled
  pixels that tries to tell one set from the other (AUC 0.5: it cannot).

Pixel similarity finds copies and near-copies only: two different films of the same child
taken on different days can be further apart than films of two children, so a grouped split
built this way removes the duplicates it finds, not every same-patient pair.
No TensorFlow here (NumPy, SciPy, scikit-learn only).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

#: The issue's first rule: standardised-pixel RMS distance below which two films are
#: pixel-level duplicates (the same film, possibly re-encoded or re-exposed).
DUPLICATE_DISTANCE = 0.05

#: Default quantile of the training-vs-test nearest distances used as the threshold.
DEFAULT_QUANTILE = 0.01


def _as_matrix(name: str, images: ArrayLike, min_rows: int = 1) -> np.ndarray:
    """``images`` ``(n, ...)`` as a float64 matrix ``(n, values per image)``, checked."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (n, ...) with one image per row, got {x.shape}")
    if len(x) < min_rows or int(np.prod(x.shape[1:])) == 0:
        raise ValueError(
            f"{name} must hold at least {min_rows} non-empty image(s), got shape {x.shape}"
        )
    x = x.reshape(len(x), -1)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def standardize_images(images: ArrayLike, eps: float = 1e-8) -> np.ndarray:
    """Images ``(n, ...)`` flattened and standardised per image, scaled for RMS distances.

    Each row is ``(x - mean(x)) / sd(x) / sqrt(d)`` with ``d`` values per image, so the
    Euclidean distance between two rows is the root-mean-square difference of their
    standardised pixels: 0 for identical images (also after a change of brightness or
    contrast), about ``sqrt(2)`` for unrelated ones with no correlation. A constant image
    (sd 0) becomes all zeros.
    """
    x = _as_matrix("images", images)
    centred = x - x.mean(axis=1, keepdims=True)
    sd = centred.std(axis=1, keepdims=True)
    return centred / np.maximum(sd, eps) / np.sqrt(x.shape[1])


def _check_pair(queries: ArrayLike, reference: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    q = standardize_images(_as_matrix("queries", queries))
    r = standardize_images(_as_matrix("reference", reference))
    if q.shape[1] != r.shape[1]:
        raise ValueError(
            f"queries and reference differ in size per image: {q.shape[1]} vs {r.shape[1]} values"
        )
    return q, r


def nearest_neighbour_distances(
    queries: ArrayLike, reference: ArrayLike, chunk_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the distance to its nearest reference image, and that image's index.

    Both sets are standardised per image (:func:`standardize_images`); the distance is the
    RMS difference of standardised pixels. Queries are processed ``chunk_size`` at a time,
    so memory stays at ``chunk_size x len(reference)`` distances (2 MB for 512 x 5,000). The
    winners are recomputed exactly, because the fast expansion
    ``|q|^2 + |r|^2 - 2 q.r`` loses precision near 0, where duplicates are.
    ``helpers.gan.nearest_neighbour_distances`` does the same on raw pixels but imports
    TensorFlow; this module stays light. Returns ``(distances, indices)``, each of length
    ``len(queries)``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    q, r = _check_pair(queries, reference)
    r_sq = np.sum(r**2, axis=1)
    distances, indices = np.empty(len(q)), np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), chunk_size):
        block = q[start : start + chunk_size]
        d2 = np.sum(block**2, axis=1)[:, None] + r_sq[None, :] - 2.0 * block @ r.T
        best = np.argmin(d2, axis=1)
        exact = np.sqrt(np.sum((block - r[best]) ** 2, axis=1))
        distances[start : start + len(block)] = exact
        indices[start : start + len(block)] = best
    return distances, indices


def calibrated_threshold(
    unrelated_distances: ArrayLike, quantile: float = DEFAULT_QUANTILE
) -> float:
    """The near-duplicate threshold: a low quantile of nearest distances between unrelated sets.

    The rule: pass the nearest-training-image distances of images that cannot share a
    patient with the training set (PneumoniaMNIST's test films). A pair of images closer
    than the ``quantile``-th quantile of those distances is closer than ``1 - quantile`` of
    the pairs known to be unrelated, so it is flagged as a likely duplicate or same-patient
    pair; about ``quantile`` of unrelated images are flagged by chance, and the expected
    number of false flags in a set of ``n`` is ``quantile * n`` (report it next to the
    count). ``quantile=0`` gives the smallest unrelated distance (no unrelated image of the
    calibration set is flagged; a noisier, stricter rule).
    """
    d = np.asarray(unrelated_distances, dtype=np.float64).reshape(-1)
    if d.size == 0:
        raise ValueError("unrelated_distances is empty: nothing to calibrate the threshold on")
    if not np.isfinite(d).all() or (d < 0).any():
        raise ValueError("unrelated_distances must be finite and non-negative")
    if not 0 <= quantile < 0.5:
        raise ValueError(f"quantile must be in [0, 0.5), not {quantile}")
    return float(np.quantile(d, quantile))


def near_duplicate_pairs(images: ArrayLike, threshold: float, chunk_size: int = 512) -> np.ndarray:
    """All pairs ``(i, j)``, ``i < j``, of ``images`` closer than ``threshold`` (``(k, 2)``).

    Distances as in :func:`nearest_neighbour_distances` (standardised pixels, RMS); the
    pairs are computed ``chunk_size`` rows at a time, and each candidate pair's distance is
    recomputed exactly before it is kept.
    """
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite distance >= 0, not {threshold}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    x = standardize_images(images)
    sq = np.sum(x**2, axis=1)
    found: list[np.ndarray] = []
    # a small slack on the fast expansion, so no true pair is lost to rounding
    slack = threshold**2 + 1e-9
    for start in range(0, len(x), chunk_size):
        block = x[start : start + chunk_size]
        d2 = sq[start : start + len(block), None] + sq[None, :] - 2.0 * block @ x.T
        i, j = np.nonzero(d2 < slack)
        i = i + start
        keep = i < j
        i, j = i[keep], j[keep]
        exact = np.sqrt(np.sum((x[i] - x[j]) ** 2, axis=1))
        close = exact < threshold
        found.append(np.stack([i[close], j[close]], axis=1))
    return np.concatenate(found).astype(np.int64) if found else np.empty((0, 2), np.int64)


def near_duplicate_groups(images: ArrayLike, threshold: float, chunk_size: int = 512) -> np.ndarray:
    """Group labels ``(n,)``: connected components of the near-duplicate graph of ``images``.

    Two images are linked when their distance is below ``threshold``
    (:func:`near_duplicate_pairs`); a group is every image reachable through such links, so
    a chain of near-copies stays together. Pass the *pooled* images that a new split will
    divide (e.g. official train + validation), so that no group can straddle the new cut.
    Labels are ``0 .. n_groups - 1``; an image with no near duplicate is a group of one.
    """
    pairs = near_duplicate_pairs(images, threshold, chunk_size)
    n = len(np.asarray(images))
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def grouped_validation_split(
    labels: ArrayLike, groups: ArrayLike, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices with no group on both sides, stratified by class.

    Uses scikit-learn's ``StratifiedGroupKFold`` with ``round(1 / val_fraction)`` folds
    (shuffled with ``seed``) and returns the first fold as validation: its size is about
    ``1 / round(1 / val_fraction)`` of the cases (0.1 gives a tenth, 0.3 a third; it can
    differ by a few cases because groups are not split) and
    its class balance is as close to the whole as the groups allow. ``labels`` are class
    indices ``(n,)`` or ``(n, 1)``; ``groups`` one label per case, e.g. from
    :func:`near_duplicate_groups`. Returns sorted ``(train_index, val_index)``.
    """
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty vector (n,) or (n, 1), got shape {y.shape}")
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != y.shape[0]:
        raise ValueError(
            f"groups must have one label per case ({y.shape[0]}), got shape {np.shape(groups)}"
        )
    if not 0 < val_fraction <= 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5], not {val_fraction}")
    n_splits = int(round(1 / val_fraction))
    n_groups = np.unique(g).size
    if n_groups < n_splits:
        raise ValueError(
            f"{n_groups} groups cannot make a validation fraction of {val_fraction} "
            f"(need at least {n_splits} groups)"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train_index, val_index = next(splitter.split(np.zeros(len(y)), y, g))
    return np.sort(train_index), np.sort(val_index)


def pooled_pixels(images: ArrayLike, side: int = 14) -> np.ndarray:
    """Images ``(n, H, W, 1)`` average-pooled to ``side x side`` pixels, one row per image.

    The pooling factor is ``H // side``; rows and columns beyond ``side * factor`` are
    dropped (none for 28 or 224 px and ``side=14``).
    """
    x = np.asarray(images)  # averaged in its own dtype (float32 films stay float32)
    if x.ndim != 4 or x.shape[-1] != 1 or min(x.shape[1:3]) < side or len(x) == 0:
        raise ValueError(
            f"images must be (n, H, W, 1) with H, W >= {side} and n >= 1, got shape {x.shape}"
        )
    factor = x.shape[1] // side
    n, edge = len(x), side * factor
    x = x[:, :edge, :edge, 0].reshape(n, side, factor, side, factor).mean(axis=(2, 4))
    return x.reshape(n, -1)


def domain_auc(
    features_a: ArrayLike,
    features_b: ArrayLike,
    *,
    c: float,
    folds: int,
    seed: int = 0,
    n_permutations: int = 0,
) -> dict[str, float]:
    """Cross-validated AUC of logistic regression telling set ``b`` from set ``a``.

    Features are standardised, then a logistic regression (``C=c``) is fitted in ``folds``
    stratified folds (shuffled with ``seed``); each case is scored by the model that did not
    see it. 0.5 means the sets look alike to a linear model; with ``n_permutations`` the same
    procedure on shuffled set labels gives the chance level (its mean and 95th percentile).
    """
    a, b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    x = np.concatenate([a, b])
    z = np.r_[np.zeros(len(a)), np.ones(len(b))]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)

    def auc(labels: np.ndarray) -> float:
        score = cross_val_predict(model, x, labels, cv=cv, method="predict_proba")[:, 1]
        return float(roc_auc_score(labels, score))

    result = {"auc": auc(z), "n_a": int(len(a)), "n_b": int(len(b))}
    if n_permutations:
        rng = np.random.default_rng(seed)
        null = [auc(rng.permutation(z)) for _ in range(n_permutations)]
        result["null_q95"] = float(np.quantile(null, 0.95))
        result["null_mean"] = float(np.mean(null))
    return result
