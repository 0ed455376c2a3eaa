"""Profiles, seeds, device set-up and the environment report.

Every notebook resolves its run profile here. A profile is a named set of knobs that
decides how much work a notebook does:

* ``smoke``: seconds on a 2-core CPU, tiny subsets, 1-2 epochs (used by the tests);
* ``cpu``: the real course on a laptop (28 px images, minutes per notebook);
* ``gpu``: full resolution on Colab or a workstation GPU.

``auto`` picks ``gpu`` when TensorFlow sees a GPU and ``cpu`` otherwise; the environment
variable ``DL4H_PROFILE`` overrides whatever the notebook asked for, which is how the test
suite forces ``smoke`` on every notebook.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

# TensorFlow's C++ start-up messages ("could not find cuda drivers", "oneDNN custom
# operations", a cuInit error on machines without a GPU) would otherwise land in every
# notebook's output. Set TF_CPP_MIN_LOG_LEVEL=0 before importing helpers to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_tensorflow_quietly() -> Any:
    """Import TensorFlow with the OS-level stderr silenced for the import only.

    Some messages are written before TensorFlow configures its logging, so no environment
    variable silences them. Python exceptions raised by the import still propagate.
    """
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] in {"0", "1"}:
        import tensorflow

        return tensorflow
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow


_tf = _import_tensorflow_quietly()

# ``DL4H_GRAPH_OPTIMIZER=0`` switches off TensorFlow's graph optimiser (Grappler) in this
# process. The test suite sets it for the kernels and programs it starts (tests/conftest.py):
# they train small models for a step or two, where rewriting each freshly traced graph is a
# good part of the time (13-14 % less CPU time for four gpu-path notebook tests on 2 cores).
# The course and the benchmarks keep it on: their numbers were made with it, and it changes
# them in the third decimal (other fused kernels), while chapter 04's `cpu` run took 297 s
# either way.
GRAPH_OPTIMIZER_ENV = "DL4H_GRAPH_OPTIMIZER"
if os.environ.get(GRAPH_OPTIMIZER_ENV, "").strip().lower() in {"0", "off", "false", "no"}:
    _tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

PROFILE_ENV = "DL4H_PROFILE"
MIXED_PRECISION_ENV = "DL4H_MIXED_PRECISION"
PROFILE_NAMES = ("smoke", "cpu", "gpu")
DEFAULT_SEED = 42
_UNSET: Any = object()  # "no value given" for Settings.pick (None is a valid value)


@dataclass(frozen=True)
class Settings:
    """The resolved knobs of one run.

    ``profile`` is one of :data:`PROFILE_NAMES`; the other fields are the knobs shared by
    most notebooks. ``n_train=None`` means "the whole training split". Notebook-specific
    knobs are resolved with :meth:`pick`.
    """

    profile: str
    epochs: int
    img_size: int
    n_train: int | None
    batch_size: int
    seed: int = DEFAULT_SEED

    def pick(
        self,
        value: Any = None,
        default: Any = _UNSET,
        *,
        smoke: Any = _UNSET,
        cpu: Any = _UNSET,
        gpu: Any = _UNSET,
    ) -> Any:
        """Return ``value`` if it is not ``None``, else this profile's choice, else ``default``.

        Notebooks and benchmarks resolve their own knobs with it, e.g.
        ``N_BOOT = S.pick(N_BOOT, smoke=50, cpu=1000, gpu=2000)`` or
        ``UNITS = S.pick(UNITS, 32, smoke=8)`` (one default, one exception). ``None`` is a
        valid choice (e.g. "the whole training split"). With neither a choice for this
        profile nor a default it raises ``TypeError``.
        """
        if value is not None:
            return value
        choice = {"smoke": smoke, "cpu": cpu, "gpu": gpu}[self.profile]
        if choice is _UNSET:
            choice = default
        if choice is _UNSET:
            raise TypeError(
                f"no value for profile {self.profile!r}: pass {self.profile}=... or a default"
            )
        return choice


PROFILES: dict[str, Settings] = {
    "smoke": Settings("smoke", epochs=1, img_size=28, n_train=256, batch_size=64),
    "cpu": Settings("cpu", epochs=10, img_size=28, n_train=None, batch_size=64),
    "gpu": Settings("gpu", epochs=30, img_size=224, n_train=None, batch_size=128),
}


def gpu_available() -> bool:
    """Return True when TensorFlow can see at least one GPU."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def resolve_profile(profile: str = "auto") -> str:
    """Turn the requested profile into one of ``smoke``, ``cpu`` or ``gpu``.

    The environment variable ``DL4H_PROFILE``, when set, wins over ``profile``. ``auto``
    becomes ``gpu`` if a GPU is visible and ``cpu`` otherwise. Any other name raises
    ``ValueError`` listing the valid ones.
    """
    requested = os.environ.get(PROFILE_ENV) or profile
    requested = requested.strip().lower()
    if requested == "auto":
        return "gpu" if gpu_available() else "cpu"
    if requested not in PROFILES:
        raise ValueError(
            f"unknown profile {requested!r}; choose one of {', '.join(PROFILE_NAMES)} or 'auto'"
            f" (set in the notebook's parameters cell or with {PROFILE_ENV})"
        )
    return requested


