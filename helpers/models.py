"""Model builders and training utilities shared by the image chapters.

Every builder returns a functional Keras model whose last two layers are a ``Dense`` layer
named ``logits`` and an activation named ``probability`` (sigmoid for one output, softmax
for several). Keeping the logits reachable lets :func:`predict_logits` feed temperature
scaling, :func:`penultimate_features` feed feature-space distances, and :func:`grad_cam`
take gradients before the squashing non-linearity. Inputs are images scaled to [0, 1],
``(height, width, channels)`` with 1 or 3 channels.
"""

# ruff: noqa: I001  (the import order below is deliberate)
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# helpers.config imports TensorFlow with its start-up messages silenced: it must come first.
from . import config  # noqa: F401
from . import data  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

#: Keras Applications backbones known to :func:`pretrained_backbone`, with the input
#: scaling each expects: ``raw255`` (the model rescales 0-255 itself), ``tf`` ([-1, 1]) or
#: ``torch`` (ImageNet mean/std on [0, 1]).
BACKBONES: dict[str, str] = {
    "EfficientNetB0": "raw255",
    "DenseNet121": "torch",
    "ResNet50V2": "tf",
    "MobileNetV2": "tf",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_input_shape(input_shape: Sequence[int], min_size: int = 8) -> tuple[int, int, int]:
    """Validate an image input shape ``(height, width, channels)`` and return it as a tuple.

    Channels must be 1 (grey-scale, e.g. X-rays) or 3 (colour); height and width must be at
    least ``min_size`` pixels. Anything else raises ``ValueError`` naming the problem: the
    seed article's ``(224, 224, 3)`` network silently expected colour photographs.
    """
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    height, width, channels = shape
    if channels not in (1, 3):
        raise ValueError(f"input_shape must have 1 or 3 channels, got {channels} in {shape}")
    if height < min_size or width < min_size:
        raise ValueError(
            f"images of {height}x{width} px are too small for this model "
            f"(at least {min_size}x{min_size} px)"
        )
    return height, width, channels


def _head(x: Any, n_classes: int) -> Any:
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1 (1 = binary with a sigmoid), not {n_classes}")
    logits = keras.layers.Dense(n_classes, name="logits")(x)
    activation = "sigmoid" if n_classes == 1 else "softmax"
    # float32 output even under mixed precision, so probabilities are not rounded to 1.
    return keras.layers.Activation(activation, dtype="float32", name="probability")(logits)


def seed_cnn(input_shape: Sequence[int] = (28, 28, 1), n_classes: int = 1) -> keras.Model:
    """The seed article's CNN, corrected for the data: three conv/pool blocks, Dense(512).

    Conv(32)-Pool-Conv(64)-Pool-Conv(128)-Pool, 3x3 kernels without padding, ReLU, then
    Flatten, Dense(512, ReLU) and the output layer. The article hard-coded
    ``input_shape=(224, 224, 3)``; here the shape is the data's. Images smaller than 22 px
    leave nothing after the third block and raise ``ValueError``.
    """
    height, width, channels = check_input_shape(input_shape, min_size=22)
    inputs = keras.Input((height, width, channels), name="image")
    x = inputs
    for filters in (32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, activation="relu", name=f"conv{filters}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{filters}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(512, activation="relu", name="dense512")(x)
    return keras.Model(inputs, _head(x, n_classes), name="seed_cnn")


@keras.saving.register_keras_serializable(package="dl4h")
class PerImageStandardization(keras.layers.Layer):
    """Subtract each image's mean intensity and divide by its standard deviation.

    Film brightness and contrast depend on exposure and on the X-ray machine as much as on
    the patient; standardising every image removes that global cue, so the network has to
    use the pattern inside the lungs instead.

    With ``per_channel`` each colour channel is standardised on its own: a fundus camera's
    or a stain's colour balance (a per-channel gain and offset) is removed as well. For
    grey-scale images both settings give the same result.
    """

    def __init__(self, per_channel: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.per_channel = bool(per_channel)

    def call(self, inputs):
        axes = (1, 2) if self.per_channel else (1, 2, 3)
        mean = keras.ops.mean(inputs, axis=axes, keepdims=True)
        std = keras.ops.std(inputs, axis=axes, keepdims=True)
        return (inputs - mean) / (std + 1e-3)

    def get_config(self):
        return {**super().get_config(), "per_channel": self.per_channel}


def chest_augmentation(
    rotation_deg: float = 10.0,
    shift: float = 0.08,
    zoom: float = 0.1,
    contrast: float = 0.2,
    seed: int | None = None,
) -> keras.Sequential:
    """Random-transform layers suited to chest films, active only during training.

    Small rotations (``rotation_deg`` degrees either way), translations (``shift`` of the
    image size), zoom and contrast changes mimic differences in patient positioning and
    exposure. There is deliberately no horizontal flip: laterality matters (the heart is
    on the left; a flipped film shows dextrocardia).
    """
    return keras.Sequential(
        [
            keras.layers.RandomRotation(rotation_deg / 360.0, fill_mode="nearest", seed=seed),
            keras.layers.RandomTranslation(shift, shift, fill_mode="nearest", seed=seed),
            keras.layers.RandomZoom(zoom, fill_mode="nearest", seed=seed),
            keras.layers.RandomContrast(contrast, seed=seed),
        ],
        name="augmentation",
    )


#: Augmentation by imaging modality (:func:`augmentation_for`). Each entry lists the
#: random transforms that leave the label unchanged for that kind of image, and the
#: deterministic transforms averaged at test time (``tta``, see :func:`predict_tta`).
#: Flips are only allowed where laterality carries no information for the label:
#: a chest film or a CT slice with left/right organ labels must never be mirrored; a
#: fundus photograph graded for diabetic retinopathy, a skin lesion or a microscopy tile
#: can be flipped and rotated freely. Brightness and per-channel contrast jitter are not
#: listed: the per-image (per-channel) standardisation of the builders removes them anyway.
MODALITIES: dict[str, dict[str, Any]] = {
    "chest_xray": {
        "why": "projection radiographs: small positioning and exposure changes; no flips "
        "(the heart is on the left)",
        "rotation_deg": 10.0,
        "shift": 0.08,
        "zoom": 0.1,
        "contrast": 0.2,
        "flip": None,
        "fill_mode": "nearest",
        "saturation": 0.0,
        "tta": ("identity",),
    },
    "fundus": {
        "why": "colour fundus photographs graded for a disease: the grade does not depend on "
        "which eye or on the image's orientation, so flips and any rotation are allowed; "
        "mild saturation jitter for camera colour differences; black surround",
        "rotation_deg": 180.0,
        "shift": 0.05,
        "zoom": 0.1,
        "contrast": 0.0,
        "flip": "horizontal_and_vertical",
        "fill_mode": "constant",
        "saturation": 0.2,
        "tta": ("identity", "flip_h", "flip_v", "rot180"),
    },
    "dermoscopy": {
        "why": "skin-lesion photographs: no canonical orientation; flips and rotations",
        "rotation_deg": 180.0,
        "shift": 0.05,
        "zoom": 0.1,
        "contrast": 0.0,
        "flip": "horizontal_and_vertical",
        "fill_mode": "reflect",
        "saturation": 0.2,
        "tta": ("identity", "flip_h", "flip_v", "rot180"),
    },
    "microscopy": {
        "why": "histology, blood smears, tissue sections: no canonical orientation; flips "
        "and rotations; stain colour varies",
        "rotation_deg": 180.0,
        "shift": 0.05,
        "zoom": 0.05,
        "contrast": 0.0,
        "flip": "horizontal_and_vertical",
        "fill_mode": "reflect",
        "saturation": 0.2,
        "tta": ("identity", "flip_h", "flip_v", "rot180"),
    },
    "cross_section": {
        "why": "ultrasound and OCT B-scans: depth runs top to bottom (no vertical flip); a "
        "left-right mirror shows the same tissue",
        "rotation_deg": 10.0,
        "shift": 0.08,
        "zoom": 0.1,
        "contrast": 0.0,
        "flip": "horizontal",
        "fill_mode": "nearest",
        "saturation": 0.0,
        "tta": ("identity", "flip_h"),
    },
    "default": {
        "why": "unknown or laterality-sensitive images (e.g. CT slices whose labels say left "
        "or right): small geometric changes only, no flips",
        "rotation_deg": 10.0,
        "shift": 0.08,
        "zoom": 0.1,
        "contrast": 0.0,
        "flip": None,
        "fill_mode": "nearest",
        "saturation": 0.0,
        "tta": ("identity",),
    },
}

#: The imaging modality of each MedMNIST 2D set (MedMNIST v2, Yang et al. 2023).
MEDMNIST_MODALITY: dict[str, str] = {
    "pneumoniamnist": "chest_xray",
    "chestmnist": "chest_xray",
    "retinamnist": "fundus",
    "dermamnist": "dermoscopy",
    "pathmnist": "microscopy",
    "bloodmnist": "microscopy",
    "tissuemnist": "microscopy",
    "breastmnist": "cross_section",
    "octmnist": "cross_section",
    "organamnist": "default",  # CT slices: labels name left and right organs
    "organcmnist": "default",
    "organsmnist": "default",
}


def modality_of(name: str) -> str:
    """The :data:`MODALITIES` key for a MedMNIST flag (``'retinamnist'`` -> ``'fundus'``),
    or ``name`` itself when it already is a modality; anything else gets ``'default'``.
    A size suffix (``'retinamnist_64'``) is ignored."""
    key = str(name).strip().lower()
    if key in MODALITIES:
        return key
    flag = key.split("_")[0] if key.rsplit("_", 1)[-1].isdigit() else key
    return MEDMNIST_MODALITY.get(flag, "default")


def augmentation_for(name: str, seed: int | None = None) -> keras.Sequential:
    """Training-time augmentation for a dataset or modality (see :data:`MODALITIES`).

    ``name`` is a MedMNIST flag (``'pneumoniamnist'``, ``'retinamnist'``...) or a modality
    (``'chest_xray'``, ``'fundus'``, ...). Chest films get exactly :func:`chest_augmentation`;
    fundus photographs, skin and microscopy images also get flips and any rotation, and
    colour images a mild saturation jitter. The layers act only during training.
    """
    modality = modality_of(name)
    spec = MODALITIES[modality]
    if modality == "chest_xray":
        return chest_augmentation(seed=seed)
    layers: list[keras.Layer] = []
    if spec["flip"]:
        layers.append(keras.layers.RandomFlip(spec["flip"], seed=seed))
    fill = spec["fill_mode"]
    layers += [
        keras.layers.RandomRotation(spec["rotation_deg"] / 360.0, fill_mode=fill, seed=seed),
        keras.layers.RandomTranslation(spec["shift"], spec["shift"], fill_mode=fill, seed=seed),
        keras.layers.RandomZoom(spec["zoom"], fill_mode=fill, seed=seed),
    ]
    if spec["contrast"]:
        layers.append(keras.layers.RandomContrast(spec["contrast"], seed=seed))
    if spec["saturation"]:
        layers.append(_SaturationJitter(spec["saturation"], seed=seed))
    return keras.Sequential(layers, name="augmentation")


@keras.saving.register_keras_serializable(package="dl4h")
class _SaturationJitter(keras.layers.Layer):
    """Blend each colour image with its grey version by a random factor in
    ``[1 - amount, 1 + amount]`` (training only); grey-scale inputs pass unchanged."""

    def __init__(self, amount: float = 0.2, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.amount = float(amount)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or inputs.shape[-1] != 3:
            return inputs
        n = keras.ops.shape(inputs)[0]
        factor = keras.random.uniform(
            (n, 1, 1, 1), 1 - self.amount, 1 + self.amount, seed=self.generator
        )
        factor = keras.ops.cast(factor, inputs.dtype)
        grey = keras.ops.mean(inputs, axis=-1, keepdims=True)
        return keras.ops.clip(grey + factor * (inputs - grey), 0.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "amount": self.amount, "seed": self.seed}


#: Deterministic image transforms for test-time augmentation, on ``(n, h, w, c)`` arrays.
TTA_TRANSFORMS = {
    "identity": lambda x: x,
    "flip_h": lambda x: x[:, :, ::-1],
    "flip_v": lambda x: x[:, ::-1],
    "rot180": lambda x: x[:, ::-1, ::-1],
}


def tta_for(name: str) -> tuple[str, ...]:
    """The test-time transforms allowed for a dataset or modality (:data:`MODALITIES`)."""
    return tuple(MODALITIES[modality_of(name)]["tta"])


def improved_cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    n_classes: int = 1,
    *,
    widths: Sequence[int] = (32, 64, 128),
    convs_per_block: int = 1,
    batch_norm: bool = True,
    dropout: float = 0.3,
    augment: bool | keras.Layer = True,
    standardize: bool = True,
    seed: int | None = None,
) -> keras.Model:
    """A small CNN for medical images, built in this order:

    1. augmentation, active only in training: ``augment=True`` uses
       :func:`chest_augmentation` (made for chest films: no flips), ``False`` none, or pass
       any Keras layer or ``Sequential`` suited to another modality;
    2. with ``standardize``, a :class:`PerImageStandardization` layer (each image, and each
       colour channel of an RGB image, to mean 0, sd 1), so the network cannot lean on a
       film's overall brightness (exposure) or a camera's colour balance;
    3. one block per entry of ``widths``: ``convs_per_block`` 3x3 'same' convolutions, each
       followed by batch normalisation (momentum 0.9, when ``batch_norm``) and ReLU, and a 2x2
       max-pool after every block but the last;
    4. global average pooling (layer ``gap``), dropout (``dropout``, if > 0) and the output
       layers of :func:`_head` (a named ``logits`` Dense layer and a float32 sigmoid/softmax).

    The last convolution is named ``last_conv`` (:func:`grad_cam` reads it). Switching the
    options off gives the ablation variants. There are no residual connections.
    """
    height, width, channels = check_input_shape(input_shape, min_size=2 ** len(widths))
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), not {dropout}")
    if convs_per_block < 1:
        raise ValueError(f"convs_per_block must be >= 1, not {convs_per_block}")
    inputs = keras.Input((height, width, channels), name="image")
    if augment is True:
        augment = chest_augmentation(seed=seed)
    x = augment(inputs) if augment else inputs
    if standardize:
        x = PerImageStandardization(per_channel=True, name="standardize")(x)
    for block, filters in enumerate(widths):
        for k in range(convs_per_block):
            last = block == len(widths) - 1 and k == convs_per_block - 1
            x = keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                use_bias=not batch_norm,
                name="last_conv" if last else f"conv{block}_{k}",
            )(x)
            if batch_norm:
                # momentum 0.9, not Keras' 0.99: the moving variance starts at 1 while these
                # activations vary far less, and at 0.99 inference outputs stay constant
                # for several epochs (validation AUC 0.5 on PneumoniaMNIST).
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{block}_{k}")(x)
            x = keras.layers.Activation("relu", name=f"relu{block}_{k}")(x)
        if block < len(widths) - 1:
            x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _head(x, n_classes), name="improved_cnn")


