"""Clinical evaluation: metrics at a threshold, bootstrap confidence intervals, threshold
choice on validation data, calibration, and the MedMNIST AUC/ACC definitions.

Conventions: ``y_true`` holds 0/1 labels (1 = the disease), ``y_score`` the model's score
or probability for class 1. Thresholds are chosen on validation data and then *applied* to
test data; nothing in this module looks at a test set to choose anything.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

Metric = Callable[[np.ndarray, np.ndarray], float]


def _binary_inputs(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).reshape(-1)
    y_score = np.asarray(y_score, dtype=np.float64).reshape(-1)
    if y_true.shape != y_score.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_score has {y_score.size}")
    if y_true.size == 0:
        raise ValueError("no samples to evaluate")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError(f"y_true must hold 0/1 labels, found {np.unique(y_true)[:5]}")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score contains NaN or infinite values")
    return y_true.astype(int), y_score


def _finite_threshold(threshold) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError) as error:
        raise ValueError(f"threshold must be a number, not {threshold!r}") from error
    if not np.isfinite(value):
        raise ValueError(
            f"threshold must be finite, not {threshold!r} (was it chosen on data "
            "with one class only?)"
        )
    return value


def _two_classes(y_true: np.ndarray, what: str) -> None:
    if np.unique(y_true).size < 2:
        raise ValueError(
            f"y_true holds one class only ({int(y_true[0])}): {what} needs both "
            "positive and negative cases"
        )


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def binary_metrics(
    y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5
) -> dict[str, float]:
    """Confusion counts and the clinical metrics of the rule ``score >= threshold``.

    Returns sensitivity (recall of the disease), specificity, PPV (precision), NPV,
    accuracy, F1 and the counts ``tp, fp, tn, fn``. A ratio whose denominator is zero is
    NaN (e.g. PPV when nobody is called positive).
    """
    y_true, y_score = _binary_inputs(y_true, y_score)
    threshold = _finite_threshold(threshold)
    predicted = y_score >= threshold
    tp = int(np.sum(predicted & (y_true == 1)))
    fp = int(np.sum(predicted & (y_true == 0)))
    tn = int(np.sum(~predicted & (y_true == 0)))
    fn = int(np.sum(~predicted & (y_true == 1)))
    sensitivity = _ratio(tp, tp + fn)
    ppv = _ratio(tp, tp + fp)
    return {
        "sensitivity": sensitivity,
        "specificity": _ratio(tn, tn + fp),
        "ppv": ppv,
        "npv": _ratio(tn, tn + fn),
        "accuracy": (tp + tn) / y_true.size,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def bootstrap_ci(
    metric: Metric,
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap ``(1 - alpha)`` interval of ``metric``.

    Patients (rows) are resampled with replacement ``n_boot`` times; resamples in which
    the metric is undefined (e.g. AUC with one class only, NaN results) are dropped. Returns
    ``(value, low, high)``; an estimate that is undefined on the data itself is NaN.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    if len(y_true) != len(y_score):
        raise ValueError(f"y_true has {len(y_true)} rows but y_score has {len(y_score)}")
    for name, values in (("y_true", y_true), ("y_score", y_score)):
        if np.issubdtype(values.dtype, np.number) and not np.isfinite(values).all():
            raise ValueError(f"{name} contains NaN or infinite values; drop or impute them first")
    if n_boot < 1 or not 0 < alpha < 1:
        raise ValueError("n_boot must be >= 1 and alpha in (0, 1)")

    def defined(index: np.ndarray | slice) -> float:
        try:
            with warnings.catch_warnings():  # one class only: NaN + warning
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                return float(metric(y_true[index], y_score[index]))
        except ValueError:  # older scikit-learn raises instead
            return float("nan")

    value = defined(slice(None))
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        result = defined(rng.integers(0, len(y_true), len(y_true)))
        if np.isfinite(result):
            samples.append(result)
    if not samples:
        return value, float("nan"), float("nan")
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return value, float(low), float(high)


def accuracy_at_half(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Accuracy of the rule ``score >= 0.5``: a metric of ``(y_true, y_score)`` for
    :func:`bootstrap_ci` and :func:`paired_bootstrap` (the default rule of most libraries,
    not a threshold chosen for a clinical purpose)."""
    y_true, y_score = _binary_inputs(y_true, y_score)
    return float(np.mean((y_score >= 0.5) == y_true))