def get_settings(profile: str = "auto", seed: int = DEFAULT_SEED, **overrides: Any) -> Settings:
    """Resolve ``profile`` and return its :class:`Settings`, with overrides applied.

    Overrides are the knobs of :class:`Settings` in lower or upper case (``EPOCHS=3`` or
    ``epochs=3``); an override left at ``None`` keeps the profile's value, so a notebook can
    pass its parameters cell straight through. An unknown knob raises ``TypeError``.
    """
    base = PROFILES[resolve_profile(profile)]
    fields = set(Settings.__dataclass_fields__) - {"profile"}
    changes: dict[str, Any] = {"seed": seed}
    for key, value in overrides.items():
        name = key.lower()
        if name not in fields:
            raise TypeError(f"unknown knob {key!r}; known knobs: {', '.join(sorted(fields))}")
        if value is not None:
            changes[name] = value
    return replace(base, **changes)


def set_seed(seed: int = DEFAULT_SEED, *, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy and Keras/TensorFlow with one number.

    Call it once at the top of a notebook (``setup`` does) and again before any cell whose
    result should not depend on what ran before it. ``deterministic=True`` also switches on
    TensorFlow's op determinism, so the same seed on the same machine gives the same numbers
    bit for bit, also on a GPU, at some cost in speed (some GPU kernels have no
    deterministic version and then raise an error naming the op); ``False`` switches it off
    again. Across machines results still differ slightly: other CPUs and GPUs, other thread
    counts and library versions add floating-point numbers in another order.
    """
    import keras
    import numpy as np
    from tensorflow.python.framework import config as tf_config

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf_config.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


def setup_devices(profile: str, mixed_precision: bool | None = None) -> Any:
    """Prepare the accelerators and return a ``tf.distribute`` strategy.

    On every visible GPU memory growth is enabled (so one notebook does not grab the whole
    card). Mixed precision (``mixed_float16``) is switched on for the ``gpu`` profile when a
    GPU exists, unless ``mixed_precision`` or the environment variable
    ``DL4H_MIXED_PRECISION`` (``1``/``0``) says otherwise; the gpu-path tests set it to run
    the ``gpu`` profile's float16 code on a CPU. With more than one GPU the strategy is
    ``MirroredStrategy``; otherwise it is the default (no-op) strategy, so
    ``with strategy.scope():`` works everywhere. The chapters build their models outside any
    scope, so they train on one device (as on Colab); the strategy is for readers who want
    several GPUs.
    """
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth can no longer be changed
            pass
    if mixed_precision is None:
        forced = os.environ.get(MIXED_PRECISION_ENV, "").strip().lower()
        if forced in {"1", "true", "yes"}:
            mixed_precision = True
        elif forced in {"0", "false", "no"}:
            mixed_precision = False
    use_mixed = (bool(gpus) and profile == "gpu") if mixed_precision is None else mixed_precision
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def setup(
    profile: str = "auto",
    seed: int = DEFAULT_SEED,
    *,
    deterministic: bool = False,
    quiet: bool = False,
    **overrides: Any,
) -> Settings:
    """Do what every notebook does first: resolve the profile, seed, set up devices.

    Returns the :class:`Settings` (see :func:`get_settings` for ``overrides``) and prints
    one line with the profile, the device, the main library versions and the data root, so
    every executed notebook records what it ran on (``quiet=True`` skips it). The
    distribution strategy is available afterwards from ``tf.distribute.get_strategy()``
    inside ``with setup_devices(...).scope()`` for multi-GPU work.
    """
    settings = get_settings(profile, seed=seed, **overrides)
    set_seed(settings.seed, deterministic=deterministic)
    setup_devices(settings.profile)
    if not quiet:
        print(environment_line(settings.profile))
    return settings


def environment_line(profile: str) -> str:
    """One line: profile, device, precision policy, library versions and the data root."""
    import keras
    import tensorflow as tf

    from . import data

    gpus = tf.config.list_physical_devices("GPU")
    device = f"{len(gpus)} GPU(s)" if gpus else f"CPU ({os.cpu_count()} cores)"
    return (
        f"profile {profile} | {device}, {keras.mixed_precision.global_policy().name} | Python {sys.version.split()[0]}, TensorFlow "
        f"{_version('tensorflow')}, Keras {_version('keras')}, NumPy {_version('numpy')} | "
        f"data root {data.data_root()}"
    )


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its CPU operations with oneDNN kernels in this process
    (``helpers`` asks for them unless ``TF_ENABLE_ONEDNN_OPTS`` says otherwise); ``None``
    where this TensorFlow does not say (the answer comes from a private module)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report(profile: str | None = None) -> dict[str, Any]:
    """Collect what a reader needs to reproduce a run, as a flat dictionary.

    Python, platform and package versions; CPUs and GPUs TensorFlow sees; the resolved
    profile; the data root and whether the offline datasets are present there. Notebook 00
    prints it; benchmarks store it in their JSON reports.
    """
    import tensorflow as tf

    from . import data

    gpus = tf.config.list_physical_devices("GPU")
    gpu_names = []
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        gpu_names.append(details.get("device_name", gpu.name))
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "gpus": ", ".join(gpu_names) if gpu_names else "none",
        "profile": profile if profile is not None else resolve_profile("auto"),
        "data_root": str(data.data_root()),
    }
    for package in (
        "numpy",
        "pandas",
        "scikit-learn",
        "tensorflow",
        "keras",
        "pydicom",
        "pooch",
        "matplotlib",
        "seaborn",
    ):
        report[package] = _version(package)
    report["mixed_precision_policy"] = __import__("keras").mixed_precision.global_policy().name
    report["onednn"] = onednn_enabled()
    report["datasets_cached"] = ", ".join(data.cached_datasets()) or "none"
    return report