def small_resnet(
    input_shape: Sequence[int] = (28, 28, 1),
    n_classes: int = 1,
    *,
    widths: Sequence[int] = (32, 64, 128),
    blocks_per_stage: int = 1,
    dropout: float = 0.3,
    augment: bool | keras.Layer = True,
    standardize: bool = True,
    seed: int | None = None,
) -> keras.Model:
    """A small residual network (He et al., CVPR 2016) for 28-64 px medical images.

    Augmentation and per-image (per-channel) standardisation as in :func:`improved_cnn`,
    a 3x3 stem convolution with ``widths[0]`` filters, then one stage per entry of
    ``widths`` with ``blocks_per_stage`` basic residual blocks (two 3x3 convolutions with
    batch normalisation, the input added back before the last ReLU; the first block of
    every stage but the first halves the resolution with stride 2 and projects the shortcut
    with a 1x1 convolution). Then global average pooling (``gap``), dropout and the
    ``logits``/``probability`` head. The last convolution is named ``last_conv``.
    """
    height, width, channels = check_input_shape(input_shape, min_size=2 ** len(widths))
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), not {dropout}")
    if blocks_per_stage < 1:
        raise ValueError(f"blocks_per_stage must be >= 1, not {blocks_per_stage}")
    layers = keras.layers

    def bn(name: str) -> keras.Layer:
        return layers.BatchNormalization(momentum=0.9, name=name)  # see improved_cnn

    inputs = keras.Input((height, width, channels), name="image")
    if augment is True:
        augment = chest_augmentation(seed=seed)
    x = augment(inputs) if augment else inputs
    if standardize:
        x = PerImageStandardization(per_channel=True, name="standardize")(x)
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem")(x)
    x = layers.Activation("relu", name="stem_relu")(bn("stem_bn")(x))
    for stage, filters in enumerate(widths):
        for block in range(blocks_per_stage):
            name = f"s{stage}b{block}"
            stride = 2 if stage > 0 and block == 0 else 1
            last = stage == len(widths) - 1 and block == blocks_per_stage - 1
            shortcut = x
            if stride != 1 or x.shape[-1] != filters:
                shortcut = layers.Conv2D(
                    filters, 1, strides=stride, use_bias=False, name=f"{name}_proj"
                )(x)
                shortcut = bn(f"{name}_proj_bn")(shortcut)
            y = layers.Conv2D(
                filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1"
            )(x)
            y = layers.Activation("relu", name=f"{name}_relu1")(bn(f"{name}_bn1")(y))
            y = layers.Conv2D(
                filters,
                3,
                padding="same",
                use_bias=False,
                name="last_conv" if last else f"{name}_conv2",
            )(y)
            y = bn(f"{name}_bn2")(y)
            x = layers.Activation("relu", name=f"{name}_out")(
                layers.Add(name=f"{name}_add")([shortcut, y])
            )
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _head(x, n_classes), name="small_resnet")


