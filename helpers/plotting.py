"""Figures used in more than one chapter, with one seaborn theme for the whole course."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns


def set_theme() -> None:
    """Apply the course's plotting theme (seaborn ``whitegrid``, readable font sizes)."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "axes.titleweight": "bold"})


def class_name(label: Any, class_names: Mapping[Any, str] | Sequence[str] | None) -> str:
    """Name of class ``label``; mappings may be keyed by int or by str (as MedMNIST's are)."""
    if class_names is None:
        return str(label)
    if isinstance(class_names, Mapping):
        key = label.item() if isinstance(label, np.generic) else label
        return str(class_names.get(key, class_names.get(str(key), key)))
    return str(class_names[int(label)])


def image_grid(
    images: np.ndarray,
    labels: Sequence[Any] | np.ndarray | None = None,
    class_names: Mapping[Any, str] | Sequence[str] | None = None,
    *,
    ncols: int = 8,
    title: str | None = None,
    cmap: str = "gray",
) -> plt.Figure:
    """Show images in a grid, each titled with its (named) label.

    ``images`` is ``(n, h, w)`` or ``(n, h, w, c)`` with ``c`` in {1, 3}; ``labels`` are
    per-image class indices (any shape that flattens to ``n``) mapped through
    ``class_names``. Returns the figure so the caller can save it.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(f"expected images (n, h, w) or (n, h, w, 1|3), got {images.shape}")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n = len(images)
    if n == 0:
        raise ValueError("no images to show")
    flat = None if labels is None else np.asarray(labels).reshape(n, -1)[:, 0]
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.8 * nrows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k], cmap=cmap if images.ndim == 3 else None)
        if flat is not None:
            ax.set_title(class_name(flat[k], class_names), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def roc_pr_curves(y_true, scores: Mapping[str, np.ndarray], *, title: str = "") -> plt.Figure:
    """ROC and precision-recall curves of one or more models, side by side.

    ``scores`` maps a model name to its scores for class 1 on the same cases. The legend
    gives each curve's area; the PR panel marks the prevalence (a random model's PR curve).
    """
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    y_true = np.asarray(y_true).reshape(-1)
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name, score in scores.items():
        score = np.asarray(score).reshape(-1)
        fpr, tpr, _ = roc_curve(y_true, score)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y_true, score):.3f})")
        precision, recall, _ = precision_recall_curve(y_true, score)
        pr_ax.plot(
            recall, precision, label=f"{name} (AP {average_precision_score(y_true, score):.3f})"
        )
    roc_ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    pr_ax.axhline(y_true.mean(), ls="--", c="grey", lw=1, label=f"prevalence {y_true.mean():.2f}")
    roc_ax.set(
        title="ROC curve",
        xlabel="1 - specificity (false-positive rate)",
        ylabel="sensitivity (true-positive rate)",
    )
    pr_ax.set(
        title="Precision-recall curve",
        xlabel="recall (sensitivity)",
        ylabel="precision (PPV)",
        ylim=(0, 1.02),
    )
    roc_ax.legend(loc="lower right", fontsize=8)
    pr_ax.legend(loc="lower left", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def reliability_diagram(
    tables: Mapping[str, Any], *, title: str = "Reliability diagram"
) -> plt.Figure:
    """Plot reliability tables (from ``evaluation.reliability_table``) against the diagonal.

    ``tables`` maps a label (e.g. "before" / "after temperature scaling", usually with its
    ECE) to a table with ``confidence``, ``frequency`` and ``count`` columns.
    """
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    for name, table in tables.items():
        ax.plot(table["confidence"], table["frequency"], marker="o", label=name)
    ax.set(
        title=title,
        xlabel="mean predicted probability",
        ylabel="observed frequency of class 1",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_matrix_plot(
    y_true, y_pred, class_names: Sequence[str], *, title: str = "Confusion matrix"
) -> plt.Figure:
    """Heat map of the confusion matrix with counts and row percentages."""
    from sklearn.metrics import confusion_matrix

    labels = list(range(len(class_names)))
    counts = confusion_matrix(
        np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1), labels=labels
    )
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    annot = np.array(
        [
            [f"{c}\n{s:.0%}" for c, s in zip(row_c, row_s, strict=True)]
            for row_c, row_s in zip(counts, share, strict=True)
        ]
    )
    size = 1.2 + 1.1 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(
        share,
        annot=annot,
        fmt="",
        cmap="Blues",
        vmin=0,
        vmax=1,
        cbar=False,
        xticklabels=class_names,
        yticklabels=class_names,
        ax=ax,
    )
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    fig.tight_layout()
    return fig