#: The rows of :func:`clinical_report`, in order.
CLINICAL_METRICS = ("roc_auc", "pr_auc", "sensitivity", "specificity", "ppv", "npv", "accuracy")


def clinical_report(
    y_true: ArrayLike,
    y_score: ArrayLike,
    threshold: float,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    metrics: Sequence[str] = CLINICAL_METRICS,
) -> pd.DataFrame:
    """ROC AUC, PR AUC and the metrics at ``threshold``, each with a bootstrap interval.

    One row per metric (``roc_auc, pr_auc, sensitivity, specificity, ppv, npv,
    accuracy``, or the subset named in ``metrics``) and columns ``value, ci_low, ci_high``.
    ``threshold`` should have been chosen on validation data (see
    :func:`threshold_for_sensitivity`). Unknown metric names raise ``ValueError``.
    """
    y_true, y_score = _binary_inputs(y_true, y_score)
    threshold = _finite_threshold(threshold)
    unknown = [name for name in metrics if name not in CLINICAL_METRICS]
    if unknown or not metrics:
        raise ValueError(
            f"unknown or no metrics {unknown}; choose from {', '.join(CLINICAL_METRICS)}"
        )

    def metric(name: str) -> Metric:
        if name == "roc_auc":
            return roc_auc_score
        if name == "pr_auc":
            return average_precision_score
        return lambda t, s: binary_metrics(t, s, threshold)[name]

    rows = {
        name: bootstrap_ci(metric(name), y_true, y_score, n_boot=n_boot, alpha=alpha, seed=seed)
        for name in metrics
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["value", "ci_low", "ci_high"])


def threshold_for_sensitivity(y_true: ArrayLike, y_score: ArrayLike, target: float = 0.9) -> float:
    """The highest threshold whose sensitivity on these (validation) data is >= ``target``.

    Screening tests fix the sensitivity they must reach and take the most specific rule
    that reaches it. Raises ``ValueError`` when there are no positive cases.
    """
    y_true, y_score = _binary_inputs(y_true, y_score)
    if not 0 < target <= 1:
        raise ValueError(f"target sensitivity must be in (0, 1], not {target}")
    positives = np.sort(y_score[y_true == 1])[::-1]
    if positives.size == 0:
        raise ValueError("no positive cases: sensitivity is undefined")
    _two_classes(y_true, "choosing a threshold (its specificity)")
    needed = int(np.ceil(target * positives.size))
    return float(positives[needed - 1])