def _weights_offline() -> bool:
    return data.offline()


def pretrained_backbone(
    input_shape: Sequence[int] = (224, 224, 1),
    n_classes: int = 1,
    *,
    name: str = "EfficientNetB0",
    weights: str | None = "imagenet",
    dropout: float = 0.3,
    augment: bool = True,
    trainable: bool = True,
    seed: int | None = None,
) -> keras.Model:
    """An ImageNet backbone from Keras Applications with a new head for medical images.

    Grey-scale inputs in [0, 1] are repeated to three channels and scaled the way the
    backbone expects (see :data:`BACKBONES`). ImageNet weights are downloaded on first use;
    when that is impossible (``DL4H_OFFLINE`` set, no network) a message says so and the
    backbone starts from random weights (``weights=None``), which trains but needs far more
    data. ``trainable=False`` freezes the backbone (feature extraction).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    height, width, channels = check_input_shape(input_shape, min_size=32)
    application = getattr(keras.applications, name)
    backbone = None
    if weights == "imagenet" and _weights_offline():
        print(
            f"{name}: offline mode (DL4H_OFFLINE is set), so no ImageNet weights can be "
            "downloaded; using weights=None (random initialisation)."
        )
        weights = None
    if weights is not None:
        try:
            backbone = application(
                include_top=False, weights=weights, input_shape=(height, width, 3)
            )
        except Exception as error:  # noqa: BLE001  (urllib, OSError, HTTP errors, bad files)
            print(
                f"{name}: could not load the {weights!r} weights ({type(error).__name__}: "
                f"{error}); using weights=None (random initialisation). Go online once, "
                "or copy the weights file into ~/.keras/models, to use the pretrained model."
            )
    if backbone is None:
        backbone = application(include_top=False, weights=None, input_shape=(height, width, 3))
    backbone.trainable = trainable
    inputs = keras.Input((height, width, channels), name="image")
    if augment is True:
        augment = chest_augmentation(seed=seed)
    x = augment(inputs) if augment else inputs
    if channels == 1:
        x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])
    scaling = BACKBONES[name]
    if scaling == "raw255":
        x = keras.layers.Rescaling(255.0, name="to_0_255")(x)
    elif scaling == "tf":
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(x)
    else:
        x = keras.layers.Normalization(
            mean=IMAGENET_MEAN, variance=[s**2 for s in IMAGENET_STD], name="imagenet_norm"
        )(x)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)  # its input: the maps Grad-CAM uses
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _head(x, n_classes), name=f"{name.lower()}_transfer")


def compile_model(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    """Compile with Adam, cross-entropy and accuracy + ROC AUC (named ``auc``) metrics.

    One output unit means binary labels (0/1) and binary cross-entropy; several mean one-hot
    labels and categorical cross-entropy. The AUC metric is what the callbacks monitor
    (``val_auc``). Returns the model for chaining.
    """
    binary = model.output_shape[-1] == 1
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy" if binary else "categorical_crossentropy",
        metrics=[
            keras.metrics.BinaryAccuracy(name="accuracy")
            if binary
            else keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.AUC(name="auc"),
        ],
    )
    return build_optimizer(model)


def build_optimizer(model: keras.Model) -> keras.Model:
    """Create the optimizer's variables of a compiled ``model`` now; returns the model.

    Keras (TensorFlow backend) otherwise creates them, like string metrics such as
    ``"accuracy"``, inside the first traced training step, and a ``tf.function`` whose first
    trace creates variables is traced a second time. Tracing is most of a short ``fit``: the
    CNN benchmark's gpu-path test (one epoch of EfficientNetB0 on 40 films at 224 px, mixed
    precision) took 89-109 s with two traces and 75 s with one on 2 cores; chapter 01's small
    network 1.6-1.7 s per fit with two, 0.9-1.1 s with one. The numbers do not change: the
    variables start at the same zeros. For a single trace, compile with metric objects
    (``keras.metrics.BinaryAccuracy(name="accuracy")``), not strings.
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"model {model.name!r} is not compiled: compile it first")
    model.optimizer.build(model.trainable_variables)
    return model


