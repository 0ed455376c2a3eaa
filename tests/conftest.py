"""Shared fixtures. The real datasets come from the data root (DL4H_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import course, data

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
GRAPH_OPTIMIZER_ENV = "DL4H_GRAPH_OPTIMIZER"  # helpers.config's (tests/test_config.py checks)


# The configured data root, captured before any test points DL4H_DATA elsewhere.
REAL_ROOT = data.data_root()


def require(name: str) -> Path:
    """Path of a real dataset file in the configured data root.

    Skipped locally when the file is not cached; a failure in CI, which must have it.
    """
    path = REAL_ROOT / data.dataset_info(name).path
    if not path.is_file():
        reason = f"real dataset {name!r} is not cached at {path} (set DL4H_DATA)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def count_train_step_traces(model, monkeypatch) -> dict[str, int]:
    """Count the Python calls of ``model.train_step`` (``["n"]``): one per trace of the
    training step (helpers.models.build_optimizer makes it one per model)."""
    calls = {"n": 0}
    original = model.train_step

    def counted(batch):
        calls["n"] += 1
        return original(batch)

    monkeypatch.setattr(model, "train_step", counted)
    return calls


@pytest.fixture()
def empty_root(tmp_path, monkeypatch):
    """A data root with nothing in it, and downloads switched off."""
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    return tmp_path


def pytest_configure(config):
    """Under pytest-xdist each worker, and the kernels and programs its tests start, gets its
    share of the cores for OpenMP (helpers.course.share_the_cores): threads of two workers'
    gradient boosting that wait for each other's cores spin instead of sleeping. And the
    kernels and programs started by tests run without TensorFlow's graph optimiser."""
    course.share_the_cores(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    # Kernels and programs the tests start train small models briefly: no graph optimiser
    # (helpers.config.GRAPH_OPTIMIZER_ENV, named here so that this process does not import
    # TensorFlow to read it). Tests in this process that import helpers.config afterwards
    # run without it too.
    os.environ.setdefault(GRAPH_OPTIMIZER_ENV, "0")


def pytest_collection_modifyitems(config, items):
    """Book tests last (they need the notebooks executed by nbmake first); notebook runs
    first, so that with ``-n`` (pytest-xdist) the long ones do not start at the end."""

    def key(item):
        slow = item.get_closest_marker("notebook") is not None or item.path.suffix == ".ipynb"
        return (item.get_closest_marker("book") is not None, not slow)

    items.sort(key=key)
