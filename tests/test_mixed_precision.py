"""Mixed precision is numerically safe: under the ``gpu`` profile's ``mixed_float16`` policy
every model builder of ``helpers`` gives float32 outputs (what losses and metrics read), and
a forward pass and the loss stay finite.

Float16 holds at most 65504 and about three decimal digits; a sigmoid, softmax or log-risk
computed in it rounds probabilities near 0 and 1 and can overflow in ``exp``. The builders
therefore compute their last layer in float32 (``dtype="float32"``), as the Keras mixed
precision guide recommends. The coverage test below makes a new builder fail until it is
listed here.
"""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

from helpers import ehr_models, gan, models, sequences, volumes


@pytest.fixture()
def mixed_policy():
    """The ``gpu`` profile's policy for one test, then float32 again."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _x(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


# builder name -> (build the model, make a batch of inputs, a loss on its outputs)
BUILDERS = {
    "models.seed_cnn": (lambda: models.seed_cnn((28, 28, 1)), lambda: _x((4, 28, 28, 1))),
    "models.improved_cnn": (
        lambda: models.improved_cnn((28, 28, 1), widths=(8, 16), seed=0),
        lambda: _x((4, 28, 28, 1)),
    ),
    "models.improved_cnn(3 classes)": (
        lambda: models.improved_cnn((28, 28, 3), 3, widths=(8, 16), seed=0),
        lambda: _x((4, 28, 28, 3)),
    ),
    "models.small_resnet(5 classes)": (
        lambda: models.small_resnet((28, 28, 3), 5, widths=(8, 16), seed=0),
        lambda: _x((4, 28, 28, 3)),
    ),
    "models.pretrained_backbone": (
        lambda: models.pretrained_backbone((32, 32, 1), weights=None, seed=0),
        lambda: _x((2, 32, 32, 1)),
    ),
    "gan.build_generator": (
        lambda: gan.build_generator(8, image_size=28, base_filters=8),
        lambda: _x((4, 8)),
    ),
    "gan.build_generator(conditional)": (
        lambda: gan.build_generator(8, 2, image_size=28, base_filters=8),
        lambda: [_x((4, 8)), np.array([0, 1, 0, 1])],
    ),
    "gan.build_discriminator": (
        lambda: gan.build_discriminator((28, 28, 1), base_filters=8),
        lambda: _x((4, 28, 28, 1)),
    ),
    "sequences.rnn_classifier": (
        lambda: sequences.rnn_classifier((20, 4), 3, cell="gru", units=8),
        lambda: _x((4, 20, 4)),
    ),
    "sequences.rnn_classifier(binary)": (
        lambda: sequences.rnn_classifier((20, 4), 2, cell="lstm", units=8, bidirectional=True),
        lambda: _x((4, 20, 4)),
    ),
    "sequences.conv_bilstm_classifier": (
        lambda: sequences.conv_bilstm_classifier((20, 4), 3, filters=8, units=8),
        lambda: _x((4, 20, 4)),
    ),
    "sequences.lstm_autoencoder": (
        lambda: sequences.lstm_autoencoder(20, units=8),
        lambda: _x((4, 20, 1)),
    ),
    "sequences.lstm_autoencoder(conv)": (
        lambda: sequences.lstm_autoencoder(20, units=8, conv_stages=2, filters=8),
        lambda: _x((4, 20, 1)),
    ),
    "volumes.volume_classifier(3D)": (
        lambda: volumes.volume_classifier((16, 16, 16, 1), widths=(4, 8), convs_per_block=(1, 1)),
        lambda: _x((2, 16, 16, 16, 1)),
    ),
    "volumes.volume_classifier(2D)": (
        lambda: volumes.volume_classifier((16, 16, 3), widths=(4, 8), convs_per_block=(1, 1)),
        lambda: _x((2, 16, 16, 3)),
    ),
    "volumes.unet(2D)": (
        lambda: volumes.unet((16, 16, 1), base=4, depth=2),
        lambda: _x((2, 16, 16, 1)),
    ),
    "volumes.unet(3D)": (
        lambda: volumes.unet((8, 16, 8, 1), base=4, depth=2),
        lambda: _x((2, 8, 16, 8, 1)),
    ),
    "ehr_models.mortality_model(gru)": (
        lambda: ehr_models.mortality_model(6, 3, 2, kind="gru", units=4),
        lambda: [_x((4, 6, 9)), _x((4, 2))],
    ),
    "ehr_models.mortality_model(grud)": (
        lambda: ehr_models.mortality_model(6, 3, 2, kind="grud", units=4),
        lambda: [_x((4, 6, 9)), _x((4, 2))],
    ),
    "ehr_models.mortality_model(mask)": (
        lambda: ehr_models.mortality_model(6, 3, 2, kind="mask", units=4),
        lambda: [_x((4, 6, 9)), _x((4, 2))],
    ),
    "ehr_models.cox_model": (
        lambda: ehr_models.cox_model(5, hidden=(8,)),
        lambda: _x((6, 5)),
    ),
}

# Functions that return a model but build no new layers of their own, or train one.
NOT_BUILDERS = {
    "models.compile_model",  # compiles the model it is given
    "models.build_optimizer",  # builds the optimizer of the model it is given
    "models.reference_classifier",  # trains improved_cnn (covered above)
    "models.chest_augmentation",  # preprocessing layers only, no output layer
}


def test_every_model_builder_is_checked():
    """A public function of helpers that returns a Keras model is listed in BUILDERS."""
    listed = {name.split("(")[0] for name in BUILDERS} | NOT_BUILDERS
    found = set()
    for module in (models, gan, sequences, volumes, ehr_models):
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or function.__module__ != module.__name__:
                continue
            returns = str(inspect.signature(function).return_annotation)
            if "Model" in returns:
                found.add(f"{module.__name__.split('.')[-1]}.{name}")
    missing = sorted(found - listed)
    assert not missing, f"model builders without a mixed-precision check: {missing}"


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_outputs_are_float32_under_mixed_precision(name, mixed_policy):
    build, batch = BUILDERS[name]
    keras.utils.set_random_seed(0)
    model = build()
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    dtypes = [str(getattr(t, "dtype", "")) for t in model.outputs]
    assert all("float32" in d for d in dtypes), f"{name}: outputs {dtypes}, expected float32"
    out = model(batch(), training=False)
    for tensor in out if isinstance(out, (list, tuple)) else [out]:
        value = keras.ops.convert_to_numpy(tensor)
        assert value.dtype == np.float32, f"{name}: a forward pass gives {value.dtype}"
        assert np.isfinite(value).all(), f"{name}: non-finite outputs under mixed precision"


def test_cox_loss_is_float32_and_finite_on_float16_log_risks():
    """The neural Cox loss exponentiates log-risks: it must compute in float32."""
    rng = np.random.default_rng(0)
    y = np.stack([rng.random(64) * 100, rng.integers(0, 2, 64)], axis=1).astype(np.float32)
    log_risk = keras.ops.convert_to_tensor((rng.normal(size=(64, 1)) * 20).astype(np.float16))
    loss = keras.ops.convert_to_numpy(ehr_models.cox_loss(y, log_risk))
    assert loss.dtype == np.float32 and np.isfinite(loss)


def test_the_gpu_path_check_would_fail_on_a_float16_output(mixed_policy):
    """The dtype check above can fail: a sigmoid output without dtype= is float16."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    assert "float16" in str(model.outputs[0].dtype)
