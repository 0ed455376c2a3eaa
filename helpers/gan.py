"""Generative adversarial networks for small medical images, and honest checks of them.

A DCGAN generator maps noise (and optionally a class label, by label embedding) to a
28x28x1 image in [-1, 1]; a discriminator scores how real an image looks (a logit). The
:class:`GAN` trainer plays the adversarial game with a ``tf.GradientTape`` step, with
optional one-sided label smoothing. The evaluation functions check three different
things: fidelity (:func:`frechet_distance` on classifier features, and
:func:`classifier_two_sample_auc`), diversity *within each class*
(:func:`mean_pairwise_distance`, :func:`per_class_diversity`: has the generator collapsed
onto a few images of a class?), artefacts (:func:`high_frequency_share`: speckle or a
checkerboard pattern), and privacy (:func:`nearest_neighbour_distances`,
:func:`memorisation_report`: is a generated image a copy of a training image?). Chapter 06
and ``benchmarks/gan_medmnist.py`` use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# helpers.config imports TensorFlow with its start-up messages silenced: it must come first.
from . import config  # noqa: F401

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _check_positive(name: str, value: int) -> int:
    if int(value) < 1:
        raise ValueError(f"{name} must be >= 1, not {value}")
    return int(value)


def build_generator(
    latent_dim: int = 64,
    n_classes: int = 0,
    *,
    image_size: int = 28,
    base_filters: int = 64,
) -> keras.Model:
    """A DCGAN generator: noise (and a class label) to an image in [-1, 1] via tanh.

    Dense to a ``(size/4, size/4, 2*base_filters)`` map, then two stride-2 transposed
    convolutions (batch norm and LeakyReLU between) up to ``(image_size, image_size, 1)``.
    With ``n_classes >= 2`` the model takes ``[noise, label]`` and the integer label is
    embedded to a ``latent_dim`` vector concatenated with the noise (a conditional GAN,
    Mirza & Osindero 2014); ``n_classes=0`` gives the unconditional model.
    """
    latent_dim = _check_positive("latent_dim", latent_dim)
    base_filters = _check_positive("base_filters", base_filters)
    if image_size % 4 or image_size < 8:
        raise ValueError(f"image_size must be a multiple of 4 and >= 8, not {image_size}")
    if n_classes == 1 or n_classes < 0:
        raise ValueError(f"n_classes must be 0 (unconditional) or >= 2, not {n_classes}")
    noise = keras.Input((latent_dim,), name="noise")
    inputs = [noise]
    x = noise
    if n_classes:
        label = keras.Input((1,), dtype="int32", name="label")
        inputs.append(label)
        embedded = keras.layers.Flatten(name="label_flat")(
            keras.layers.Embedding(n_classes, latent_dim, name="label_embedding")(label)
        )
        x = keras.layers.Concatenate(name="noise_and_label")([noise, embedded])
    side = image_size // 4
    x = keras.layers.Dense(side * side * 2 * base_filters, use_bias=False, name="project")(x)
    x = keras.layers.BatchNormalization(name="bn0")(x)
    x = keras.layers.LeakyReLU(0.2, name="lrelu0")(x)
    x = keras.layers.Reshape((side, side, 2 * base_filters), name="to_map")(x)
    x = keras.layers.Conv2DTranspose(
        base_filters, 4, strides=2, padding="same", use_bias=False, name="up1"
    )(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.LeakyReLU(0.2, name="lrelu1")(x)
    x = keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", name="up2")(x)
    image = keras.layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(inputs if n_classes else noise, image, name="generator")


def build_discriminator(
    image_shape: Sequence[int] = (28, 28, 1),
    n_classes: int = 0,
    *,
    base_filters: int = 64,
    dropout: float = 0.3,
) -> keras.Model:
    """A DCGAN discriminator: an image (and a class label) to one real-vs-fake logit.

    Two stride-2 convolutions with LeakyReLU and dropout, then a linear output (no sigmoid:
    the losses work on logits). With ``n_classes >= 2`` the label is embedded to one extra
    image-sized channel, so the discriminator judges "is this a real film *of this class*".
    """
    shape = tuple(int(v) for v in image_shape)
    if len(shape) != 3 or shape[-1] not in (1, 3) or min(shape[:2]) < 8:
        raise ValueError(
            f"image_shape must be (height, width, 1 or 3) with sides >= 8, got {shape}"
        )
    if n_classes == 1 or n_classes < 0:
        raise ValueError(f"n_classes must be 0 (unconditional) or >= 2, not {n_classes}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), not {dropout}")
    base_filters = _check_positive("base_filters", base_filters)
    image = keras.Input(shape, name="image")
    inputs = [image]
    x = image
    if n_classes:
        label = keras.Input((1,), dtype="int32", name="label")
        inputs.append(label)
        plane = keras.layers.Embedding(n_classes, shape[0] * shape[1], name="label_embedding")(
            label
        )
        plane = keras.layers.Reshape((shape[0], shape[1], 1), name="label_plane")(plane)
        x = keras.layers.Concatenate(name="image_and_label")([image, plane])
    for k, filters in enumerate((base_filters, 2 * base_filters)):
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", name=f"conv{k}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"lrelu{k}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout{k}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs if n_classes else image, logit, name="discriminator")


def to_tanh_range(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] (or ``uint8``) to float32 in [-1, 1], with a channel axis."""
    images = np.asarray(images)
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    out = images.astype(np.float32) / scale
    if out.ndim == 3:
        out = out[..., np.newaxis]
    if out.ndim != 4:
        raise ValueError(f"expected images of shape (n, h, w) or (n, h, w, c), got {images.shape}")
    if out.min() < 0 or out.max() > 1:
        raise ValueError(
            f"images must lie in [0, 1] (or be uint8), got [{out.min():.3g}, {out.max():.3g}]"
        )
    return out * 2.0 - 1.0


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1] back to [0, 1] (what the classifiers expect)."""
    return np.clip((np.asarray(images, dtype=np.float32) + 1.0) / 2.0, 0.0, 1.0)


class GAN:
    """A generator and a discriminator trained against each other with Adam.

    Each step the discriminator learns to call real images 1 and generated ones 0 (with
    one-sided label smoothing, real targets are ``1 - label_smoothing``; Salimans et al.
    2016), then the generator learns to make the discriminator call its images 1 (the
    non-saturating loss of Goodfellow et al. 2014). Conditional models get the real
    labels with the real images and random labels for the generated ones.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        *,
        learning_rate: float = 2e-4,
        beta_1: float = 0.5,
        label_smoothing: float = 0.0,
    ) -> None:
        if not 0 <= label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), not {label_smoothing}")
        conditional_g = isinstance(generator.input, list)
        conditional_d = isinstance(discriminator.input, list)
        if conditional_g != conditional_d:
            raise ValueError("generator and discriminator must both be conditional or both not")
        self.generator = generator
        self.discriminator = discriminator
        self.conditional = conditional_g
        self.latent_dim = int((generator.input[0] if conditional_g else generator.input).shape[-1])
        self.n_classes = (
            int(generator.get_layer("label_embedding").input_dim) if conditional_g else 0
        )
        self.label_smoothing = float(label_smoothing)
        self.g_optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)
        self.d_optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)
        # their variables now, not in the first traced step (which would then be traced twice)
        self.g_optimizer.build(generator.trainable_weights)
        self.d_optimizer.build(discriminator.trainable_weights)
        self._step = tf.function(self._train_step)

    def _inputs(self, images: Any, labels: Any) -> Any:
        return [images, labels] if self.conditional else images

    def _train_step(self, real: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        batch = tf.shape(real)[0]
        bce = keras.losses.BinaryCrossentropy(from_logits=True)
        noise = tf.random.normal((batch, self.latent_dim))
        fake_labels = tf.random.uniform((batch, 1), 0, max(self.n_classes, 1), dtype=tf.int32)
        with tf.GradientTape() as tape:
            fake = self.generator(self._inputs(noise, fake_labels), training=True)
            real_logit = self.discriminator(self._inputs(real, labels), training=True)
            fake_logit = self.discriminator(self._inputs(fake, fake_labels), training=True)
            d_loss = bce(
                tf.fill(tf.shape(real_logit), 1.0 - self.label_smoothing), real_logit
            ) + bce(tf.zeros_like(fake_logit), fake_logit)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(
            zip(grads, self.discriminator.trainable_weights, strict=True)
        )
        noise = tf.random.normal((batch, self.latent_dim))
        with tf.GradientTape() as tape:
            fake = self.generator(self._inputs(noise, fake_labels), training=True)
            fake_logit = self.discriminator(self._inputs(fake, fake_labels), training=True)
            g_loss = bce(tf.ones_like(fake_logit), fake_logit)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))
        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": tf.reduce_mean(tf.sigmoid(real_logit)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logit)),
        }

    def train(
        self,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        *,
        steps: int = 1000,
        batch_size: int = 64,
        seed: int = 0,
        callback: Any = None,
        callback_every: int = 0,
    ) -> dict[str, list[float]]:
        """Run ``steps`` adversarial steps on random batches of ``images`` (in [-1, 1]).

        Returns the history: per step the discriminator loss ``d_loss``, the generator
        loss ``g_loss`` and the discriminator's mean probability of "real" on real
        (``d_real``) and generated (``d_fake``) images. ``callback(step, gan)`` is called
        every ``callback_every`` steps (e.g. to sample a fixed-noise grid).
        """
        images = np.asarray(images, dtype=np.float32)
        expected = tuple(
            self.discriminator.input_shape[0][1:]
            if self.conditional
            else self.discriminator.input_shape[1:]
        )
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"images must have shape (n, {', '.join(map(str, expected))}), got {images.shape}"
            )
        if images.min() < -1.0001 or images.max() > 1.0001:
            raise ValueError("images must be scaled to [-1, 1] (use to_tanh_range)")
        if self.conditional:
            if labels is None:
                raise ValueError("a conditional GAN needs the class labels")
            labels = np.asarray(labels).reshape(-1).astype(np.int32)
            if len(labels) != len(images):
                raise ValueError(f"{len(labels)} labels for {len(images)} images")
            if labels.min() < 0 or labels.max() >= self.n_classes:
                raise ValueError(f"labels must be integers in [0, {self.n_classes - 1}]")
        else:
            labels = np.zeros(len(images), dtype=np.int32)
        steps = _check_positive("steps", steps)
        batch_size = min(_check_positive("batch_size", batch_size), len(images))
        rng = np.random.default_rng(seed)
        history: dict[str, list[float]] = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": []}
        for step in range(1, steps + 1):
            pick = rng.choice(len(images), batch_size, replace=False)
            out = self._step(tf.constant(images[pick]), tf.constant(labels[pick].reshape(-1, 1)))
            for key, value in out.items():
                history[key].append(float(value))
            if callback is not None and callback_every and step % callback_every == 0:
                callback(step, self)
        return history

    def generate(
        self,
        n: int,
        labels: np.ndarray | None = None,
        *,
        seed: int = 0,
        noise: np.ndarray | None = None,
        batch_size: int = 512,
    ) -> np.ndarray:
        """``n`` generated images in [-1, 1] (inference mode); fixed ``noise`` gives a fixed grid.

        Conditional models need ``labels`` (length ``n``); the noise is drawn from a
        NumPy generator seeded with ``seed`` unless given.
        """
        n = _check_positive("n", n)
        if noise is None:
            noise = np.random.default_rng(seed).standard_normal((n, self.latent_dim))
        noise = np.asarray(noise, dtype=np.float32)
        if noise.shape != (n, self.latent_dim):
            raise ValueError(f"noise must have shape ({n}, {self.latent_dim}), got {noise.shape}")
        if self.conditional:
            if labels is None:
                raise ValueError("a conditional GAN needs labels to generate")
            labels = np.asarray(labels).reshape(-1, 1).astype(np.int32)
            if len(labels) != n:
                raise ValueError(f"{len(labels)} labels for {n} images")
            return self.generator.predict([noise, labels], batch_size=batch_size, verbose=0)
        return self.generator.predict(noise, batch_size=batch_size, verbose=0)


