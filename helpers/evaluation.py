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


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def binary_metrics(y_true, y_score, threshold: float = 0.5) -> dict[str, float]:
    """Confusion counts and the clinical metrics of the rule ``score >= threshold``.

    Returns sensitivity (recall of the disease), specificity, PPV (precision), NPV,
    accuracy, F1 and the counts ``tp, fp, tn, fn``. A ratio whose denominator is zero is
    NaN (e.g. PPV when nobody is called positive).
    """
    y_true, y_score = _binary_inputs(y_true, y_score)
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
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
    }


def bootstrap_ci(
    metric: Metric,
    y_true,
    y_score,
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


#: The rows of :func:`clinical_report`, in order.
CLINICAL_METRICS = ("roc_auc", "pr_auc", "sensitivity", "specificity", "ppv", "npv", "accuracy")


def clinical_report(
    y_true,
    y_score,
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
    unknown = [name for name in metrics if name not in CLINICAL_METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown or no metrics {unknown}; choose from {', '.join(CLINICAL_METRICS)}")

    def metric(name: str) -> Metric:
        if name == "roc_auc":
            return roc_auc_score
        if name == "pr_auc":
            return average_precision_score
        return lambda t, s: binary_metrics(t, s, threshold)[name]

    rows = {name: bootstrap_ci(metric(name), y_true, y_score, n_boot=n_boot, alpha=alpha, seed=seed)
            for name in metrics}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["value", "ci_low", "ci_high"])


def threshold_for_sensitivity(y_true, y_score, target: float = 0.9) -> float:
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
    needed = int(np.ceil(target * positives.size))
    return float(positives[needed - 1])


def youden_threshold(y_true, y_score) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1 on these data."""
    y_true, y_score = _binary_inputs(y_true, y_score)
    fpr, tpr, thresholds = roc_curve(y_true, y_score)
    best = 1 + int(np.argmax(tpr[1:] - fpr[1:]))  # index 0 is the "call nobody" rule
    return float(thresholds[best])


def reliability_table(y_true, prob, n_bins: int = 10) -> pd.DataFrame:
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
            rows.append({"bin_low": edges[b], "bin_high": edges[b + 1], "count": int(mask.sum()),
                         "confidence": float(prob[mask].mean()),
                         "frequency": float(y_true[mask].mean())})
    return pd.DataFrame(rows)


def expected_calibration_error(y_true, prob, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between confidence and frequency over the bins."""
    table = reliability_table(y_true, prob, n_bins)
    gaps = (table["confidence"] - table["frequency"]).abs()
    return float(np.sum(gaps * table["count"]) / table["count"].sum())


def fit_temperature(logits, y_true) -> float:
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


def apply_temperature(logits, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``sigmoid(logits / temperature)``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    return 1 / (1 + np.exp(-z))


def medmnist_auc_acc(y_true, y_score, task: str, threshold: float = 0.5) -> tuple[float, float]:
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
    if task == "binary-class":
        labels = y_true.reshape(-1)
        score = y_score[:, -1]
        return float(roc_auc_score(labels, score)), float(np.mean((score > threshold) == labels))
    if task == "multi-label, binary-class":
        aucs = [roc_auc_score(y_true[:, k], y_score[:, k]) for k in range(y_true.shape[1])]
        accs = [np.mean((y_score[:, k] > threshold) == y_true[:, k]) for k in range(y_true.shape[1])]
        return float(np.mean(aucs)), float(np.mean(accs))
    if task in ("multi-class", "ordinal-regression"):
        labels = y_true.reshape(-1)
        aucs = [roc_auc_score(labels == k, y_score[:, k]) for k in range(y_score.shape[1])]
        return float(np.mean(aucs)), float(np.mean(np.argmax(y_score, axis=1) == labels))
    raise ValueError(f"unknown MedMNIST task {task!r}")
