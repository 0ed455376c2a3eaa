"""Keras parts of chapter 08: a GRU-D layer, recurrent mortality models and the Cox loss.

* :class:`GRUDCell` is the GRU with trainable decays of Che et al. (2018): a missing input
  decays from its last observed value toward the (training) mean as the gap since it was
  seen grows, and the hidden state decays over the same gaps.
* :func:`mortality_model` builds a GRU (values + mask + time gaps) or a GRU-D over the
  48 hourly steps, with the static descriptors joined at every step; it outputs a risk at
  *every* hour, so one model gives both the 48-hour prediction and the course of a stay.
* :func:`cox_loss` is the negative Cox partial log-likelihood (Breslow's handling of ties)
  that DeepSurv (Katzman et al. 2018) minimises; :func:`cox_model` is a small MLP for it.

Inputs of the recurrent models: one array (n, T, 3D) holding the standardised values
(0 where missing, i.e. the training mean), the mask and the hours since each variable was
last seen, side by side, and the static array (n, S).
"""

from __future__ import annotations

from typing import Any

# helpers.config imports TensorFlow with its start-up messages silenced: it must come first.
from . import config  # noqa: F401

# isort: split
import keras  # noqa: E402
from keras import ops  # noqa: E402

from .models import build_optimizer  # noqa: E402


@keras.saving.register_keras_serializable(package="dl4h")
class GRUDCell(keras.layers.Layer):
    """One step of GRU-D (Che et al. 2018) for ``n_features`` variables.

    Each step's input is ``[x, m, delta]`` (3 x ``n_features``): standardised values (the
    mean is 0), the mask and the hours since the variable was last seen. The state is the
    hidden vector and the last observed value of each variable. With
    ``gamma_x = exp(-relu(w_x * delta + b_x))`` (one decay per variable) the input is
    ``m * x + (1 - m) * gamma_x * x_last``: just after a measurement the last value, long
    after it the mean. The hidden state is multiplied by
    ``gamma_h = exp(-relu(delta W_h + b_h))`` before the usual GRU update, which sees the
    imputed input and the mask.
    """

    def __init__(self, units: int, n_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.n_features = n_features
        self.state_size = [units, n_features]
        self.output_size = units

    def build(self, input_shape: Any) -> None:
        d, u = self.n_features, self.units
        if input_shape[-1] != 3 * d:
            raise ValueError(
                f"GRUDCell expects 3 x {d} = {3 * d} input channels, got {input_shape[-1]}"
            )
        self.w_x = self.add_weight(shape=(d,), initializer="zeros", name="decay_x_weight")
        self.b_x = self.add_weight(shape=(d,), initializer="zeros", name="decay_x_bias")
        self.w_h = self.add_weight(
            shape=(d, u), initializer="glorot_uniform", name="decay_h_kernel"
        )
        self.b_h = self.add_weight(shape=(u,), initializer="zeros", name="decay_h_bias")
        self.kernel = self.add_weight(
            shape=(2 * d, 3 * u), initializer="glorot_uniform", name="kernel"
        )
        self.recurrent = self.add_weight(
            shape=(u, 3 * u), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(3 * u,), initializer="zeros", name="bias")

    def call(self, inputs: Any, states: Any) -> tuple[Any, list[Any]]:
        d, u = self.n_features, self.units
        h, x_last = states[0], states[1]
        x, m, delta = inputs[:, :d], inputs[:, d : 2 * d], inputs[:, 2 * d :]
        gamma_x = ops.exp(-ops.relu(delta * self.w_x + self.b_x))
        x_hat = m * x + (1.0 - m) * gamma_x * x_last
        gamma_h = ops.exp(-ops.relu(ops.matmul(delta, self.w_h) + self.b_h))
        h = gamma_h * h
        xw = ops.matmul(ops.concatenate([x_hat, m], axis=-1), self.kernel) + self.bias
        hu = ops.matmul(h, self.recurrent)
        z = ops.sigmoid(xw[:, :u] + hu[:, :u])
        r = ops.sigmoid(xw[:, u : 2 * u] + hu[:, u : 2 * u])
        candidate = ops.tanh(xw[:, 2 * u :] + r * hu[:, 2 * u :])
        h_new = z * h + (1.0 - z) * candidate
        x_last_new = m * x + (1.0 - m) * x_last
        return h_new, [h_new, x_last_new]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "n_features": self.n_features}