def _as_2d(name: str, x: np.ndarray, min_rows: int = 1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1) if x.ndim >= 2 else x
    if x.ndim != 2 or len(x) < min_rows:
        raise ValueError(
            f"{name} must be an array of at least {min_rows} samples (n, ...), got shape {np.shape(x)}"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(n, d)``.

    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (Heusel et al. 2017; FID when
    the features are Inception's), the matrix square root's trace taken from eigenvalues. Zero
    for identical sets; it grows when the means shift or the spreads differ. Lower is closer.
    """
    a = _as_2d("features_a", features_a, min_rows=2)
    b = _as_2d("features_b", features_b, min_rows=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    # Tr((S_a S_b)^(1/2)) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)), a symmetric
    # PSD matrix: the same number as scipy.linalg.sqrtm's real part, but stable when the
    # covariances are singular (dead ReLU features, fewer samples than dimensions).
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root_a @ cov_b @ root_a
    trace_covmean = float(
        np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    )
    value = float(
        np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_covmean
    )
    return max(value, 0.0)


def classifier_two_sample_auc(
    real: np.ndarray, fake: np.ndarray, *, seed: int = 0, C: float = 0.1
) -> float:
    """Held-out ROC AUC of a logistic regression telling ``real`` from ``fake`` samples.

    Both sets are flattened, pooled (real = 1) and split into two stratified halves; the
    classifier (standardised inputs, L2 penalty ``C``) is fitted on each half and scores
    the other, and the AUC of those out-of-half scores is returned (Lopez-Paz & Oquab 2017).
    0.5 means the classifier cannot tell them apart; 1.0 means every fake is recognisable.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a = _as_2d("real", real, min_rows=4)
    b = _as_2d("fake", fake, min_rows=4)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"real and fake have different sizes per sample: {a.shape[1]} vs {b.shape[1]}"
        )
    x = np.concatenate([a, b])
    y = np.concatenate([np.ones(len(a)), np.zeros(len(b))])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def mean_pairwise_distance(x: np.ndarray, *, max_samples: int = 500, seed: int = 0) -> float:
    """Mean Euclidean distance over all distinct pairs of samples ``(n, ...)`` (flattened).

    A measure of spread: 0 when every sample is the same, larger the more they differ. Sets
    larger than ``max_samples`` are first subsampled without replacement (seeded), so the
    cost stays at ``max_samples**2 / 2`` exact distances. Needs at least two samples.
    """
    a = _as_2d("x", x, min_rows=2)
    max_samples = _check_positive("max_samples", max_samples)
    if max_samples < 2:
        raise ValueError(f"max_samples must be >= 2, not {max_samples}")
    if len(a) > max_samples:
        a = a[np.sort(np.random.default_rng(seed).choice(len(a), max_samples, replace=False))]
    from scipy.spatial.distance import pdist

    return float(np.mean(pdist(a)))


def high_frequency_share(images: np.ndarray, min_frequency: float = 0.5) -> np.ndarray:
    """Per image, the share of its spectral power at the highest spatial frequencies.

    The image's mean is removed and its 2-D power spectrum computed; the share returned is
    the power at frequencies with ``|f_x|`` or ``|f_y|`` of at least ``min_frequency``
    cycles per pixel, out of the total. The default 0.5 (the Nyquist frequency, a period of
    two pixels) is where the checkerboard pattern of stride-2 transposed convolutions lives
    (Odena et al. 2016), and pixel speckle puts power there too; smooth anatomy puts almost
    none. Compare generated with real images: a much larger share means artefacts, a much
    smaller one blur. A constant image has share 0. Images ``(n, h, w)`` or ``(n, h, w, 1)``;
    returns an array of length ``n``.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or min(x.shape[1:]) < 2:
        raise ValueError(
            f"expected grey images of shape (n, h, w) or (n, h, w, 1) with sides >= 2, got {np.shape(images)}"
        )
    if not np.isfinite(x).all():
        raise ValueError("images contain NaN or infinite values")
    if not 0 < min_frequency <= 0.5:
        raise ValueError(f"min_frequency must be in (0, 0.5] cycles per pixel, not {min_frequency}")
    fy = np.abs(np.fft.fftfreq(x.shape[1]))[:, None]
    fx = np.abs(np.fft.fftfreq(x.shape[2]))[None, :]
    band = (fy >= min_frequency - 1e-12) | (fx >= min_frequency - 1e-12)
    if not band.any():
        raise ValueError(
            f"images of size {x.shape[1]}x{x.shape[2]} have no frequency >= {min_frequency} "
            "(odd sides have no Nyquist frequency); use even sides or a lower min_frequency"
        )
    power = np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True))) ** 2
    total = power.sum(axis=(1, 2))
    high = power[:, band].sum(axis=1)
    return np.divide(high, total, out=np.zeros_like(total), where=total > 0)


def _mean_nearest_neighbour_within(a: np.ndarray) -> float:
    """Mean distance from each row to its nearest *other* row (exact, all pairs)."""
    from scipy.spatial.distance import pdist, squareform

    d = squareform(pdist(a))
    np.fill_diagonal(d, np.inf)
    return float(np.mean(d.min(axis=1)))


def per_class_diversity(
    generated: np.ndarray,
    generated_labels: np.ndarray,
    real: np.ndarray,
    real_labels: np.ndarray,
    *,
    max_per_class: int = 500,
    seed: int = 0,
) -> dict[int, dict[str, float]]:
    """Within-class diversity of generated samples, relative to real samples of the same class.

    For every class ``c`` of ``real_labels`` two statistics of the generated samples labelled
    ``c``, each divided by the same statistic of the real samples of ``c`` (1 = as varied as
    real images of that class, well below 1 = **mode collapse**):

    - ``ratio``: the mean pairwise distance (:func:`mean_pairwise_distance`). It falls to 0
      only when the class collapses onto *one* image; collapse onto ``k`` distinct images
      keeps about ``1 - 1/k`` of the between-image distance, so it misses partial collapse.
    - ``nn_ratio``: the mean distance from each sample to its nearest *other* sample of the
      set, both sets subsampled to the same size (this distance shrinks as a set grows). Near
      0 as soon as images repeat (near-)exactly, however many distinct ones there are.

    Measuring per class matters: pooled over classes, a generator that makes one image per
    class still shows the distance *between* the classes and can look as diverse as real
    data. A class with fewer than two generated samples gets diversity 0 (ratios 0);
    ``nn_ratio`` is NaN if the real subsample itself holds exact duplicates. The
    samples may be images or features (any shape ``(n, ...)``, flattened); at most
    ``max_per_class`` of each set are used (seeded subsample). Both statistics are blind to
    artefacts: noise *raises* distances, so a ratio at or above 1 is no evidence of good
    images; pair them with an artefact and a fidelity measure (:func:`high_frequency_share`,
    :func:`frechet_distance`, :func:`classifier_two_sample_auc`). Returns ``{class: {"n_generated", "n_real",
    "generated", "real", "ratio", "nn_generated", "nn_real", "nn_ratio"}}``.
    """
    gen = _as_2d("generated", generated)
    ref = _as_2d("real", real, min_rows=2)
    if gen.shape[1] != ref.shape[1]:
        raise ValueError(
            f"generated and real differ in size per sample: {gen.shape[1]} vs {ref.shape[1]}"
        )
    gen_y = np.asarray(generated_labels).reshape(-1)
    ref_y = np.asarray(real_labels).reshape(-1)
    if len(gen_y) != len(gen) or len(ref_y) != len(ref):
        raise ValueError(
            f"labels must have one entry per sample: {len(gen_y)} labels for {len(gen)} "
            f"generated, {len(ref_y)} for {len(ref)} real"
        )
    unknown = sorted(set(np.unique(gen_y).tolist()) - set(np.unique(ref_y).tolist()))
    if unknown:
        raise ValueError(f"generated labels {unknown} do not occur among the real labels")
    max_per_class = _check_positive("max_per_class", max_per_class)
    rng = np.random.default_rng(seed)

    def subsample(a: np.ndarray, n: int) -> np.ndarray:
        return a if len(a) <= n else a[np.sort(rng.choice(len(a), n, replace=False))]

    result: dict[int, dict[str, float]] = {}
    for c in np.unique(ref_y):
        real_c, gen_c = ref[ref_y == c], gen[gen_y == c]
        if len(real_c) < 2:
            raise ValueError(
                f"class {c} has fewer than 2 real samples: no diversity to compare with"
            )
        real_div = mean_pairwise_distance(real_c, max_samples=max_per_class, seed=seed)
        if real_div == 0:
            raise ValueError(
                f"the real samples of class {c} are all identical: no diversity to compare with"
            )
        n_equal = min(len(gen_c), len(real_c), max_per_class)
        nn_real = _mean_nearest_neighbour_within(subsample(real_c, max(n_equal, 2)))
        row = {
            "n_generated": int(len(gen_c)),
            "n_real": int(len(real_c)),
            "generated": 0.0,
            "real": real_div,
            "ratio": 0.0,
            "nn_generated": 0.0,
            "nn_real": nn_real,
            "nn_ratio": 0.0,
        }
        if len(gen_c) >= 2:
            row["generated"] = mean_pairwise_distance(gen_c, max_samples=max_per_class, seed=seed)
            row["ratio"] = row["generated"] / real_div
            row["nn_generated"] = _mean_nearest_neighbour_within(subsample(gen_c, n_equal))
            row["nn_ratio"] = row["nn_generated"] / nn_real if nn_real > 0 else float("nan")
        result[int(c)] = row
    return result


def nearest_neighbour_distances(
    queries: np.ndarray, reference: np.ndarray, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the L2 pixel distance to its nearest reference image and its index.

    Images of any shape ``(n, ...)`` are flattened; both sets must have the same number of
    values per image. Returns ``(distances, indices)``, each of length ``len(queries)``.
    """
    q = _as_2d("queries", queries)
    r = _as_2d("reference", reference)
    if q.shape[1] != r.shape[1]:
        raise ValueError(
            f"queries and reference differ in size per image: {q.shape[1]} vs {r.shape[1]}"
        )
    r_sq = np.sum(r**2, axis=1)
    dist, index = np.empty(len(q)), np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), batch_size):
        block = q[start : start + batch_size]
        d2 = np.sum(block**2, axis=1)[:, None] + r_sq[None, :] - 2.0 * block @ r.T
        best = np.argmin(d2, axis=1)
        # recompute the winners exactly (the expansion above loses precision near 0)
        exact = np.sqrt(np.sum((block - r[best]) ** 2, axis=1))
        dist[start : start + len(block)], index[start : start + len(block)] = exact, best
    return dist, index


