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


# --------------------------------------------------------------------------- convolution
@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "c_in", "c_out"),
    [
        (9, 3, 1, "valid", 1, 1),
        (9, 3, 1, "same", 1, 2),
        (10, 3, 2, "same", 2, 3),  # odd total padding: the extra zero goes bottom/right
        (11, 5, 2, "valid", 3, 2),
        (8, 4, 3, "same", 1, 1),
    ],
)
def test_conv2d_matches_keras(size, kernel, stride, padding, c_in, c_out):
    import keras

    rng = np.random.default_rng(size + kernel + stride)
    image = rng.normal(size=(size, size + 1, c_in))
    weights = rng.normal(size=(kernel, kernel, c_in, c_out))
    bias = rng.normal(size=c_out)
    layer = keras.layers.Conv2D(c_out, kernel, strides=stride, padding=padding, dtype="float64")
    layer.build((1, size, size + 1, c_in))
    layer.set_weights([weights, bias])
    expected = np.asarray(layer(image[None]))[0]
    ours = nn.conv2d(image, weights, bias, stride=stride, padding=padding)
    assert ours.shape == expected.shape
    assert ours.shape[:2] == (
        nn.conv_output_size(size, kernel, stride, padding),
        nn.conv_output_size(size + 1, kernel, stride, padding),
    )
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)


def test_conv2d_by_hand_on_a_small_image():
    image = np.arange(16.0).reshape(4, 4)
    kernel = np.array([[1.0, 0.0], [0.0, -1.0]])  # top-left minus bottom-right
    out = nn.conv2d(image, kernel)
    assert out.shape == (3, 3, 1)
    assert np.all(out == -5.0)  # x[i, j] - x[i+1, j+1] = -(4 + 1) everywhere
    assert nn.conv2d(image, kernel, bias=[2.0], stride=2).shape == (2, 2, 1)


@pytest.mark.parametrize(
    ("size", "pool", "padding"), [(8, 2, "valid"), (7, 2, "same"), (9, 3, "valid")]
)
def test_max_pool2d_matches_keras(size, pool, padding):
    import keras

    image = np.random.default_rng(size).normal(size=(size, size, 2))
    expected = np.asarray(
        keras.layers.MaxPooling2D(pool, padding=padding, dtype="float64")(image[None])
    )[0]
    np.testing.assert_allclose(nn.max_pool2d(image, pool, padding=padding), expected)


def test_conv_output_size_and_receptive_field():
    assert nn.conv_output_size(28, 3) == 26
    assert nn.conv_output_size(28, 3, padding="same") == 28
    assert nn.conv_output_size(28, 3, stride=2, padding="same") == 14
    assert nn.conv_output_size(28, 2, stride=2) == 14
    assert nn.receptive_field([(3, 1)]) == 3
    assert nn.receptive_field([(3, 1), (3, 1)]) == 5
    # conv 3, pool 2, conv 3: the second conv's 3 positions are 2 input pixels apart
    assert nn.receptive_field([(3, 1), (2, 2), (3, 1)]) == 3 + 1 + 2 * 2
    assert nn.receptive_field([]) == 1


def test_receptive_field_matches_the_gradient_footprint():
    """The formula agrees with the input pixels that move a central output of Keras layers
    (average pooling: max pooling passes the gradient to one pixel per window only)."""
    import keras
    import tensorflow as tf

    stack = [(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)]
    layers = [
        keras.layers.Conv2D(1, k, padding="same", kernel_initializer="ones")
        if s == 1
        else keras.layers.AveragePooling2D(k)
        for k, s in stack
    ]
    net = keras.Sequential([keras.Input((32, 32, 1)), *layers])
    x = tf.Variable(np.random.default_rng(0).uniform(1, 2, size=(1, 32, 32, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        out = net(x)
        centre = out[0, out.shape[1] // 2, out.shape[2] // 2, 0]
    grad = np.asarray(tape.gradient(centre, x))[0, :, :, 0]
    rows, cols = np.nonzero(grad)
    assert rows.max() - rows.min() + 1 == nn.receptive_field(stack)
    assert cols.max() - cols.min() + 1 == nn.receptive_field(stack)


def test_convolution_rejects_bad_input():
    with pytest.raises(ValueError, match="input channel"):
        nn.conv2d(np.zeros((5, 5, 3)), np.zeros((3, 3, 1, 4)))
    with pytest.raises(ValueError, match="kernel must be"):
        nn.conv2d(np.zeros((5, 5)), np.zeros(3))
    with pytest.raises(ValueError, match="image must be"):
        nn.conv2d(np.zeros(5), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="does not fit"):
        nn.conv2d(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="unknown padding"):
        nn.conv_output_size(5, 3, padding="full")
    with pytest.raises(ValueError, match="bias"):
        nn.conv2d(np.zeros((5, 5)), np.zeros((3, 3)), bias=[1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        nn.receptive_field([(0, 1)])