def youden_threshold(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1 on these data."""
    y_true, y_score = _binary_inputs(y_true, y_score)
    _two_classes(y_true, "Youden's J")
    fpr, tpr, thresholds = roc_curve(y_true, y_score)
    best = 1 + int(np.argmax(tpr[1:] - fpr[1:]))  # index 0 is the "call nobody" rule
    return float(thresholds[best])


def reliability_table(y_true: ArrayLike, prob: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins of predicted probability with their mean confidence and frequency.

    Columns: ``bin_low, bin_high, count, confidence`` (mean predicted probability) and
    ``frequency`` (observed fraction of positives). Empty bins are left out. This is the
    data of a reliability diagram.
    """
    y_true, prob = _binary_inputs(y_true, prob)
    if prob.min() < 0 or prob.max() > 1:
        raise ValueError("probabilities must lie in [0, 1]")
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = which == b
        if mask.any():
            rows.append(
                {
                    "bin_low": edges[b],
                    "bin_high": edges[b + 1],
                    "count": int(mask.sum()),
                    "confidence": float(prob[mask].mean()),
                    "frequency": float(y_true[mask].mean()),
                }
            )
    return pd.DataFrame(rows)


def expected_calibration_error(y_true: ArrayLike, prob: ArrayLike, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between confidence and frequency over the bins."""
    table = reliability_table(y_true, prob, n_bins)
    gaps = (table["confidence"] - table["frequency"]).abs()
    return float(np.sum(gaps * table["count"]) / table["count"].sum())


def fit_temperature(logits: ArrayLike, y_true: ArrayLike) -> float:
    """Temperature ``T`` that minimises the log-loss of ``sigmoid(logits / T)``.

    Fit it on validation logits; apply with :func:`apply_temperature`. ``T > 1`` softens
    over-confident models. Accuracy and AUC do not change, only calibration.
    """
    from scipy.optimize import minimize_scalar

    y_true, logits = _binary_inputs(y_true, logits)

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        return float(np.mean(np.logaddexp(0, z) - y_true * z))

    result = minimize_scalar(nll, bounds=(-4, 4), method="bounded")
    return float(np.exp(result.x))


def apply_temperature(logits: ArrayLike, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``sigmoid(logits / temperature)``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    return 1 / (1 + np.exp(-z))


def medmnist_auc_acc(
    y_true: ArrayLike, y_score: ArrayLike, task: str, threshold: float = 0.5
) -> tuple[float, float]:
    """AUC and ACC exactly as the MedMNIST v2 evaluator defines them.

    ``task`` is the MedMNIST task string. Binary: AUC of the last score column, ACC of
    ``score > threshold``. Multi-label: means over labels of per-label AUC and ACC.
    Multi-class and ordinal regression: mean one-vs-rest AUC over classes and the accuracy
    of the arg-max. ``y_score`` is ``(n, classes)`` (``(n,)`` or ``(n, 1)`` for binary).
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_score.ndim == 1:
        y_score = y_score[:, None]
    if len(y_true) != len(y_score):
        raise ValueError(f"y_true has {len(y_true)} rows but y_score has {len(y_score)}")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score contains NaN or infinite values")
    if np.issubdtype(y_true.dtype, np.number) and not np.isfinite(y_true).all():
        raise ValueError("y_true contains NaN or infinite values")
    if task in ("binary-class", "multi-class", "ordinal-regression"):
        labels = y_true.reshape(-1)
        n_classes = 2 if task == "binary-class" else y_score.shape[1]
        if labels.min() < 0 or labels.max() >= n_classes or not np.all(labels == np.round(labels)):
            raise ValueError(
                f"y_true holds labels {np.unique(labels)[:8]} but y_score has scores "
                f"for {n_classes} classes ({task}): labels must be 0..{n_classes - 1}"
            )
        if task != "binary-class" and y_score.shape[1] < 2:
            raise ValueError(f"{task} needs one score column per class, got {y_score.shape[1]}")
        absent = sorted(set(range(n_classes)) - set(np.unique(labels).astype(int).tolist()))
        if absent:
            raise ValueError(
                f"class(es) {absent} have no case in y_true: the {task} AUC is "
                "undefined (evaluate on a split that holds every class)"
            )
    elif task == "multi-label, binary-class" and y_true.shape != y_score.shape:
        raise ValueError(f"multi-label y_true {y_true.shape} and y_score {y_score.shape} differ")
    if task == "binary-class":
        labels = y_true.reshape(-1)
        score = y_score[:, -1]
        return float(roc_auc_score(labels, score)), float(np.mean((score > threshold) == labels))
    if task == "multi-label, binary-class":
        aucs = [roc_auc_score(y_true[:, k], y_score[:, k]) for k in range(y_true.shape[1])]
        accs = [
            np.mean((y_score[:, k] > threshold) == y_true[:, k]) for k in range(y_true.shape[1])
        ]
        return float(np.mean(aucs)), float(np.mean(accs))
    if task in ("multi-class", "ordinal-regression"):
        labels = y_true.reshape(-1)
        aucs = [roc_auc_score(labels == k, y_score[:, k]) for k in range(y_score.shape[1])]
        return float(np.mean(aucs)), float(np.mean(np.argmax(y_score, axis=1) == labels))
    raise ValueError(f"unknown MedMNIST task {task!r}")


# --------------------------------------------------------------------------- comparisons
def proportion_ci(
    successes: int, n: int, *, alpha: float = 0.05, method: str = "wilson"
) -> tuple[float, float, float]:
    """A proportion and its ``(1 - alpha)`` interval: ``(p, low, high)``.

    ``method`` is ``"wilson"`` (score interval, good coverage at any size) or ``"exact"``
    (Clopper-Pearson, conservative). Use one of them instead of a bootstrap when the
    proportion is at or near 0 or 1 or the count is small: 31 correct calls out of 31 give a
    bootstrap interval of 1.000-1.000, the exact interval 0.888-1.000. Computed by
    ``scipy.stats.binomtest``.
    """
    from scipy.stats import binomtest

    if method not in ("wilson", "exact"):
        raise ValueError(f"method must be 'wilson' or 'exact', not {method!r}")
    if int(n) != n or int(successes) != successes or n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need whole numbers 0 <= successes <= n and n >= 1, got {successes}/{n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha}")
    interval = binomtest(int(successes), int(n)).proportion_ci(1 - alpha, method=method)
    return int(successes) / int(n), float(interval.low), float(interval.high)


def _placements(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: for each positive, the share of negatives it beats
    (ties count one half), and for each negative the share of positives that beat it."""
    from scipy.stats import rankdata

    pos, neg = score[y_true == 1], score[y_true == 0]
    m, n = pos.size, neg.size
    ranks_all = rankdata(np.concatenate([pos, neg]))
    v10 = (ranks_all[:m] - rankdata(pos)) / n
    v01 = 1 - (ranks_all[m:] - rankdata(neg)) / m
    return v10, v01


def delong_test(
    y_true: ArrayLike, score_a: ArrayLike, score_b: ArrayLike, *, alpha: float = 0.05
) -> dict[str, float]:
    """DeLong's test for two correlated ROC AUCs on the **same** cases.

    Returns ``auc_a, auc_b, difference`` (a - b), its standard error, the ``(1 - alpha)``
    interval ``ci_low, ci_high`` of the difference, ``z`` and the two-sided ``p`` value
    (DeLong, DeLong and Clarke-Pearson 1988; the fast algorithm of Sun and Xu 2014). Pairing
    matters: two models that err on the same hard cases have strongly correlated AUCs, and
    comparing their separate intervals would miss a real difference or invent one.
    """
    from scipy.stats import norm

    y_true, score_a = _binary_inputs(y_true, score_a)
    _, score_b = _binary_inputs(y_true, score_b)
    _two_classes(y_true, "an AUC")
    comps = [_placements(y_true, s) for s in (score_a, score_b)]
    aucs = np.array([c[0].mean() for c in comps])
    s10 = np.cov(np.vstack([c[0] for c in comps])) if (y_true == 1).sum() > 1 else np.zeros((2, 2))
    s01 = np.cov(np.vstack([c[1] for c in comps])) if (y_true == 0).sum() > 1 else np.zeros((2, 2))
    cov = s10 / (y_true == 1).sum() + s01 / (y_true == 0).sum()
    diff = float(aucs[0] - aucs[1])
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    z = diff / se if se > 0 else (0.0 if diff == 0 else float(np.sign(diff) * np.inf))
    half = norm.ppf(1 - alpha / 2) * se
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "difference": diff,
        "se": se,
        "ci_low": float(diff - half),
        "ci_high": float(diff + half),
        "z": float(z),
        "p": float(2 * norm.sf(abs(z))),
    }


def paired_bootstrap(
    metric: Metric,
    y_true: ArrayLike,
    score_a: ArrayLike,
    score_b: ArrayLike,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``metric(a) - metric(b)`` on the same cases, with a paired percentile bootstrap interval.

    Each resample draws the *same* patients for both models, so what the two share (the
    hard cases) cancels out of the difference. Returns ``(difference, low, high)``; an
    interval that excludes 0 is evidence that one model is better on this population.
    Works for any metric of ``(y_true, score)``, e.g. ``roc_auc_score`` or a sensitivity at
    a fixed threshold. Resamples where the metric is undefined are dropped.
    """
    y_true = np.asarray(y_true)
    score_a = np.asarray(score_a, dtype=np.float64)
    score_b = np.asarray(score_b, dtype=np.float64)
    if not (len(y_true) == len(score_a) == len(score_b)):
        raise ValueError(
            f"y_true, score_a and score_b have {len(y_true)}, {len(score_a)} and "
            f"{len(score_b)} rows: they must describe the same cases"
        )
    stacked = np.stack([score_a.reshape(len(y_true), -1), score_b.reshape(len(y_true), -1)], axis=1)

    def difference(t: np.ndarray, s: np.ndarray) -> float:
        a, b = s[:, 0], s[:, 1]
        if a.shape[1] == 1:
            a, b = a[:, 0], b[:, 0]
        return float(metric(t, a)) - float(metric(t, b))

    return bootstrap_ci(difference, y_true, stacked, n_boot=n_boot, alpha=alpha, seed=seed)
