"""helpers.nn: the NumPy MLP's forward pass, backpropagation, numerical gradient check,
and agreement with the same network in Keras / tf.GradientTape."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import config, nn  # noqa: F401  (config imports TensorFlow quietly)


@pytest.fixture()
def batch():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 5))
    y = rng.normal(size=(12, 1))
    return X, y


@pytest.mark.parametrize("name", list(nn.ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name):
    f, df = nn.get_activation(name)
    z = np.linspace(-4, 4, 81) + 0.013  # avoid ReLU's kink at exactly 0
    eps = 1e-6
    numeric = (f(z + eps) - f(z - eps)) / (2 * eps)
    np.testing.assert_allclose(df(z), numeric, rtol=1e-6, atol=1e-8)


def test_activation_values_and_keras_names():
    import keras

    z = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    assert nn.sigmoid(np.array([0.0]))[0] == 0.5
    assert nn.sigmoid(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]  # no overflow
    for name, (f, _) in nn.ACTIVATIONS.items():
        expected = np.asarray(keras.activations.get(name)(z.astype("float64")))
        np.testing.assert_allclose(f(z), expected, rtol=1e-6, atol=1e-12, err_msg=name)


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        nn.get_activation("swishy")


def test_forward_matches_a_hand_computation():
    model = nn.MLP([2, 2, 1], activation="relu")
    model.params = [
        np.array([[1.0, -1.0], [2.0, 0.5]]),
        np.array([0.0, 1.0]),
        np.array([[3.0], [-2.0]]),
        np.array([0.5]),
    ]
    # x = (1, 1): z1 = (3, 0.5), a1 = (3, 0.5), out = 9 - 1 + 0.5 = 8.5
    # x = (1, -1): z1 = (-1, -0.5), a1 = (0, 0), out = 0.5
    out = model.forward(np.array([[1.0, 1.0], [1.0, -1.0]]))
    np.testing.assert_allclose(out, [[8.5], [0.5]])
    assert model.loss(np.array([[1.0, 1.0], [1.0, -1.0]]), [8.0, 1.5]) == pytest.approx(
        (0.25 + 1) / 2
    )


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "silu", "gelu", "relu"])
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_backprop_matches_numerical_gradient(batch, activation, loss):
    X, y = batch
    if loss == "bce":
        y = (y > 0).astype(float)
    model = nn.MLP([5, 7, 4, 1], activation=activation, loss=loss, l2=0.01, seed=3)
    assert model.n_layers == 3
    assert nn.gradient_check(model, X, y) < 1e-6


def test_gradient_check_catches_a_wrong_backward_pass(batch):
    X, y = batch
    model = nn.MLP([5, 6, 1], activation="tanh", seed=0)
    model.df = nn.get_activation("sigmoid")[1]  # the wrong derivative
    assert nn.gradient_check(model, X, y) > 1e-2


def test_numpy_and_keras_give_the_same_loss_and_gradients(batch):
    X, y = batch
    for loss, target in (("mse", y), ("bce", (y > 0).astype(float))):
        model = nn.MLP([5, 8, 3, 1], activation="tanh", loss=loss, l2=1e-3, seed=5)
        value, grads = model.gradients(X, target)
        k_value, k_grads = nn.keras_gradients(model, X, target)
        assert value == pytest.approx(k_value, rel=1e-8)
        assert len(grads) == len(k_grads) == 6
        for g, k in zip(grads, k_grads, strict=True):
            assert nn.relative_error(g, k) < 1e-8
        net = model.to_keras()
        np.testing.assert_allclose(np.asarray(net(X)), model.forward(X), rtol=1e-12)


def test_one_sgd_step_lowers_the_loss(batch):
    X, y = batch
    model = nn.MLP([5, 8, 1], activation="relu", init="he", seed=0)
    before, grads = model.gradients(X, y)
    for p, g in zip(model.params, grads, strict=True):
        p -= 0.01 * g
    assert model.loss(X, y) < before


def test_l2_penalty_is_added_to_the_loss(batch):
    X, y = batch
    plain = nn.MLP([5, 4, 1], seed=2)
    decayed = nn.MLP([5, 4, 1], l2=0.1, seed=2)
    expected = 0.1 * sum(np.sum(w**2) for w in plain.params[0::2])
    assert decayed.loss(X, y) - plain.loss(X, y) == pytest.approx(expected)


def test_bce_predict_returns_probabilities(batch):
    X, _ = batch
    probs = nn.MLP([5, 3, 1], loss="bce", seed=0).predict(X * 100)
    assert probs.shape == (12, 1) and np.all((probs >= 0) & (probs <= 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sizes": [5]}, "at least two positive layer widths"),
        ({"sizes": [5, 0, 1]}, "at least two positive layer widths"),
        ({"sizes": [5, 1], "loss": "hinge"}, "unknown loss 'hinge'"),
        ({"sizes": [5, 1], "init": "zeros"}, "unknown init 'zeros'"),
        ({"sizes": [5, 1], "l2": -1.0}, "l2 must be >= 0"),
    ],
)
def test_bad_construction_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.MLP(**kwargs)


def test_bad_shapes_are_named(batch):
    X, y = batch
    model = nn.MLP([5, 4, 1])
    with pytest.raises(ValueError, match=r"X must have shape \(n, 5\), got \(12, 4\)"):
        model.forward(X[:, :4])
    with pytest.raises(ValueError, match=r"X must have shape \(n, 5\), got \(5,\)"):
        model.forward(X[0])
    with pytest.raises(ValueError, match=r"y must have shape \(12, 1\) to match X, got \(11, 1\)"):
        model.gradients(X, y[:11])
    with pytest.raises(ValueError, match="cannot compare arrays of shapes"):
        nn.relative_error(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="eps must be positive"):
        nn.numerical_gradient(lambda: 0.0, model.params, eps=0)


def test_relative_error_scale():
    assert nn.relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert nn.relative_error([1.0], [-1.0]) == pytest.approx(1.0)
    assert nn.relative_error([0.0], [0.0]) == 0.0