def training_callbacks(
    checkpoint_path: str | Path | None = None,
    *,
    monitor: str = "val_auc",
    patience: int | None = 8,
    min_epochs: int = 0,
    lr_patience: int | None = 3,
    lr_factor: float = 0.5,
    min_lr: float = 1e-5,
) -> list[keras.callbacks.Callback]:
    """Early stopping (best weights restored), an LR schedule and checkpointing on ``monitor``.

    Training stops after ``patience`` epochs without a better ``monitor`` (validation AUC by
    default, maximised) and the best epoch's weights are put back (``patience=None``: no early
    stopping, the last epoch's weights stay); the first ``min_epochs``
    epochs, while batch-norm statistics and the metric are still noisy, can neither stop
    training nor be chosen as the best (the checkpoint file does not wait). ``lr_patience`` epochs
    without progress halve the learning rate (``None`` switches the schedule off). With a
    ``checkpoint_path`` (ending in ``.weights.h5``) the best weights are also written to disk.
    """
    mode = "min" if "loss" in monitor else "max"
    callbacks: list[keras.callbacks.Callback] = []
    if patience is not None:  # None: no early stopping, the last epoch's weights stay
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                mode=mode,
                patience=patience,
                start_from_epoch=min_epochs,
                restore_best_weights=True,
                verbose=0,
            )
        )
    if lr_patience is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor,
                mode=mode,
                factor=lr_factor,
                patience=lr_patience,
                min_lr=min_lr,
                verbose=0,
            )
        )
    if checkpoint_path is not None:
        path = str(checkpoint_path)
        if not path.endswith(".weights.h5"):
            raise ValueError(f"checkpoint_path must end with '.weights.h5', got {path!r}")
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                path,
                monitor=monitor,
                mode=mode,
                save_best_only=True,
                save_weights_only=True,
                verbose=0,
            )
        )
    return callbacks


