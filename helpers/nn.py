"""A small fully connected network and a 2D convolution written from scratch in NumPy.

The network is checked two ways: against a finite-difference (numerical) gradient, and
against the same network built in Keras whose gradients TensorFlow computes with
``tf.GradientTape``. Everything runs in float64 so the checks can be tight.

Notation: ``a0 = X``; for each layer ``z_l = a_{l-1} W_l + b_l``; hidden layers apply the
activation, ``a_l = f(z_l)``; the last layer is linear (``z_L`` are the outputs, or logits
for the ``"bce"`` loss).

The convolution (:func:`conv2d`, :func:`max_pool2d`, :func:`conv_output_size`,
:func:`receptive_field`) follows Keras' conventions: channels last, cross-correlation (the
kernel is not flipped), ``"same"`` padding that puts the extra row or column at the bottom
and right when the total padding is odd.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.special import erf

Array = np.ndarray


# --------------------------------------------------------------------------- activations
def sigmoid(z: Array) -> Array:
    """Logistic function ``1 / (1 + exp(-z))``, computed without overflow."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    e = np.exp(z[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def _gelu(z: Array) -> Array:
    return 0.5 * z * (1.0 + erf(z / np.sqrt(2.0)))


def _gelu_grad(z: Array) -> Array:
    return 0.5 * (1.0 + erf(z / np.sqrt(2.0))) + z * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)


ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "sigmoid": (sigmoid, lambda z: sigmoid(z) * (1.0 - sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(np.float64)),
    "silu": (lambda z: z * sigmoid(z), lambda z: sigmoid(z) * (1.0 + z * (1.0 - sigmoid(z)))),
    "gelu": (_gelu, _gelu_grad),
}
"""Activation name -> (function, derivative). Names match Keras' (``gelu`` is the exact,
erf-based form, Keras' default)."""


def get_activation(name: str) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    """Return ``(f, f')`` for an activation name; unknown names raise ``ValueError``."""
    key = str(name).strip().lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key]


LOSSES = ("mse", "bce")