@keras.saving.register_keras_serializable(package="dl4h")
class LogGaps(keras.layers.Layer):
    """Replace the last third of the channels (hours since last seen) by ``log1p`` of it."""

    def call(self, inputs: Any) -> Any:
        d = inputs.shape[-1] // 3
        return ops.concatenate([inputs[..., : 2 * d], ops.log1p(inputs[..., 2 * d :])], axis=-1)


def mortality_model(
    n_steps: int,
    n_features: int,
    n_static: int,
    *,
    kind: str = "gru",
    units: int = 32,
    dropout: float = 0.2,
    learning_rate: float = 2e-3,
) -> keras.Model:
    """A recurrent in-hospital mortality model that outputs a risk at every hour.

    ``kind="gru"``: a GRU over ``[x, m, log1p(delta)]``; ``"grud"``: :class:`GRUDCell` over
    ``[x, m, delta]``; ``"mask"``: a GRU over ``[m, log1p(delta)]`` only (which tests were
    ordered when, not their results). The static descriptors pass a small dense layer and
    join the recurrent output at every step; a sigmoid gives P(death) after each hour, so
    output ``[:, t]`` uses only the first ``t + 1`` hours. Compiled with binary
    cross-entropy over all hours (labels repeated per hour, :func:`per_hour_labels`) and Adam.
    """
    if kind not in {"gru", "grud", "mask"}:
        raise ValueError(f"kind must be 'gru', 'grud' or 'mask', got {kind!r}")
    seq = keras.Input((n_steps, 3 * n_features), name="series")
    static = keras.Input((n_static,), name="static")
    if kind == "grud":
        h = keras.layers.RNN(GRUDCell(units, n_features), return_sequences=True, name="grud")(seq)
    else:
        x = LogGaps()(seq)
        if kind == "mask":
            x = x[..., n_features:]
        h = keras.layers.GRU(units, return_sequences=True, name="gru")(x)
    h = keras.layers.Dropout(dropout)(h)
    s = keras.layers.Dense(16, activation="relu", name="static_dense")(static)
    s = keras.layers.RepeatVector(n_steps)(s)
    joined = keras.layers.Concatenate()([h, s])
    hidden = keras.layers.Dense(units, activation="relu")(joined)
    # float32 output: a sigmoid in float16 (mixed precision) rounds small risks to 0
    out = keras.layers.Dense(1, activation="sigmoid", dtype="float32")(hidden)
    out = keras.layers.Reshape((n_steps,), name="risk_per_hour", dtype="float32")(out)
    model = keras.Model([seq, static], out, name=f"mortality_{kind}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
        loss="binary_crossentropy",
    )
    return build_optimizer(model)  # one trace of the training step, not two


def per_hour_labels(y: Any, n_steps: int) -> Any:
    """Repeat each stay's label over its ``n_steps`` hourly outputs (float32, n x T)."""
    import numpy as np

    return np.repeat(np.asarray(y, dtype=np.float32)[:, None], n_steps, axis=1)


@keras.saving.register_keras_serializable(package="dl4h")
def cox_loss(y_true: Any, y_pred: Any) -> Any:
    """Negative Cox partial log-likelihood of a batch, per event (Breslow's ties).

    ``y_true`` is (n, 2): time and event (1 death, 0 censored); ``y_pred`` (n, 1) or (n,)
    the log-risk. For each event i the loss takes ``-(r_i - log sum_{j: t_j >= t_i}
    exp(r_j))``: the risk of the one who had the event against everyone still at risk.
    Censored cases only ever appear in risk sets, which is how the model uses them without
    pretending to know their time of death. A batch without events gives 0.

    The risk sets come from one sort, not an n x n matrix: ordered from the latest time to the
    earliest, everyone at risk at ``t_i`` comes before the last patient tied with ``t_i``, so
    the sum over the risk set is a running sum read at that position. Time and memory grow as
    n log n and n, which lets a whole training split be one batch (the survival benchmark). The
    running sum of ``exp(r_j - max r)`` is kept in float64, so log-risks up to about 700 apart
    stay finite.
    """
    t = ops.cast(y_true[:, 0], "float32")
    e = ops.cast(y_true[:, 1], "float32")
    r = ops.reshape(ops.cast(y_pred, "float32"), (-1,))
    order = ops.argsort(-t)  # latest time first
    t, e, r = ops.take(t, order), ops.take(e, order), ops.take(r, order)
    shift = ops.stop_gradient(ops.max(r))
    running = ops.cumsum(ops.exp(ops.cast(r - shift, "float64")))
    last_tied = ops.searchsorted(-t, -t, side="right") - 1  # the last position with t_j >= t_i
    log_risk = ops.cast(ops.log(ops.take(running, last_tied)), "float32") + shift
    return -ops.sum(e * (r - log_risk)) / ops.maximum(ops.sum(e), 1.0)