def balanced_class_weight(labels: np.ndarray) -> dict[int, float]:
    """Class weights ``n / (k * count_c)`` that make every class count equally in the loss.

    For PneumoniaMNIST's training split (about one normal film for three with pneumonia)
    the normal class gets roughly three times the weight of the pneumonia class.
    """
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        raise ValueError("no labels to weight")
    classes, counts = np.unique(labels, return_counts=True)
    return {
        int(c): float(labels.size / (len(classes) * n))
        for c, n in zip(classes, counts, strict=True)
    }


def train(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 64,
    monitor: str = "val_loss",
    patience: int | None = 8,
    min_epochs: int = 0,
    lr_patience: int | None = None,
    lr_factor: float | None = 0.5,
    min_lr: float = 1e-5,
    class_weight: dict[int, float] | None = None,
    checkpoint_path: str | Path | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, Any]:
    """The course's one early-stopping loop, for any compiled model (images or sequences).

    Trains for at most ``epochs``; after ``patience`` epochs without a better ``monitor``
    (a loss is minimised, anything else maximised) training stops and the best epoch's
    weights are restored; the first ``min_epochs`` epochs can neither stop training nor be
    chosen. ``lr_patience`` epochs without progress (default ``max(1, patience // 2)``)
    multiply the learning rate by ``lr_factor`` (``None``: no schedule), not below
    ``min_lr``. The test set never enters here. Returns the Keras history as a dict (one
    value per epoch run for each metric) plus ``best_epoch`` (1-based: the epoch whose
    weights the model now holds) and ``epochs_run``. Mismatched lengths raise ``ValueError``.
    ``patience=None`` trains all ``epochs`` and keeps the last epoch's weights (for a fixed
    schedule); ``callbacks`` are added to the loop's own.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    for name, x, y in (("training", x_train, y_train), ("validation", x_val, y_val)):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} {name} inputs but {len(y)} labels")
    schedule = None if lr_factor is None else (lr_patience or max(1, (patience or 2) // 2))
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=batch_size,
        class_weight=class_weight,
        verbose=0,
        callbacks=training_callbacks(
            checkpoint_path,
            monitor=monitor,
            patience=patience,
            min_epochs=min_epochs,
            lr_patience=schedule,
            lr_factor=lr_factor or 0.5,
            min_lr=min_lr,
        )
        + list(callbacks),
    ).history
    values = np.asarray(history[monitor], dtype=float)
    eligible = values[min_epochs:]
    if eligible.size == 0 or patience is None:  # the last epoch's weights stay
        best = len(values)
    else:
        pick = np.argmin if "loss" in monitor else np.argmax
        best = min_epochs + int(pick(eligible)) + 1
    return {**history, "best_epoch": best, "epochs_run": len(values)}


def fit_classifier(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int = 8,
    min_epochs: int = 0,
    lr_patience: int | None = 3,
    class_weight: bool = True,
    checkpoint_path: str | Path | None = None,
    schedule: str = "plateau",
    snapshots: int = 0,
) -> dict[str, Any]:
    """Chapter 04's training recipe: compile, class weights, early stopping on validation AUC.

    ``model`` is built by the caller (so the caller chooses the architecture and seed); labels
    are integer class indices, shape ``(n,)`` or ``(n, 1)``, and are turned into the targets the
    output layer expects (0/1 for one unit, one-hot for several). With ``class_weight`` every
    class counts equally in the loss (:func:`balanced_class_weight`). Training is
    :func:`train` on ``val_auc`` (``lr_patience=None`` switches the learning-rate schedule
    off); the epoch with the best validation AUC after ``min_epochs`` is restored. Returns
    what :func:`train` returns: the history (``result["val_auc"]`` has one value per epoch
    run), ``best_epoch`` and ``epochs_run``.

    ``schedule="cosine"`` is the fixed-length alternative: the learning rate follows a
    cosine from ``learning_rate`` to 0 over all ``epochs`` (Loshchilov & Hutter, ICLR 2017),
    with no early stopping and no plateau schedule; the last epoch's weights stay. With
    ``snapshots=k`` the weights of the last ``k`` epochs are also returned, as
    ``result["snapshots"]`` (a list of weight lists, oldest first) for a snapshot ensemble
    (:func:`predict_tta`).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if schedule not in ("plateau", "cosine"):
        raise ValueError(f"schedule must be 'plateau' or 'cosine', not {schedule!r}")
    n_out = int(model.output_shape[-1])

    def targets(labels: np.ndarray, name: str) -> np.ndarray:
        labels = np.asarray(labels).reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= max(n_out, 2)):
            raise ValueError(
                f"{name} must hold class indices 0..{max(n_out, 2) - 1} for a model "
                f"with {n_out} output unit(s); found {labels.min()}..{labels.max()}"
            )
        if n_out == 1:
            return labels.astype("float32")
        return np.eye(n_out, dtype="float32")[labels.astype(int)]

    cosine = schedule == "cosine"
    if cosine:
        steps = epochs * int(np.ceil(len(x_train) / batch_size))
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    compile_model(model, learning_rate)
    collector = _Snapshots(epochs, snapshots)
    result = train(
        model,
        x_train,
        targets(y_train, "y_train"),
        x_val,
        targets(y_val, "y_val"),
        epochs=epochs,
        batch_size=batch_size,
        monitor="val_auc",
        patience=None if cosine else patience,
        min_epochs=min_epochs,
        lr_patience=None if cosine else lr_patience,
        lr_factor=None if cosine or lr_patience is None else 0.5,
        class_weight=balanced_class_weight(y_train) if class_weight else None,
        checkpoint_path=checkpoint_path,
        callbacks=[collector] if snapshots else [],
    )
    if snapshots:
        result["snapshots"] = collector.weights
    return result


