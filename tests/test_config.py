"""helpers.config: profiles, knobs, seeding, devices, environment report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import config

ROOT = Path(__file__).resolve().parents[1]


def test_env_variable_overrides_the_notebook(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "smoke")
    assert config.resolve_profile("gpu") == "smoke"
    monkeypatch.setenv(config.PROFILE_ENV, " CPU ")
    assert config.resolve_profile("auto") == "cpu"


def test_auto_follows_the_visible_devices(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
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


def test_pick_takes_one_default_and_none_is_a_real_choice(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    cpu, smoke = config.get_settings("cpu"), config.get_settings("smoke")
    assert cpu.pick(None, 32, smoke=8) == 32 and smoke.pick(None, 32, smoke=8) == 8
    assert cpu.pick(None, 5, cpu=None) is None  # "the whole split" is a choice, not a gap
    with pytest.raises(TypeError, match="no value for profile 'cpu'"):
        cpu.pick(None, smoke=1)


def test_the_unused_steps_knob_is_gone():
    assert "steps" not in config.Settings.__dataclass_fields__


def test_set_seed_makes_numpy_python_and_keras_repeat():
    import random

    config.set_seed(123)
    first = (random.random(), np.random.rand(), keras.random.uniform((3,)).numpy().tolist())
    config.set_seed(123)
    second = (random.random(), np.random.rand(), keras.random.uniform((3,)).numpy().tolist())
    assert first == second
    config.set_seed(124)
    assert (random.random(), np.random.rand()) != first[:2]


def test_the_reproducibility_switch_gives_identical_training_twice():
    from tensorflow.python.framework import config as tf_config

    def train_once(seed: int = 7) -> list[float]:
        config.set_seed(seed, deterministic=True)
        x = np.random.default_rng(0).normal(size=(64, 5)).astype("float32")
        y = (x[:, 0] > 0).astype("float32")
        model = keras.Sequential(
            [
                keras.Input((5,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dropout(0.3),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        return model.predict(x, verbose=0)[:, 0].tolist()

    try:
        first, second = train_once(), train_once()
        assert tf_config.is_op_determinism_enabled()
        assert first == second  # bit for bit, dropout and shuffling included
        assert train_once(8) != first  # and the seed matters: the comparison is not vacuous
    finally:
        config.set_seed(7)
    assert not tf_config.is_op_determinism_enabled()


def test_setup_prints_one_environment_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv(config.PROFILE_ENV, "smoke")
    monkeypatch.setenv("DL4H_DATA", str(tmp_path))
    config.setup("cpu")
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and line.startswith("profile smoke | ")
    assert f"TensorFlow {tf.__version__}" in line and str(tmp_path.resolve()) in line
    config.setup("cpu", quiet=True)
    assert capsys.readouterr().out == ""


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


def test_environment_report_names_every_gpu(monkeypatch):
    fake = [
        tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU"),
        tf.config.PhysicalDevice("/physical_device:GPU:1", "GPU"),
    ]
    names = {fake[0].name: "Tesla T4", fake[1].name: "NVIDIA A100"}
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: fake if kind == "GPU" else []
    )
    monkeypatch.setattr(
        tf.config.experimental,
        "get_device_details",
        lambda device: {"device_name": names[device.name]},
    )
    assert config.environment_report("gpu")["gpus"] == "Tesla T4, NVIDIA A100"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert config.environment_report("cpu")["gpus"] == "none"


def _probe(code: str, variable: str, value: str | None) -> str:
    """The last line ``code`` prints in a fresh Python, with ``variable`` set to ``value``
    (``None``: unset) and the rest of this process's environment."""
    env = {k: v for k, v in os.environ.items() if k != variable}
    if value is not None:
        env[variable] = value
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_the_graph_optimiser_switch_reaches_tensorflow_and_defaults_to_on():
    """``DL4H_GRAPH_OPTIMIZER=0`` (set by tests/conftest.py for what the tests start) turns
    Grappler off in a fresh process; without it, Grappler stays on (the course's setting)."""
    from tests.conftest import GRAPH_OPTIMIZER_ENV

    assert GRAPH_OPTIMIZER_ENV == config.GRAPH_OPTIMIZER_ENV
    assert os.environ.get(GRAPH_OPTIMIZER_ENV) == "0"  # what this suite's kernels inherit
    probe = (
        "from helpers import config\n"
        "import tensorflow as tf\n"
        "print(tf.config.optimizer.get_experimental_options().get('disable_meta_optimizer'))"
    )
    seen = {value: _probe(probe, GRAPH_OPTIMIZER_ENV, value) for value in ("0", None)}
    assert seen == {"0": "True", None: "False"}


def test_helpers_asks_for_onednn_before_tensorflow_starts_and_a_readers_choice_wins():
    """``import helpers`` sets ``TF_ENABLE_ONEDNN_OPTS=1`` unless it is set (TensorFlow reads
    it once, at start-up, and on CPUs without AVX-512 VNNI/BF16 or AMX would use its slower
    Eigen kernels); this process imported helpers first, so TensorFlow followed it."""
    probe = "import os, helpers; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"
    seen = {value: _probe(probe, "TF_ENABLE_ONEDNN_OPTS", value) for value in (None, "0")}
    assert seen == {None: "1", "0": "0"}
    assert config.onednn_enabled() == (os.environ["TF_ENABLE_ONEDNN_OPTS"] in {"1", "true"})
    assert config.environment_report("cpu")["onednn"] == config.onednn_enabled()
