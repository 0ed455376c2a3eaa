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
    fig = plotting.image_grid(images, labels, {"0": "normal", "1": "pneumonia"}, ncols=3,
                              title="grid")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 6 and len(shown) == 5
    assert [ax.get_title() for ax in shown] == ["normal", "pneumonia", "pneumonia", "normal", "pneumonia"]
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