#: Set to ``0`` to switch :func:`fit_classifier_cached`'s cache off (always train, store nothing).
MODEL_CACHE_ENV = "DL4H_MODEL_CACHE"


def model_cache_key(model: keras.Model, arrays: Sequence[np.ndarray], **recipe: Any) -> str:
    """The cache key of a training run: architecture, data, recipe and library versions.

    The architecture is the model's full Keras configuration (layers, sizes, initializers and
    their seeds); the data are the bytes, shapes and dtypes of ``arrays``; ``recipe`` holds
    everything else that shapes training, including the seed the caller set before it. The
    versions are Keras's, TensorFlow's and NumPy's (a new release may train differently),
    and the source of this module (a changed default or training loop trains anew).
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(model.get_config(), sort_keys=True, default=repr).encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}|{array.dtype}".encode())
        digest.update(array.tobytes())
    versions = {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__}
    # the training code itself: any change to this module (a default, the loop) trains anew
    digest.update(Path(__file__).read_bytes())
    digest.update(json.dumps({"recipe": recipe, **versions}, sort_keys=True, default=repr).encode())
    return f"{model.name}_{digest.hexdigest()[:20]}"


def fit_classifier_cached(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    seed: int,
    **recipe: Any,
) -> dict[str, Any]:
    """:func:`fit_classifier`, or the weights and history it gave before for the same run.

    A chapter that retrains a model another run already trained (chapter 09's ensemble
    members are chapter 04's CNN recipe with their own seeds) loads it from the model cache
    instead: ``data.cache_dir("models")``, which is ``<data root>/cache/models`` (or
    ``build/cache/models`` when the data root is read-only). The key
    (:func:`model_cache_key`) covers the architecture, the training and validation data, the
    recipe, ``seed`` (what the caller passed to ``config.set_seed`` before building the
    model) and the Keras, TensorFlow and NumPy versions, so anything that would train a
    different model trains anew. A missing or unreadable entry falls back to training and
    stores the result; ``DL4H_MODEL_CACHE=0`` always trains and stores nothing. The result
    is :func:`fit_classifier`'s, plus ``cached`` (True when loaded) and ``cache_key``.
    Snapshot ensembles (``snapshots``) are not cached.
    """
    if recipe.get("snapshots"):
        raise ValueError("fit_classifier_cached does not cache snapshot ensembles")
    keyed = {k: v for k, v in recipe.items() if k != "checkpoint_path"}  # where, not what
    key = model_cache_key(model, (x_train, y_train, x_val, y_val), seed=seed, **keyed)
    use_cache = os.environ.get(MODEL_CACHE_ENV, "1") != "0"
    folder = data.cache_dir("models") / key if use_cache else None
    if folder is not None and (folder / "history.json").is_file():
        try:
            model.load_weights(folder / "model.weights.h5")
            history = json.loads((folder / "history.json").read_text())
        except (OSError, ValueError, KeyError):
            pass  # an unreadable entry is retrained and replaced, never trusted
        else:
            compile_model(model, recipe.get("learning_rate", 1e-3))
            return {**history, "cached": True, "cache_key": key}
    result = fit_classifier(model, x_train, y_train, x_val, y_val, **recipe)
    if folder is not None:
        staging = Path(tempfile.mkdtemp(prefix=f".{key}_", dir=folder.parent))
        model.save_weights(staging / "model.weights.h5")
        (staging / "history.json").write_text(json.dumps(result, default=float))
        shutil.rmtree(folder, ignore_errors=True)  # an unreadable entry it replaces
        try:
            staging.rename(folder)
        except OSError:  # another run stored the same key meanwhile: keep that one
            shutil.rmtree(staging, ignore_errors=True)
    return {**result, "cached": False, "cache_key": key}


class _Snapshots(keras.callbacks.Callback):
    """Keep copies of the weights after each of the last ``keep`` of ``epochs`` epochs."""

    def __init__(self, epochs: int, keep: int):
        super().__init__()
        self.first = epochs - keep
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.first:
            self.weights.append([np.array(w) for w in self.model.get_weights()])


def predict_tta(
    model: keras.Model,
    x: np.ndarray,
    transforms: Sequence[str] = ("identity",),
    snapshots: Sequence[Sequence[np.ndarray]] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Probabilities averaged over test-time transforms and weight snapshots.

    ``transforms`` are names from :data:`TTA_TRANSFORMS` (:func:`tta_for` gives those
    a modality allows: flips for fundus photographs, none for chest films); ``snapshots``
    are weight lists (``fit_classifier(..., snapshots=k)["snapshots"]``), each loaded in
    turn; the model keeps the last one's weights afterwards. Without either this is
    ``model.predict``. Returns ``(n, outputs)`` like ``model.predict``.
    """
    x = _check_images(model, x)
    unknown = [t for t in transforms if t not in TTA_TRANSFORMS]
    if unknown or not transforms:
        raise ValueError(f"transforms must be names from {list(TTA_TRANSFORMS)}, got {unknown}")
    total = None
    count = 0
    for weights in snapshots or [None]:
        if weights is not None:
            model.set_weights(weights)
        for name in transforms:
            view = np.ascontiguousarray(TTA_TRANSFORMS[name](x))
            out = np.asarray(model.predict(view, batch_size=batch_size, verbose=0), np.float64)
            total = out if total is None else total + out
            count += 1
    return total / count


def reference_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    patience: int = 3,
    min_epochs: int = 0,
    batch_size: int = 64,
    seed: int = 0,
) -> tuple[keras.Model, dict[str, Any]]:
    """Chapter 04's recipe trained as a *ruler*: a classifier that other checks measure with.

    Seeds everything with ``seed``, builds :func:`improved_cnn` for the images' shape (one
    sigmoid output) and trains it with :func:`fit_classifier` (class weights, the epoch
    chosen by validation AUC). The GAN chapter and its benchmark use it for TRTR and TSTR
    and as the feature extractor of the Fréchet distance, so both measure with the same
    ruler. Returns the model and what :func:`train` returned.
    """
    config.set_seed(seed)
    model = improved_cnn(x_train.shape[1:], 1, seed=seed)
    result = fit_classifier(
        model,
        x_train,
        y_train,
        x_val,
        y_val,
        epochs=epochs,
        batch_size=batch_size,
        patience=patience,
        min_epochs=min_epochs,
    )
    return model, result


