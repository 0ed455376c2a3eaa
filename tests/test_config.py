"""helpers.config: profiles, knobs, seeding, devices, environment report."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import config


def test_env_variable_overrides_the_notebook(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "smoke")
    assert config.resolve_profile("gpu") == "smoke"
    monkeypatch.setenv(config.PROFILE_ENV, " CPU ")
    assert config.resolve_profile("auto") == "cpu"


def test_auto_follows_the_visible_devices(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    expected = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    assert config.resolve_profile("auto") == expected
    monkeypatch.setattr(config, "gpu_available", lambda: True)
    assert config.resolve_profile("auto") == "gpu"
    monkeypatch.setattr(config, "gpu_available", lambda: False)
    assert config.resolve_profile("auto") == "cpu"


def test_unknown_profile_names_the_valid_ones(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    with pytest.raises(ValueError, match="unknown profile 'fast'; choose one of smoke, cpu, gpu"):
        config.resolve_profile("fast")


def test_settings_overrides_none_keeps_profile_value(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    s = config.get_settings("cpu", seed=7, EPOCHS=3, IMG_SIZE=None, batch_size=16)
    assert (s.profile, s.epochs, s.img_size, s.batch_size, s.seed) == ("cpu", 3, 28, 16, 7)
    assert config.get_settings("smoke").n_train == 256
    assert config.get_settings("gpu").img_size == 224
    with pytest.raises(TypeError, match="unknown knob 'EPOCH'"):
        config.get_settings("cpu", EPOCH=3)


def test_pick_prefers_the_explicit_value(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    s = config.get_settings("smoke")
    assert s.pick(None, smoke=1, cpu=2, gpu=3) == 1
    assert s.pick(9, smoke=1, cpu=2, gpu=3) == 9
    assert config.get_settings("gpu").pick(None, smoke=1, cpu=2, gpu=3) == 3


def test_set_seed_makes_numpy_python_and_keras_repeat():
    import random

    config.set_seed(123)
    first = (random.random(), np.random.rand(), keras.random.uniform((3,)).numpy().tolist())
    config.set_seed(123)
    second = (random.random(), np.random.rand(), keras.random.uniform((3,)).numpy().tolist())
    assert first == second
    config.set_seed(124)
    assert (random.random(), np.random.rand()) != first[:2]


def test_setup_devices_on_this_machine():
    strategy = config.setup_devices("cpu")
    n_gpus = len(tf.config.list_physical_devices("GPU"))
    assert strategy.num_replicas_in_sync == max(1, n_gpus)
    assert keras.mixed_precision.global_policy().name == "float32"
    config.setup_devices("cpu", mixed_precision=True)
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    config.setup_devices("cpu")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_setup_resolves_seeds_and_returns_settings(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "smoke")
    s = config.setup("gpu", seed=5, EPOCHS=2)
    assert (s.profile, s.seed, s.epochs) == ("smoke", 5, 2)


def test_environment_report_has_versions_devices_profile_and_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("DL4H_DATA", str(tmp_path))
    report = config.environment_report("smoke")
    assert report["profile"] == "smoke"
    assert report["data_root"] == str(tmp_path.resolve())
    assert report["tensorflow"] == tf.__version__
    assert report["keras"] == keras.__version__
    assert report["datasets_cached"] == "none"
    assert report["gpus"] == "none" or tf.config.list_physical_devices("GPU")
