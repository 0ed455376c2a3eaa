"""Sequences as tensors, and the recurrent models that read them.

DNA is turned into numbers explicitly: each position becomes a 4-vector over ``A, C, G, T``
and every IUPAC ambiguity code becomes the *average* of the bases it stands for (``N`` ->
0.25 each, ``R`` = A/G -> 0.5/0.5, ``D`` = A/G/T -> 1/3 each, ``S`` = C/G -> 0.5/0.5), so
no position is silently dropped; any other character raises ``ValueError`` naming it and
its position. Variable-length series are padded with a mask. The model builders (SimpleRNN,
LSTM or GRU classifier, bidirectional LSTM, Conv1D + BiLSTM hybrid, LSTM autoencoder) and the
training loop with early stopping are the ones chapter 07 and
``benchmarks/rnn_sequences.py`` share; the builders return compiled Keras models.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # keras is imported inside the builders, after helpers.config
    import keras

BASES = "ACGT"

# IUPAC nucleotide codes: which of A, C, G, T each letter may stand for.
IUPAC: dict[str, str] = {
    "A": "A",
    "C": "C",
    "G": "G",
    "T": "T",
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}

_CODE_VECTORS: dict[str, np.ndarray] = {
    code: np.array([bases.count(b) / len(bases) for b in BASES], dtype=np.float32)
    for code, bases in IUPAC.items()
}

CELLS = ("simple", "lstm", "gru")


def _as_list(sequences: str | Iterable[str]) -> list[str]:
    if isinstance(sequences, str):
        return [sequences]
    out = list(sequences)
    if not out:
        raise ValueError("no sequences to encode (empty input)")
    for index, seq in enumerate(out):
        if not isinstance(seq, str):
            raise TypeError(f"sequence {index} is a {type(seq).__name__}, not a string")
    return out


def one_hot_dna(sequences: str | Iterable[str], length: int | None = None) -> np.ndarray:
    """Encode DNA strings as a ``float32`` array of shape ``(n, length, 4)`` over A, C, G, T.

    Lower case is accepted. Each IUPAC ambiguity code is the average of its bases (so every
    row sums to 1 and ``N`` is 0.25 everywhere). All sequences must have the same length
    (``length`` if given); use :func:`pad_sequences` for ragged input. An empty input, an
    empty string, a wrong length or a character that is not an IUPAC code raises
    ``ValueError`` naming the sequence, the character and its (0-based) position.
    """
    seqs = _as_list(sequences)
    expected = len(seqs[0]) if length is None else length
    if expected <= 0:
        raise ValueError(
            "sequence 0 is empty" if length is None else f"length must be positive, not {length}"
        )
    out = np.empty((len(seqs), expected, 4), dtype=np.float32)
    for i, seq in enumerate(seqs):
        if len(seq) != expected:
            raise ValueError(
                f"sequence {i} has length {len(seq)}, expected {expected}"
                + ("" if length is not None else " (the length of sequence 0)")
            )
        for j, char in enumerate(seq.upper()):
            vector = _CODE_VECTORS.get(char)
            if vector is None:
                raise ValueError(
                    f"illegal character {seq[j]!r} at position {j} of sequence {i}; "
                    f"allowed are the IUPAC codes {''.join(IUPAC)}"
                )
            out[i, j] = vector
    return out


def ambiguity_counts(sequences: str | Iterable[str]) -> dict[str, int]:
    """How often each non-ACGT IUPAC code occurs in ``sequences`` (codes never seen omitted)."""
    counts: dict[str, int] = {}
    for seq in _as_list(sequences):
        for char in seq.upper():
            if char in IUPAC and char not in BASES:
                counts[char] = counts.get(char, 0) + 1
    return dict(sorted(counts.items()))


def kmer_names(k: int) -> list[str]:
    """The ``4**k`` k-mers over ACGT in the column order of :func:`kmer_features`."""
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    return ["".join(p) for p in product(BASES, repeat=k)]


def kmer_features(onehot: np.ndarray, k: int = 3, *, positional: bool = False) -> np.ndarray:
    """k-mer features from one-hot DNA ``(n, L, 4)`` (e.g. from :func:`one_hot_dna`).

    Every window of ``k`` bases is expanded to a distribution over the ``4**k`` k-mers (the
    product of its per-position vectors, so ambiguity codes spread their weight over the
    k-mers they could be). ``positional=False`` sums the windows: a bag of k-mer counts
    ``(n, 4**k)``. ``positional=True`` keeps them apart: ``(n, (L-k+1) * 4**k)``, which lets
    a linear model learn *where* a motif sits.
    """
    onehot = np.asarray(onehot, dtype=np.float32)
    if onehot.ndim != 3 or onehot.shape[-1] != 4:
        raise ValueError(f"expected one-hot DNA of shape (n, L, 4), got {onehot.shape}")
    n, length, _ = onehot.shape
    if not 1 <= k <= length:
        raise ValueError(f"k must be between 1 and the sequence length {length}, not {k}")
    windows = length - k + 1
    grams = onehot[:, :windows, :]
    for offset in range(1, k):
        nxt = onehot[:, offset : offset + windows, :]
        grams = (grams[..., :, None] * nxt[..., None, :]).reshape(n, windows, -1)
    if positional:
        return grams.reshape(n, windows * 4**k)
    return grams.sum(axis=1)


def pad_sequences(
    series: Sequence[np.ndarray], maxlen: int | None = None, value: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Pad variable-length sequences at the end to ``(n, maxlen, features)`` plus a mask.

    Each item is ``(length,)`` or ``(length, features)``. Returns ``(padded, mask)`` with
    ``mask[i, t]`` True where step ``t`` is real data. Longer sequences than ``maxlen``
    raise ``ValueError`` (truncating a patient's record should be a visible decision).
    """
    if len(series) == 0:
        raise ValueError("no sequences to pad (empty input)")
    arrays = [np.asarray(s, dtype=np.float32) for s in series]
    arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
    features = {a.shape[1] for a in arrays if a.ndim == 2}
    if any(a.ndim != 2 for a in arrays) or len(features) != 1:
        raise ValueError(
            "every sequence must be (length,) or (length, features) with the same features"
        )
    lengths = [len(a) for a in arrays]
    maxlen = max(lengths) if maxlen is None else maxlen
    for i, n in enumerate(lengths):
        if n > maxlen:
            raise ValueError(f"sequence {i} has length {n} > maxlen {maxlen}")
    padded = np.full((len(arrays), maxlen, features.pop()), value, dtype=np.float32)
    mask = np.zeros((len(arrays), maxlen), dtype=bool)
    for i, a in enumerate(arrays):
        padded[i, : len(a)] = a
        mask[i, : len(a)] = True
    return padded, mask


