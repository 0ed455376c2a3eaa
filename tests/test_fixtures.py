"""Test fixtures (the gpu-path tests' stand-ins for downloads) are refused outside those tests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import data


def _fixture(root, n=3, size=64):
    path = root / data.dataset_info(f"pneumoniamnist_{size}").path
    path.parent.mkdir(parents=True)
    arrays = {}
    for split in data.SPLITS:
        arrays[f"{split}_images"] = np.zeros((n, size, size), np.uint8)
        arrays[f"{split}_labels"] = np.array([[0], [1], [1]][:n], np.uint8)
    np.savez(path, **arrays)
    data.fixture_marker(path).write_text(json.dumps({"description": "three black films"}))
    return path


def test_a_marked_file_is_refused_without_the_switch(empty_root, monkeypatch):
    monkeypatch.delenv(data.FIXTURE_ENV, raising=False)
    path = _fixture(empty_root)
    with pytest.raises(data.DatasetCorrupt, match=r"TEST FIXTURE.*three black films"):
        data.load_medmnist("pneumoniamnist", "train", 64)
    assert path.is_file()  # refused, never removed
    assert data.is_test_fixture(path) and not data.fixtures_allowed()


def test_with_the_switch_a_fixture_loads_with_a_warning_and_may_hold_a_subset(
    empty_root, monkeypatch
):
    monkeypatch.setenv(data.FIXTURE_ENV, "1")
    _fixture(empty_root)
    with pytest.warns(UserWarning, match="test fixture"):
        images, labels = data.load_medmnist("pneumoniamnist", "val", 64)
    assert images.shape == (3, 64, 64) and labels.shape == (3, 1)


def test_an_unmarked_subset_is_still_corrupt(empty_root, monkeypatch):
    monkeypatch.setenv(data.FIXTURE_ENV, "1")
    path = _fixture(empty_root)
    data.fixture_marker(path).unlink()
    with pytest.raises(data.DatasetCorrupt):
        data.load_medmnist("pneumoniamnist", "val", 64)