def _check_images(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """``x`` as float32 if its shape fits the model's input (images or sequences)."""
    x = np.asarray(x, dtype=np.float32)
    expected = tuple(model.input_shape[1:])
    if x.ndim != len(expected) + 1 or any(
        want is not None and got != want for got, want in zip(x.shape[1:], expected, strict=True)
    ):
        raise ValueError(
            f"model expects inputs of shape (n, {', '.join(map(str, expected))}), got {x.shape}"
        )
    return x


# One sub-model per (model, tensor), built on first use: a new keras.Model per call would
# re-trace its predict function every time (slow, and TensorFlow warns about it).
_SUBMODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _submodel(model: keras.Model, which: str) -> keras.Model:
    """The model from the inputs to the ``logits`` layer's ``output`` or ``input``."""
    cache = _SUBMODELS.setdefault(model, {})
    if which not in cache:
        layer = model.get_layer("logits")
        cache[which] = keras.Model(model.inputs, getattr(layer, which))
    return cache[which]


def predict_logits(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's pre-activation outputs (the ``logits`` layer), in inference mode.

    Binary models give shape ``(n,)``; multi-class ``(n, classes)``. Use them with
    ``evaluation.fit_temperature``.
    """
    x = _check_images(model, x)
    out = _submodel(model, "output").predict(x, batch_size=batch_size, verbose=0)
    out = np.asarray(out, dtype=np.float64)
    return out[:, 0] if out.shape[-1] == 1 else out


def penultimate_features(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The representation the output layer sees (the input of ``logits``), ``(n, d)``.

    Computed in inference mode (no augmentation, no dropout). Chapter 06 compares real and
    synthetic images through these features (a Fréchet distance).
    """
    x = _check_images(model, x)
    feats = _submodel(model, "input").predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(feats, dtype=np.float64).reshape(len(x), -1)


def grad_cam(
    model: keras.Model,
    x: np.ndarray,
    layer_name: str | None = None,
    class_index: int = 0,
) -> np.ndarray:
    """Grad-CAM heat maps ``(n, height, width)`` in [0, 1] for one output unit.

    The gradient of the ``class_index`` logit with respect to a stack of feature maps is
    averaged over space to weight each map; the weighted sum, passed through ReLU, is
    resized to the input size and divided by its maximum (maps with no positive evidence
    stay zero). The maps are the output of ``layer_name``, or by default the input of the
    ``gap`` pooling layer (the last convolutional features of every builder here, the
    backbones' included). Selvaraju et al., ICCV 2017.
    """
    x = _check_images(model, x)
    try:
        layer = model.get_layer(layer_name or "gap")
    except ValueError as error:
        raise ValueError(
            f"model {model.name!r} has no layer {layer_name or 'gap'!r} for Grad-CAM"
        ) from error
    features_tensor = layer.output if layer_name else layer.input
    if len(features_tensor.shape) != 4:
        raise ValueError(
            f"layer {layer_name!r} is not a convolutional feature map "
            f"(output shape {features_tensor.shape})"
        )
    if not 0 <= class_index < model.get_layer("logits").output.shape[-1]:
        raise ValueError(f"class_index {class_index} is out of range for the model's outputs")
    probe = keras.Model(model.inputs, [features_tensor, model.get_layer("logits").output])
    maps = []
    for start in range(0, len(x), 64):
        batch = tf.convert_to_tensor(x[start : start + 64])
        with tf.GradientTape() as tape:
            features, logits = probe(batch, training=False)
            target = logits[:, class_index]
        grads = tape.gradient(target, features)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0].numpy()
        peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
        maps.append(np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0.0))
    return np.clip(np.concatenate(maps).astype(np.float32), 0.0, 1.0)
