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
