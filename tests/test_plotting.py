"""helpers.plotting: theme and shared figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import plotting  # noqa: E402


def test_image_grid_titles_each_image_with_its_class_name():
    images = np.random.default_rng(0).integers(0, 255, (5, 8, 8), dtype=np.uint8)
    labels = np.array([[0], [1], [1], [0], [1]])
    fig = plotting.image_grid(
        images, labels, {"0": "normal", "1": "pneumonia"}, ncols=3, title="grid"
    )
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 6 and len(shown) == 5
    assert [ax.get_title() for ax in shown] == [
        "normal",
        "pneumonia",
        "pneumonia",
        "normal",
        "pneumonia",
    ]
    assert fig._suptitle.get_text() == "grid"
    plt.close(fig)


def test_image_grid_accepts_colour_and_channel_last_grey():
    colour = np.zeros((2, 8, 8, 3), np.uint8)
    grey = np.zeros((2, 8, 8, 1), np.float32)
    for images in (colour, grey):
        fig = plotting.image_grid(images, [0, 1], ["a", "b"])
        assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
        plt.close(fig)


@pytest.mark.parametrize("bad", [np.zeros((8, 8)), np.zeros((2, 8, 8, 2)), np.zeros((0, 8, 8))])
def test_image_grid_rejects_bad_shapes(bad):
    with pytest.raises(ValueError):
        plotting.image_grid(bad)


def test_class_name_handles_int_and_str_keys():
    assert plotting.class_name(np.int64(1), {"1": "pneumonia"}) == "pneumonia"
    assert plotting.class_name(1, {1: "pneumonia"}) == "pneumonia"
    assert plotting.class_name(2, ["a", "b", "c"]) == "c"
    assert plotting.class_name(3, None) == "3"


def test_set_theme_sets_the_course_style():
    plotting.set_theme()
    assert plt.rcParams["axes.titleweight"] == "bold"
    assert plt.rcParams["axes.grid"]


def test_roc_pr_curves_label_each_model_with_its_area():
    y = np.array([0, 0, 1, 1, 0, 1])
    fig = plotting.roc_pr_curves(y, {"perfect": y * 0.9 + 0.05, "weak": np.linspace(0, 1, 6)})
    roc_ax, pr_ax = fig.axes
    labels = [t.get_text() for t in roc_ax.get_legend().get_texts()]
    assert labels[0] == "perfect (AUC 1.000)" and labels[-1] == "chance"
    assert pr_ax.get_xlabel() == "recall (sensitivity)"
    plt.close(fig)


def test_reliability_and_confusion_plots():
    import pandas as pd

    table = pd.DataFrame(
        {"confidence": [0.1, 0.5, 0.9], "frequency": [0.2, 0.5, 0.7], "count": [5, 5, 5]}
    )
    fig = plotting.reliability_diagram({"model": table})
    assert len(fig.axes[0].lines) == 2
    plt.close(fig)
    fig = plotting.confusion_matrix_plot([0, 1, 1, 1], [0, 1, 0, 1], ["normal", "pneumonia"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1\n100%", "0\n0%", "1\n33%", "2\n67%"]
    plt.close(fig)