def cox_model(
    n_features: int,
    *,
    hidden: tuple[int, ...] = (32, 32),
    dropout: float = 0.2,
    l2: float = 1e-3,
    learning_rate: float = 1e-3,
) -> keras.Model:
    """A DeepSurv-style network: an MLP with one linear output, the log-risk, trained with
    :func:`cox_loss`. ``hidden=()`` gives a linear Cox model fitted by gradient descent."""
    inputs = keras.Input((n_features,), name="covariates")
    x = inputs
    for width in hidden:
        x = keras.layers.Dense(
            width, activation="selu", kernel_regularizer=keras.regularizers.l2(l2)
        )(x)
        x = keras.layers.AlphaDropout(dropout)(x) if dropout else x
    # float32 log-risk: the partial likelihood exponentiates it (float16 overflows at 11)
    out = keras.layers.Dense(1, use_bias=False, name="log_risk", dtype="float32")(x)
    model = keras.Model(inputs, out, name="neural_cox")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=cox_loss)
    return build_optimizer(model)


class LastHourAUROC(keras.callbacks.Callback):
    """Adds ``val_auroc48`` to the epoch logs: the validation AUROC of the last hour's risk.

    Put it *before* EarlyStopping in the callback list so that early stopping can monitor
    it (callbacks run in list order)."""

    def __init__(self, x_val: Any, y_val: Any, batch_size: int = 512) -> None:
        super().__init__()
        self.x_val, self.y_val, self.batch_size = x_val, y_val, batch_size

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from sklearn.metrics import roc_auc_score

        risk = self.model.predict(self.x_val, verbose=0, batch_size=self.batch_size)[:, -1]
        if logs is not None:
            logs["val_auroc48"] = float(roc_auc_score(self.y_val, risk))


def fit_mortality(
    model: keras.Model,
    series: Any,
    static: Any,
    y: Any,
    train: Any,
    val: Any,
    *,
    epochs: int,
    patience: int = 4,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Train a :func:`mortality_model` on the ``train`` positions, early stopping on the
    validation AUROC of the 48-hour risk (best weights restored, learning rate halved after
    ``patience // 2`` flat epochs). Returns the history plus ``best_epoch`` (1-based) and
    ``epochs_run``. The test split never enters here."""
    import numpy as np

    n_steps = model.output_shape[-1]
    labels = per_hour_labels(y, n_steps)
    history = model.fit(
        [series[train], static[train]],
        labels[train],
        validation_data=([series[val], static[val]], labels[val]),
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=[
            LastHourAUROC([series[val], static[val]], np.asarray(y)[val]),
            keras.callbacks.EarlyStopping(
                monitor="val_auroc48", mode="max", patience=patience, restore_best_weights=True
            ),
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_auroc48", mode="max", factor=0.5, patience=max(1, patience // 2)
            ),
        ],
    ).history
    best = int(np.argmax(history["val_auroc48"])) + 1
    return {**history, "best_epoch": best, "epochs_run": len(history["val_auroc48"])}


def predict_risk(model: keras.Model, series: Any, static: Any, batch_size: int = 512) -> Any:
    """P(in-hospital death) after every hour: (n, T); column ``t`` uses hours 0..t only."""
    return model.predict([series, static], verbose=0, batch_size=batch_size)