# --------------------------------------------------------------------------- the network
class MLP:
    """A multilayer perceptron with a hidden activation and a linear output layer.

    ``sizes`` lists the layer widths, inputs first: ``MLP([10, 16, 1])`` has 10 inputs, one
    hidden layer of 16 units and one output. ``loss`` is ``"mse"`` (regression, mean over
    samples and outputs) or ``"bce"`` (binary cross-entropy on logits). ``l2`` adds
    ``l2 * sum(W**2)`` over the weight matrices (not the biases), as Keras' ``L2``
    regulariser does. Weights start from Glorot (``init="glorot"``) or He (``"he"``) normal
    draws with seed ``seed``; biases start at zero. Parameters are float64 arrays in
    ``self.params`` in the order ``[W1, b1, W2, b2, ...]``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "tanh",
        *,
        loss: str = "mse",
        l2: float = 0.0,
        init: str = "glorot",
        seed: int = 0,
    ) -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least two positive layer widths, got {sizes}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        if init not in ("glorot", "he"):
            raise ValueError(f"unknown init {init!r}; choose 'glorot' or 'he'")
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, not {l2}")
        self.sizes = sizes
        self.activation_name = activation
        self.f, self.df = get_activation(activation)
        self.loss_name = loss
        self.l2 = float(l2)
        rng = np.random.default_rng(seed)
        self.params: list[Array] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            var = 2.0 / (fan_in + fan_out) if init == "glorot" else 2.0 / fan_in
            self.params.append(rng.normal(0.0, np.sqrt(var), size=(fan_in, fan_out)))
            self.params.append(np.zeros(fan_out))

    @property
    def n_layers(self) -> int:
        """Number of weight layers (hidden layers + the output layer)."""
        return len(self.params) // 2

    def _check_x(self, X: Any) -> Array:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"X must have shape (n, {self.sizes[0]}), got {X.shape}")
        return X

    def _check_y(self, y: Any, n: int) -> Array:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1 and self.sizes[-1] == 1:
            y = y[:, None]
        if y.shape != (n, self.sizes[-1]):
            raise ValueError(f"y must have shape ({n}, {self.sizes[-1]}) to match X, got {y.shape}")
        return y

    def forward(self, X: Any, return_cache: bool = False) -> Array | tuple[Array, list[Array]]:
        """Outputs (logits for ``"bce"``) of shape ``(n, sizes[-1])``.

        With ``return_cache=True`` also returns the pre-activations ``[z_1, ..., z_L]``
        that backpropagation needs (the activations are recomputed from them).
        """
        a = self._check_x(X)
        zs = []
        for layer in range(self.n_layers):
            z = a @ self.params[2 * layer] + self.params[2 * layer + 1]
            zs.append(z)
            a = self.f(z) if layer < self.n_layers - 1 else z
        return (a, zs) if return_cache else a

    def predict(self, X: Any) -> Array:
        """Predictions: the outputs for ``"mse"``, probabilities of class 1 for ``"bce"``."""
        out = self.forward(X)
        return sigmoid(out) if self.loss_name == "bce" else out

    def _data_loss(self, out: Array, y: Array) -> tuple[float, Array]:
        """Loss without the penalty, and its gradient with respect to the outputs."""
        if self.loss_name == "mse":
            diff = out - y
            return float(np.mean(diff**2)), 2.0 * diff / diff.size
        # binary cross-entropy on logits, stable form: max(z,0) - z*y + log(1 + exp(-|z|))
        losses = np.maximum(out, 0) - out * y + np.log1p(np.exp(-np.abs(out)))
        return float(np.mean(losses)), (sigmoid(out) - y) / out.size

    def penalty(self) -> float:
        """The weight-decay term ``l2 * sum of squared weights``."""
        return self.l2 * float(sum(np.sum(w**2) for w in self.params[0::2]))

    def loss(self, X: Any, y: Any) -> float:
        """Mean loss on ``(X, y)`` plus the L2 penalty."""
        X = self._check_x(X)
        value, _ = self._data_loss(self.forward(X), self._check_y(y, len(X)))
        return value + self.penalty()

    def gradients(self, X: Any, y: Any) -> tuple[float, list[Array]]:
        """Loss and its gradient for every parameter, by backpropagation.

        The gradients come back in the order of ``self.params``. Backpropagation applies
        the chain rule layer by layer from the output: ``delta_L = dLoss/dz_L``,
        ``dW_l = a_{l-1}^T delta_l``, ``db_l = sum_rows(delta_l)`` and
        ``delta_{l-1} = (delta_l W_l^T) * f'(z_{l-1})``.
        """
        X = self._check_x(X)
        y = self._check_y(y, len(X))
        out, zs = self.forward(X, return_cache=True)
        value, delta = self._data_loss(out, y)
        grads: list[Array] = [np.empty(0)] * len(self.params)
        for layer in reversed(range(self.n_layers)):
            a_prev = X if layer == 0 else self.f(zs[layer - 1])
            w = self.params[2 * layer]
            grads[2 * layer] = a_prev.T @ delta + 2.0 * self.l2 * w
            grads[2 * layer + 1] = delta.sum(axis=0)
            if layer > 0:
                delta = (delta @ w.T) * self.df(zs[layer - 1])
        return value + self.penalty(), grads

    def to_keras(self) -> Any:
        """The same network as a float64 ``keras.Sequential`` holding copies of the weights."""
        import keras

        layers: list[Any] = [keras.Input(shape=(self.sizes[0],), dtype="float64")]
        for layer in range(self.n_layers):
            last = layer == self.n_layers - 1
            layers.append(
                keras.layers.Dense(
                    self.sizes[layer + 1],
                    activation=None if last else self.activation_name,
                    kernel_regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
                    dtype="float64",
                )
            )
        model = keras.Sequential(layers)
        model.set_weights([p.copy() for p in self.params])
        return model


# --------------------------------------------------------------------------- checks
def numerical_gradient(
    fun: Callable[[], float], params: Sequence[Array], eps: float = 1e-6
) -> list[Array]:
    """Central-difference gradient of ``fun()`` with respect to each array in ``params``.

    Each entry is nudged by ``+eps`` and ``-eps`` in place (and restored), so ``fun`` must
    read the same arrays, e.g. ``lambda: model.loss(X, y)`` with ``model.params``. Costs
    two calls of ``fun`` per parameter: use it on small networks only.
    """
    if eps <= 0:
        raise ValueError(f"eps must be positive, not {eps}")
    grads = []
    for p in params:
        g = np.zeros_like(p, dtype=np.float64)
        for idx in np.ndindex(p.shape):
            saved = p[idx]
            p[idx] = saved + eps
            up = fun()
            p[idx] = saved - eps
            down = fun()
            p[idx] = saved
            g[idx] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def relative_error(a: Any, b: Any) -> float:
    """``||a - b|| / max(||a|| + ||b||, 1e-300)``: 0 for equal arrays, 1 for opposite ones."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def gradient_check(model: MLP, X: Any, y: Any, eps: float = 1e-6) -> float:
    """Largest relative error between backpropagation and the numerical gradient.

    Values around ``1e-8`` or below mean the backward pass is right; ``1e-3`` or above
    means a bug (or a kink of ReLU hit exactly by a nudge).
    """
    _, analytic = model.gradients(X, y)
    numeric = numerical_gradient(lambda: model.loss(X, y), model.params, eps)
    return max(relative_error(a, n) for a, n in zip(analytic, numeric, strict=True))


