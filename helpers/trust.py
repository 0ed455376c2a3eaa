"""Checks of trustworthiness: corruptions, selective prediction, subgroup metrics and gaps,
occlusion maps, treatment-effect error and federated averaging.

Chapter 09 uses these to measure what the syllabus only claims: how a model behaves when the
images change (:func:`corrupt`), how accuracy rises when the least certain cases are referred
to a clinician (:func:`selective_prediction`), whether patient groups are served equally
(:func:`subgroup_report`, :func:`subgroup_gap`), what a prediction rests on
(:func:`occlusion_map`), how well individual treatment effects are recovered (:func:`pehe`),
and how hospitals can train one model without pooling their data
(:func:`dirichlet_partition`, :func:`federated_average`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import roc_auc_score

from .evaluation import binary_metrics, clinical_report

#: Corruption kinds known to :func:`corrupt`, with the parameter used at severities 1-5:
#: noise standard deviation (fraction of the intensity range), blur sigma (pixels at 28 px,
#: scaled with the image size), contrast factor (1 = unchanged), and the fraction of the
#: side length kept before up-sampling back.
CORRUPTIONS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.08, 0.12, 0.18, 0.26),
    "gaussian_blur": (0.5, 0.75, 1.0, 1.5, 2.0),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.2),
    "resolution": (0.75, 0.5, 0.4, 0.3, 0.2),
}


def corrupt(images: np.ndarray, kind: str, severity: int, seed: int = 0) -> np.ndarray:
    """A corrupted copy of ``images`` (noise, blur, contrast loss or resolution loss).

    ``images`` are ``(n, h, w)`` or ``(n, h, w, c)``, either ``uint8`` or floats in [0, 1];
    the result has the same shape and dtype and stays in that range (values are clipped).
    ``kind`` is one of :data:`CORRUPTIONS`; ``severity`` is an integer 0-5, where 0 returns
    an unchanged copy and 1-5 use the parameters listed there, in the spirit of the
    ImageNet-C benchmark (Hendrycks & Dietterich, 2019). Noise is drawn with ``seed``.
    Unknown kinds, severities outside 0-5 and float images outside [0, 1] raise
    ``ValueError``.
    """
    import cv2
    from scipy.ndimage import gaussian_filter

    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or int(severity) != severity or not 0 <= severity <= 5:
        raise ValueError(f"severity must be an integer from 0 (clean) to 5, not {severity!r}")
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"expected images (n, h, w) or (n, h, w, c), got shape {images.shape}")
    dtype = images.dtype
    if dtype == np.uint8:
        x = images.astype(np.float64) / 255.0
    elif np.issubdtype(dtype, np.floating):
        if images.size and (np.nanmin(images) < 0 or np.nanmax(images) > 1):
            raise ValueError("float images must lie in [0, 1] (use data.as_float_images)")
        x = images.astype(np.float64)
    else:
        raise ValueError(f"images must be uint8 or float in [0, 1], not {dtype}")
    if severity == 0:
        return images.copy()
    x = x if images.ndim == 4 else x[..., np.newaxis]
    height, width = x.shape[1:3]
    level = CORRUPTIONS[kind][int(severity) - 1]
    if kind == "gaussian_noise":
        x = x + np.random.default_rng(seed).normal(0.0, level, size=x.shape)
    elif kind == "gaussian_blur":
        sigma = level * min(height, width) / 28.0
        x = gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest")
    elif kind == "contrast":
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * level + mean
    else:  # resolution: area-average down, bilinear back up
        small = (max(1, round(width * level)), max(1, round(height * level)))
        out = np.empty_like(x)
        for i, img in enumerate(x):
            low = cv2.resize(img, small, interpolation=cv2.INTER_AREA)
            up = cv2.resize(
                low.reshape(small[1], small[0], -1), (width, height), interpolation=cv2.INTER_LINEAR
            )
            out[i] = up.reshape(height, width, -1)
        x = out
    x = np.clip(x, 0.0, 1.0)
    x = x if images.ndim == 4 else x[..., 0]
    if dtype == np.uint8:
        return np.round(x * 255.0).astype(np.uint8)
    return x.astype(dtype)


def _auc_or_nan(y_true: np.ndarray, y_score: np.ndarray) -> float:
    if len(np.unique(y_true)) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return float(roc_auc_score(y_true, y_score))


def selective_prediction(
    y_true,
    y_score,
    uncertainty,
    coverages: Sequence[float],
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Metrics on the most certain cases when the rest are referred to a clinician.

    Cases are ranked by ``uncertainty`` (lowest first, ties in input order); for each
    coverage ``c`` in (0, 1] the first ``ceil(c * n)`` cases are kept and scored with the
    rule ``score >= threshold``. Returns one row per coverage with ``coverage, referred``
    (fraction referred), ``n_kept``, ``accuracy, sensitivity, specificity`` and ``auc``
    (NaN when the kept cases hold one class only). This is the accuracy-coverage curve of
    selective classification (Geifman & El-Yaniv, 2017).
    """
    y_true = np.asarray(y_true).reshape(-1)
    y_score = np.asarray(y_score, dtype=np.float64).reshape(-1)
    uncertainty = np.asarray(uncertainty, dtype=np.float64).reshape(-1)
    if not y_true.size == y_score.size == uncertainty.size:
        raise ValueError(
            f"y_true, y_score and uncertainty must have the same length, got "
            f"{y_true.size}, {y_score.size} and {uncertainty.size}"
        )
    if not np.isfinite(uncertainty).all():
        raise ValueError("uncertainty contains NaN or infinite values")
    coverages = np.asarray(coverages, dtype=np.float64).reshape(-1)
    if coverages.size == 0 or np.any((coverages <= 0) | (coverages > 1)):
        raise ValueError(f"coverages must lie in (0, 1], got {coverages.tolist()}")
    order = np.argsort(uncertainty, kind="stable")
    rows = []
    for coverage in coverages:
        keep = order[: int(np.ceil(coverage * y_true.size - 1e-9))]
        metrics = binary_metrics(y_true[keep], y_score[keep], threshold)
        rows.append(
            {
                "coverage": float(coverage),
                "referred": 1.0 - float(coverage),
                "n_kept": int(keep.size),
                "accuracy": metrics["accuracy"],
                "sensitivity": metrics["sensitivity"],
                "specificity": metrics["specificity"],
                "auc": _auc_or_nan(y_true[keep], y_score[keep]),
            }
        )
    return pd.DataFrame(rows)