# --------------------------------------------------------------------------- models
def _recurrent_layer(cell: str, units: int, **kwargs: Any) -> Any:
    import keras

    layers = {"simple": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
    if cell not in layers:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
    return layers[cell](units, **kwargs)


def _head_and_compile(
    inputs: Any, features: Any, n_classes: int, learning_rate: float, name: str
) -> Any:
    import keras

    from .models import build_optimizer

    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, not {n_classes}")
    # A named logits layer, as in the image models (helpers.models): temperature scaling and
    # models.predict_logits work for sequence models too. float32 even under mixed precision.
    logits = keras.layers.Dense(1 if n_classes == 2 else n_classes, name="logits", dtype="float32")(
        features
    )
    if n_classes == 2:
        outputs = keras.layers.Activation("sigmoid", name="probability", dtype="float32")(logits)
        accuracy = keras.metrics.BinaryAccuracy(name="accuracy")
        loss, metrics = "binary_crossentropy", [accuracy, keras.metrics.AUC(name="auc")]
    else:
        outputs = keras.layers.Activation("softmax", name="probabilities", dtype="float32")(logits)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        loss, metrics = "sparse_categorical_crossentropy", [accuracy]
    model = keras.Model(inputs, outputs, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=metrics
    )
    return build_optimizer(model)  # one trace of the training step, not two


def rnn_classifier(
    input_shape: tuple[int | None, int],
    n_classes: int,
    *,
    cell: str = "lstm",
    units: int = 64,
    bidirectional: bool = False,
    dropout: float = 0.0,
    readout: str = "last",
    mask_value: float | None = None,
    learning_rate: float = 1e-3,
) -> keras.Model:
    """A one-layer recurrent classifier: (masking) -> RNN cell -> readout -> dropout -> output.

    ``cell`` is ``"simple"`` (SimpleRNN), ``"lstm"`` or ``"gru"``; ``bidirectional`` reads
    the sequence both ways. ``readout="last"`` classifies from the final hidden state only
    (the network must *carry* what it saw); ``"all"`` flattens the hidden states of every
    step, so the output layer also knows *where* something was seen (fixed-length input
    only). ``mask_value`` adds a ``Masking`` layer so padded steps equal to it are skipped
    (with ``readout="last"``). Two classes give one sigmoid unit (binary cross-entropy,
    accuracy and AUC); more give a softmax over integer labels. Returns a compiled model.
    """
    import keras

    if readout not in ("last", "all"):
        raise ValueError(f"readout must be 'last' or 'all', not {readout!r}")
    if readout == "all" and (mask_value is not None or input_shape[0] is None):
        raise ValueError("readout='all' needs fixed-length sequences without a mask")
    inputs = keras.Input(shape=input_shape, name="sequence")
    x = inputs if mask_value is None else keras.layers.Masking(mask_value=mask_value)(inputs)
    layer = _recurrent_layer(cell, units, return_sequences=readout == "all", name=cell)
    x = keras.layers.Bidirectional(layer, name=f"bi_{cell}")(x) if bidirectional else layer(x)
    if readout == "all":
        x = keras.layers.Flatten(name="every_step")(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    name = f"{'bi' if bidirectional else ''}{cell}_classifier"
    return _head_and_compile(inputs, x, n_classes, learning_rate, name)


def conv_bilstm_classifier(
    input_shape: tuple[int, int],
    n_classes: int,
    *,
    filters: int = 64,
    kernel_size: int = 9,
    units: int = 32,
    dropout: float = 0.5,
    learning_rate: float = 1e-3,
) -> keras.Model:
    """A Conv1D + bidirectional-LSTM hybrid: motifs first, then their context.

    A ``Conv1D`` (``filters`` detectors of width ``kernel_size``, 'same' padding, ReLU)
    scans for local motifs at every position; a bidirectional LSTM of ``units`` per
    direction reads the motif map and returns its state at every step; these are
    flattened (so the output layer knows where each motif sits), followed by dropout and
    a dense output (sigmoid for two classes, softmax otherwise). Returns a compiled model.
    """
    import keras

    inputs = keras.Input(shape=input_shape, name="sequence")
    x = keras.layers.Conv1D(filters, kernel_size, padding="same", activation="relu", name="motifs")(
        inputs
    )
    x = keras.layers.Dropout(dropout / 2)(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True), name="bi_lstm")(
        x
    )
    x = keras.layers.Flatten(name="every_step")(x)
    x = keras.layers.Dropout(dropout)(x)
    return _head_and_compile(inputs, x, n_classes, learning_rate, "conv_bilstm_classifier")


def lstm_autoencoder(
    length: int,
    n_features: int = 1,
    *,
    units: int = 32,
    cell: str = "lstm",
    learning_rate: float = 1e-3,
    conv_stages: int = 0,
    filters: int = 32,
) -> keras.Model:
    """A sequence-to-sequence autoencoder: RNN encoder -> code -> repeated -> RNN decoder.

    The encoder compresses a ``(length, n_features)`` series into ``units`` numbers; the
    decoder rebuilds the series from that code alone. Trained on normal beats only, it
    reconstructs abnormal ones worse: see :func:`reconstruction_error`. Compiled with MSE.
    ``conv_stages`` (default 0: none) puts that many stride-2 ``Conv1D`` layers (``filters``
    each, ReLU) before the encoder and as many stride-2 transposed convolutions after the
    decoder, so the recurrent layers read and write a sequence ``2**conv_stages`` times
    shorter (35 steps instead of 140 for two stages): far fewer steps to carry a gradient
    through, which trains faster and more reliably on a few hundred beats. ``length`` must
    then be divisible by ``2**conv_stages``; a negative count raises ``ValueError``.
    """
    import keras

    from .models import build_optimizer

    if conv_stages < 0:
        raise ValueError(f"conv_stages must be >= 0, not {conv_stages}")
    if length % 2**conv_stages:
        raise ValueError(f"length {length} is not divisible by 2**conv_stages = {2**conv_stages}")
    inputs = keras.Input(shape=(length, n_features), name="series")
    x = inputs
    for stage in range(conv_stages):
        x = keras.layers.Conv1D(
            filters,
            7 if stage == 0 else 5,
            strides=2,
            padding="same",
            activation="relu",
            name=f"downsample_{stage + 1}",
        )(x)
    code = _recurrent_layer(cell, units, name="encoder")(x)
    x = keras.layers.RepeatVector(length // 2**conv_stages, name="repeat_code")(code)
    x = _recurrent_layer(cell, units, return_sequences=True, name="decoder")(x)
    if conv_stages:
        for stage in reversed(range(conv_stages)):
            x = keras.layers.Conv1DTranspose(
                filters,
                7 if stage == 0 else 5,
                strides=2,
                padding="same",
                activation="relu",
                name=f"upsample_{stage + 1}",
            )(x)
        outputs = keras.layers.Conv1D(
            n_features, 3, padding="same", name="reconstruction", dtype="float32"
        )(x)
    else:  # float32 reconstruction: the MSE is computed at full precision
        outputs = keras.layers.TimeDistributed(
            keras.layers.Dense(n_features, dtype="float32"), name="reconstruction", dtype="float32"
        )(x)
    model = keras.Model(inputs, outputs, name=f"{'conv_' if conv_stages else ''}{cell}_autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return build_optimizer(model)


# --------------------------------------------------------------------------- splice pipeline
#: The splice-junction classes in label order: donor (exon-intron), acceptor, neither.
SPLICE_CLASSES = ("EI", "IE", "N")


def splice_split(
    sequences: Sequence[str], labels: np.ndarray, n_train: int | None = None, seed: int = 42
) -> dict[str, np.ndarray]:
    """Train/validation/test indices for the splice windows, identical windows kept together.

    The UCI file repeats some windows; a random split would put copies in training and test
    and flatter every model (the leakage of chapter 01). The split is stratified and grouped
    by the sequence itself (``data.split_indices``); ``n_train`` keeps a class-stratified
    subset of the training windows (profiles use it). The chapter and the benchmark both
    split this way.
    """
    from . import data

    labels = np.asarray(labels)
    split = data.split_indices(labels, groups=np.asarray(sequences), seed=seed)
    train = split["train"][data.stratified_subset(labels[split["train"]], n_train, seed=seed)]
    return {"train": train, "val": split["val"], "test": split["test"]}


def kmer_grid_search(
    onehot: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    grid_k: Sequence[int],
    grid_c: Sequence[float],
) -> tuple[Any, dict, tuple[int, float]]:
    """The positional k-mer + logistic-regression baseline, its (k, C) chosen on validation.

    Fits one model per ``(k, C)`` on the ``train`` rows and scores it on the ``val`` rows.
    Returns the grid as a DataFrame (``k, C, features, validation accuracy``), the fitted
    models keyed by ``(k, C)`` and the chosen ``(k, C)`` (the first best on validation).
    The test rows never enter here.
    """
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rows, fitted = [], {}
    for k in grid_k:
        features = kmer_features(onehot, k, positional=True)
        for c in grid_c:
            model = LogisticRegression(C=c, max_iter=3000).fit(features[train], labels[train])
            fitted[k, c] = model
            rows.append(
                {
                    "k": k,
                    "C": c,
                    "features": features.shape[1],
                    "validation accuracy": model.score(features[val], labels[val]),
                }
            )
    grid = pd.DataFrame(rows)
    best = grid.loc[grid["validation accuracy"].idxmax()]
    return grid, fitted, (int(best["k"]), float(best["C"]))


#: The learning-rate schedule the sequence models were tuned with, for ``models.train``:
#: divide the rate by 3 after ``patience // 2`` epochs without a lower validation loss.
RNN_SCHEDULE: dict[str, float] = {"lr_factor": 1 / 3, "min_lr": 0.0}


def reconstruction_error(
    model: keras.Model, series: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Mean squared reconstruction error of each series ``(n, length[, features])``: ``(n,)``."""
    series = np.asarray(series, dtype=np.float32)
    if series.ndim == 2:
        series = series[..., None]
    if series.ndim != 3:
        raise ValueError(
            f"expected series of shape (n, length) or (n, length, features), got {series.shape}"
        )
    rebuilt = model.predict(series, batch_size=batch_size, verbose=0)
    return np.mean((rebuilt - series) ** 2, axis=(1, 2))


__all__ = [
    "BASES",
    "IUPAC",
    "CELLS",
    "one_hot_dna",
    "ambiguity_counts",
    "kmer_names",
    "kmer_features",
    "pad_sequences",
    "rnn_classifier",
    "conv_bilstm_classifier",
    "lstm_autoencoder",
    "RNN_SCHEDULE",
    "reconstruction_error",
    "SPLICE_CLASSES",
    "splice_split",
    "kmer_grid_search",
]