def keras_gradients(model: MLP, X: Any, y: Any) -> tuple[float, list[Array]]:
    """Loss and gradients of ``model.to_keras()`` computed by ``tf.GradientTape``.

    Uses Keras' own loss (``MeanSquaredError`` or ``BinaryCrossentropy(from_logits=True)``)
    plus the layers' regularisation losses, so it is an independent check of
    :meth:`MLP.gradients`.
    """
    import keras
    import tensorflow as tf

    X = model._check_x(X)
    y = model._check_y(y, len(X))
    net = model.to_keras()
    loss_fn = (
        keras.losses.MeanSquaredError(dtype="float64")
        if model.loss_name == "mse"
        else keras.losses.BinaryCrossentropy(from_logits=True, dtype="float64")
    )
    with tf.GradientTape() as tape:
        out = net(tf.constant(X), training=True)
        value = loss_fn(tf.constant(y), out)
        if net.losses:
            value = value + tf.add_n(net.losses)
    grads = tape.gradient(value, net.trainable_weights)
    return float(value), [np.asarray(g, dtype=np.float64) for g in grads]


# --------------------------------------------------------------------------- convolution
PADDINGS = ("valid", "same")


def conv_output_size(n: int, kernel: int, stride: int = 1, padding: str = "valid") -> int:
    """Length of a convolution's or pooling's output along one axis of length ``n``.

    ``"valid"`` (no padding): ``floor((n - kernel) / stride) + 1``; ``"same"``: zeros are
    added so that the output has ``ceil(n / stride)`` positions, whatever the kernel.
    """
    for name, value in (("n", n), ("kernel", kernel), ("stride", stride)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    if padding == "valid":
        if kernel > n:
            raise ValueError(f"a kernel of {kernel} does not fit in {n} pixels without padding")
        return (n - kernel) // stride + 1
    if padding == "same":
        return -(-n // stride)
    raise ValueError(f"unknown padding {padding!r}; choose one of {', '.join(PADDINGS)}")


def _same_padding(n: int, kernel: int, stride: int) -> tuple[int, int]:
    """Zeros before and after an axis for ``"same"`` padding (the extra one goes after)."""
    out = -(-n // stride)
    total = max((out - 1) * stride + kernel - n, 0)
    return total // 2, total - total // 2


def _windows(x: Array, size: tuple[int, int], stride: int, padding: str, fill: float) -> Array:
    """All ``size`` windows of ``x`` (H, W, C) as an array (out_h, out_w, kh, kw, C)."""
    kh, kw = size
    out_h = conv_output_size(x.shape[0], kh, stride, padding)
    out_w = conv_output_size(x.shape[1], kw, stride, padding)
    if padding == "same":
        x = np.pad(
            x,
            (_same_padding(x.shape[0], kh, stride), _same_padding(x.shape[1], kw, stride), (0, 0)),
            constant_values=fill,
        )
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))
    # sliding_window_view puts the window axes last: (H', W', C, kh, kw)
    windows = windows[: (out_h - 1) * stride + 1 : stride, : (out_w - 1) * stride + 1 : stride]
    return np.moveaxis(windows, 2, -1)


def _as_image(x: Any, name: str = "image") -> Array:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(
            f"{name} must be (height, width) or (height, width, channels), not {x.shape}"
        )
    return x


def conv2d(
    image: Any,
    kernel: Any,
    bias: Any = None,
    stride: int = 1,
    padding: str = "valid",
) -> Array:
    """A 2D convolution layer's output for one image, by explicit multiply-and-add.

    ``image`` is (H, W) or (H, W, C_in); ``kernel`` is (kh, kw) or (kh, kw, C_in, C_out), the
    layout of a Keras ``Conv2D`` kernel; ``bias`` has C_out values (default zeros). Each
    output value is the sum over a kh x kw x C_in window of window times kernel, plus the
    bias: deep-learning libraries call this cross-correlation a convolution (the kernel is
    not flipped). Returns (H', W', C_out) with H', W' from :func:`conv_output_size`.
    """
    x = _as_image(image)
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim == 2:
        k = k[:, :, None, None]
    if k.ndim != 4 or 0 in k.shape:
        raise ValueError(f"kernel must be (kh, kw) or (kh, kw, C_in, C_out), not {k.shape}")
    if k.shape[2] != x.shape[2]:
        raise ValueError(
            f"the kernel expects {k.shape[2]} input channel(s) but the image has {x.shape[2]}"
        )
    b = np.zeros(k.shape[3]) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    if b.shape != (k.shape[3],):
        raise ValueError(f"bias must have {k.shape[3]} values (one per filter), not {b.size}")
    windows = _windows(x, k.shape[:2], int(stride), padding, 0.0)
    return np.einsum("hwijc,ijco->hwo", windows, k) + b


def max_pool2d(
    image: Any, size: int = 2, stride: int | None = None, padding: str = "valid"
) -> Array:
    """Max pooling of (H, W) or (H, W, C): the largest value of each ``size`` x ``size``
    window, channel by channel (``stride`` defaults to ``size``, as in Keras)."""
    x = _as_image(image)
    windows = _windows(x, (size, size), int(stride or size), padding, -np.inf)
    return windows.max(axis=(2, 3))


def receptive_field(layers: Sequence[tuple[int, int]]) -> int:
    """Side, in input pixels, of the window one output unit sees after a stack of layers.

    ``layers`` lists (kernel, stride) per layer, input first: a 3 x 3 convolution is
    ``(3, 1)``, a 2 x 2 max pooling ``(2, 2)``. Each layer widens the field by
    ``(kernel - 1)`` times the product of the strides before it (the "jump").
    """
    size, jump = 1, 1
    for kernel, stride in layers:
        if kernel < 1 or stride < 1:
            raise ValueError(f"kernel and stride must be positive, not ({kernel}, {stride})")
        size += (kernel - 1) * jump
        jump *= stride
    return size


__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "MLP",
    "PADDINGS",
    "conv2d",
    "conv_output_size",
    "get_activation",
    "gradient_check",
    "keras_gradients",
    "max_pool2d",
    "numerical_gradient",
    "receptive_field",
    "relative_error",
    "sigmoid",
]