def memorisation_report(
    generated: np.ndarray, train: np.ndarray, real_test: np.ndarray, percentile: float = 1.0
) -> dict[str, Any]:
    """Are generated images copies of training images? Compare with real unseen images.

    The nearest-training-image distance of every generated image is compared with the
    same distance for real test images (which the generator never saw): a generated image
    closer to a training image than the ``percentile``-th percentile of the real-test
    distances is flagged as a possible copy. Returns the threshold, the flagged indices
    and count, and the median and minimum distances of both sets.
    """
    if not 0 < percentile < 50:
        raise ValueError(f"percentile must be in (0, 50), not {percentile}")
    gen_d, gen_i = nearest_neighbour_distances(generated, train)
    test_d, _ = nearest_neighbour_distances(real_test, train)
    threshold = float(np.percentile(test_d, percentile))
    flagged = np.flatnonzero(gen_d < threshold)
    return {
        "threshold": threshold,
        "percentile": float(percentile),
        "n_generated": len(gen_d),
        "n_flagged": len(flagged),
        "fraction_flagged": float(len(flagged) / len(gen_d)),
        "flagged": flagged.tolist(),
        "flagged_train_index": gen_i[flagged].tolist(),
        "generated_median": float(np.median(gen_d)),
        "generated_min": float(gen_d.min()),
        "real_test_median": float(np.median(test_d)),
        "real_test_min": float(test_d.min()),
        "generated_distances": gen_d,
        "nearest_train_index": gen_i,
        "real_test_distances": test_d,
    }