def _grouped_inputs(y_true, y_score, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat arrays of labels, scores and group labels, checked to describe the same patients."""
    y_true = np.asarray(y_true).reshape(-1)
    y_score = np.asarray(y_score, dtype=np.float64).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    if not y_true.size == y_score.size == groups.size:
        raise ValueError(
            f"y_true, y_score and groups must have the same length, got "
            f"{y_true.size}, {y_score.size} and {groups.size}"
        )
    return y_true, y_score, groups


def subgroup_report(
    y_true,
    y_score,
    groups,
    threshold: float,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """AUC, sensitivity and specificity per subgroup, each with a bootstrap interval.

    ``groups`` gives each patient's subgroup label (e.g. an age band). Each group gets the
    ``roc_auc`` (here ``auc``), ``sensitivity`` and ``specificity`` rows of
    :func:`evaluation.clinical_report`, so patients are resampled within each group. Returns
    a long table with columns ``group, n, positives, metric, value, ci_low, ci_high``, with
    one row per group
    and metric; a metric that is undefined in a group (e.g. AUC when the group holds one
    class) is NaN. Mismatched lengths raise ``ValueError``.
    """
    y_true, y_score, groups = _grouped_inputs(y_true, y_score, groups)
    if y_true.size == 0:
        raise ValueError("no patients to evaluate")
    rows = []
    for group in pd.unique(groups):
        mask = groups == group
        report = clinical_report(
            y_true[mask],
            y_score[mask],
            threshold,
            n_boot=n_boot,
            alpha=alpha,
            seed=seed,
            metrics=("roc_auc", "sensitivity", "specificity"),
        )
        for name, (value, low, high) in report.rename(index={"roc_auc": "auc"}).iterrows():
            rows.append(
                {
                    "group": group,
                    "n": int(mask.sum()),
                    "positives": int(y_true[mask].sum()),
                    "metric": name,
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return pd.DataFrame(rows)


def _rank_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count one half); NaN with one class."""
    from scipy.stats import rankdata

    positives = int(y_true.sum())
    negatives = y_true.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(y_score)
    return float(
        (ranks[y_true == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def subgroup_gap(
    y_true,
    y_score,
    groups,
    group_a,
    group_b,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """ROC AUC of ``group_a`` minus that of ``group_b``, with a bootstrap interval of the gap.

    The two groups hold different patients, so their AUCs are independent estimates and the
    question "do they differ?" is answered by an interval of the **difference**, not by
    whether the two groups' own intervals overlap (overlap is a much weaker, conservative
    check). Each of the ``n_boot`` resamples draws patients with replacement from the
    patients of both groups together (the cohort of the comparison, so the group sizes vary
    as they would in a new sample) and computes AUC in ``group_a`` minus AUC in ``group_b``;
    resamples in which a group lacks one class are dropped. Returns a dict with
    ``auc_a, auc_b, difference, ci_low, ci_high`` (percentile ``(1 - alpha)`` interval),
    ``n_a, n_b`` and ``draws`` (the bootstrap differences, for other quantiles such as a
    multiplicity-adjusted interval). Unknown groups, mismatched lengths or a group without
    both classes raise ``ValueError``.
    """
    y_true, y_score, groups = _grouped_inputs(y_true, y_score, groups)
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 labels")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score contains NaN or infinite values")
    if n_boot < 1 or not 0 < alpha < 1:
        raise ValueError("n_boot must be >= 1 and alpha in (0, 1)")
    cohort = np.flatnonzero(np.isin(groups, [group_a, group_b]))
    y, s, is_a = y_true[cohort].astype(int), y_score[cohort], groups[cohort] == group_a
    for name, mask in ((group_a, is_a), (group_b, ~is_a)):
        if mask.sum() == 0:
            raise ValueError(f"no patient belongs to group {name!r}")
        if np.unique(y[mask]).size < 2:
            raise ValueError(f"group {name!r} holds one class only: its AUC is undefined")
    auc_a, auc_b = _rank_auc(y[is_a], s[is_a]), _rank_auc(y[~is_a], s[~is_a])
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(int(n_boot)):
        index = rng.integers(0, cohort.size, cohort.size)
        a, b = index[is_a[index]], index[~is_a[index]]
        gap = _rank_auc(y[a], s[a]) - _rank_auc(y[b], s[b])
        if np.isfinite(gap):
            draws.append(gap)
    draws = np.asarray(draws, dtype=np.float64)
    low, high = (
        np.quantile(draws, [alpha / 2, 1 - alpha / 2])
        if draws.size
        else (float("nan"), float("nan"))
    )
    return {
        "auc_a": auc_a,
        "auc_b": auc_b,
        "difference": auc_a - auc_b,
        "ci_low": float(low),
        "ci_high": float(high),
        "n_a": int(is_a.sum()),
        "n_b": int((~is_a).sum()),
        "draws": draws,
    }


def occlusion_map(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    patch: int = 6,
    stride: int = 2,
    max_batch: int = 2048,
) -> np.ndarray:
    """Occlusion sensitivity maps ``(n, height, width)``: how much the score drops per pixel.

    For every film a ``patch`` x ``patch`` square slides over the image with step
    ``stride``; the square is set to the film's own mean intensity and ``predict`` (a function
    from images ``(m, h, w, c)`` to one score per image, e.g. a logit) is evaluated. Each
    pixel receives the average drop ``score(film) - score(occluded film)`` over the positions
    that covered it: positive where hiding the pixel lowers the score (evidence for the
    class), negative where it raises it (Zeiler & Fergus, 2014). The cost is one prediction
    per position and film, so keep it to a few small films; ``predict`` receives up to
    ``max_batch`` occluded images per call. Bad shapes or sizes raise ``ValueError``.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"expected images (n, h, w, c), got shape {images.shape}")
    n, height, width = images.shape[:3]
    if not 1 <= patch <= min(height, width) or stride < 1:
        raise ValueError(
            f"need 1 <= patch <= {min(height, width)} and stride >= 1, got {patch}, {stride}"
        )
    tops = sorted(set(range(0, height - patch + 1, stride)) | {height - patch})
    lefts = sorted(set(range(0, width - patch + 1, stride)) | {width - patch})
    positions = [(t, left) for t in tops for left in lefts]
    base = np.asarray(predict(images), dtype=np.float64).reshape(-1)
    if base.size != n:
        raise ValueError(f"predict returned {base.size} scores for {n} images")
    count = np.zeros((height, width))
    for t, left in positions:
        count[t : t + patch, left : left + patch] += 1
    maps = np.zeros((n, height, width))
    per_call = max(1, max_batch // len(positions))  # films scored in one call of predict
    for start in range(0, n, per_call):
        films = images[start : start + per_call]
        batch = np.repeat(films, len(positions), axis=0)  # film-major: film j, position k
        for j, film in enumerate(films):
            for k, (t, left) in enumerate(positions):
                batch[j * len(positions) + k, t : t + patch, left : left + patch] = film.mean()
        scores = np.asarray(predict(batch), dtype=np.float64).reshape(len(films), len(positions))
        for j in range(len(films)):
            drops = base[start + j] - scores[j]
            for (t, left), drop in zip(positions, drops, strict=True):
                maps[start + j, t : t + patch, left : left + patch] += drop
    return maps / count


def pehe(tau_true, tau_hat) -> float:
    """Precision in estimating heterogeneous effects: ``sqrt(mean((tau_hat - tau_true)**2))``.

    ``tau_true`` are the true individual treatment effects (known only in simulations),
    ``tau_hat`` the estimates, in the outcome's units (Hill, 2011). Lengths must match and
    values be finite, otherwise ``ValueError``.
    """
    tau_true = np.asarray(tau_true, dtype=np.float64).reshape(-1)
    tau_hat = np.asarray(tau_hat, dtype=np.float64).reshape(-1)
    if tau_true.size != tau_hat.size:
        raise ValueError(f"tau_true has {tau_true.size} values but tau_hat has {tau_hat.size}")
    if tau_true.size == 0:
        raise ValueError("no effects to compare")
    if not (np.isfinite(tau_true).all() and np.isfinite(tau_hat).all()):
        raise ValueError("tau_true and tau_hat must be finite")
    return float(np.sqrt(np.mean((tau_hat - tau_true) ** 2)))


def dirichlet_partition(
    labels,
    n_clients: int,
    alpha: float,
    seed: int = 0,
    min_size: int = 1,
    max_tries: int = 1000,
) -> list[np.ndarray]:
    """Split cases among ``n_clients`` "hospitals" with label skew drawn from a Dirichlet.

    For every class, the shares of its cases that go to each client are drawn from
    ``Dirichlet(alpha, ..., alpha)``: small ``alpha`` (e.g. 0.5) gives very different class
    mixes and sizes per client, large ``alpha`` nearly identical ones. Draws are repeated
    until every client has at least ``min_size`` cases. Returns one sorted index array per
    client; together they cover every case exactly once. Bad arguments, or no valid draw in
    ``max_tries``, raise ``ValueError``.
    """
    labels = np.asarray(labels).reshape(-1)
    if isinstance(n_clients, bool) or int(n_clients) != n_clients or n_clients < 2:
        raise ValueError(f"n_clients must be an integer >= 2, not {n_clients!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, not {alpha!r}")
    if min_size < 0 or min_size * n_clients > labels.size:
        raise ValueError(
            f"cannot give {n_clients} clients at least {min_size} cases each "
            f"from {labels.size} cases"
        )
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for c in classes:
            index = rng.permutation(np.flatnonzero(labels == c))
            shares = rng.dirichlet(np.full(n_clients, float(alpha)))
            cuts = np.round(np.cumsum(shares)[:-1] * index.size).astype(int)
            for k, chunk in enumerate(np.split(index, cuts)):
                parts[k].append(chunk)
        clients = [np.sort(np.concatenate(p)) for p in parts]
        if min(c.size for c in clients) >= min_size:
            return clients
    raise ValueError(
        f"no partition with >= {min_size} cases per client in {max_tries} draws; "
        "raise alpha or lower min_size"
    )


def federated_average(
    weight_lists: Sequence[Sequence[np.ndarray]], sizes: Sequence[float]
) -> list[np.ndarray]:
    """FedAvg: the average of the clients' weights, each client weighted by its size.

    ``weight_lists`` holds one list of arrays per client (``model.get_weights()``), all with
    the same structure; ``sizes`` the number of training cases of each client (McMahan et
    al., 2017). Returns the averaged list, ready for ``model.set_weights``. Mismatched
    structures, negative sizes or a zero total raise ``ValueError``.
    """
    if len(weight_lists) == 0:
        raise ValueError("no client weights to average")
    if len(weight_lists) != len(sizes):
        raise ValueError(f"{len(weight_lists)} weight lists but {len(sizes)} sizes")
    sizes = np.asarray(sizes, dtype=np.float64)
    if np.any(sizes < 0) or sizes.sum() <= 0:
        raise ValueError(f"sizes must be non-negative with a positive total, got {sizes.tolist()}")
    first = weight_lists[0]
    for k, weights in enumerate(weight_lists):
        if len(weights) != len(first) or any(
            np.shape(a) != np.shape(b) for a, b in zip(weights, first, strict=True)
        ):
            raise ValueError(f"client {k} has weights of a different structure from client 0")
    share = sizes / sizes.sum()
    return [
        sum(
            s * np.asarray(w[i], dtype=np.float64) for s, w in zip(share, weight_lists, strict=True)
        ).astype(np.asarray(first[i]).dtype)
        for i in range(len(first))
    ]
