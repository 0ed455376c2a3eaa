"""helpers.models, the recipe that transfers across MedMNIST sets: augmentation chosen by
imaging modality, per-channel standardisation, the small residual network, the cosine
schedule with weight snapshots, test-time augmentation, and the benchmark's RetinaMNIST
report (smoke profile)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from helpers import data, models
from tests.conftest import require


def _images(n=4, size=28, channels=3, seed=0):
    return np.random.default_rng(seed).random((n, size, size, channels)).astype("float32")


def _flips(augmentation):
    return [layer for layer in augmentation.layers if isinstance(layer, keras.layers.RandomFlip)]


# --------------------------------------------------------------------------- modality table
@pytest.mark.parametrize(
    "name, modality",
    [
        ("pneumoniamnist", "chest_xray"),
        ("retinamnist", "fundus"),
        ("RetinaMNIST_64", "fundus"),
        ("dermamnist", "dermoscopy"),
        ("bloodmnist", "microscopy"),
        ("breastmnist", "cross_section"),
        ("organamnist", "default"),  # labels say left and right: no flips
        ("fundus", "fundus"),
        ("some_new_set", "default"),
    ],
)
def test_modality_of(name, modality):
    assert models.modality_of(name) == modality


def test_every_medmnist_2d_set_has_a_modality_and_every_modality_is_complete():
    assert set(data.MEDMNIST_INFO) <= set(models.MEDMNIST_MODALITY)
    assert set(models.MEDMNIST_MODALITY.values()) <= set(models.MODALITIES)
    keys = {"why", "rotation_deg", "shift", "zoom", "contrast", "flip", "fill_mode", "tta"}
    for name, spec in models.MODALITIES.items():
        assert keys <= set(spec), name
        assert set(spec["tta"]) <= set(models.TTA_TRANSFORMS), name
        assert spec["tta"][0] == "identity", name
        if not spec["flip"]:  # no mirrored views at test time either
            assert spec["tta"] == ("identity",), name
        if spec["flip"] == "horizontal":
            assert set(spec["tta"]) == {"identity", "flip_h"}, name


def test_chest_films_are_never_flipped_and_fundus_photographs_are():
    chest = models.augmentation_for("pneumoniamnist", seed=0)
    assert not _flips(chest)
    assert [type(layer) for layer in chest.layers] == [
        type(layer) for layer in models.chest_augmentation().layers
    ]
    assert models.tta_for("pneumoniamnist") == ("identity",)
    fundus = models.augmentation_for("retinamnist", seed=0)
    assert [flip.mode for flip in _flips(fundus)] == ["horizontal_and_vertical"]
    assert set(models.tta_for("retinamnist")) == {"identity", "flip_h", "flip_v", "rot180"}
    assert not _flips(models.augmentation_for("organamnist"))
    assert [f.mode for f in _flips(models.augmentation_for("breastmnist"))] == ["horizontal"]


@pytest.mark.parametrize("name", ["retinamnist", "breastmnist", "organamnist", "bloodmnist"])
def test_augmentation_is_off_at_inference_and_changes_images_in_training(name):
    channels = 3 if data.medmnist_info(name)["n_channels"] == 3 else 1
    x = _images(8, channels=channels)
    augmentation = models.augmentation_for(name, seed=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(augmentation(x, training=False)), x)
    out = keras.ops.convert_to_numpy(augmentation(x, training=True))
    assert out.shape == x.shape and not np.allclose(out, x)


def test_saturation_jitter_keeps_the_grey_level_and_leaves_grey_images_alone():
    layer = models._SaturationJitter(0.5, seed=0)
    x = _images(16) * 0.5 + 0.25  # away from the clip limits
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(out.mean(axis=-1), x.mean(axis=-1), atol=1e-5)
    assert not np.allclose(out, x)
    grey = _images(4, channels=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(grey, training=True)), grey)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)


# --------------------------------------------------------------------------- standardisation
def test_per_channel_standardisation_removes_a_colour_cast():
    x = _images(2)
    cast = x * np.array([1.5, 0.8, 0.5], "float32") + np.array([0.1, 0.0, 0.2], "float32")
    layer = models.PerImageStandardization(per_channel=True)
    a = keras.ops.convert_to_numpy(layer(x))
    b = keras.ops.convert_to_numpy(layer(cast))
    np.testing.assert_allclose(a, b, atol=1e-2)
    np.testing.assert_allclose(a.mean(axis=(1, 2)), 0, atol=1e-5)
    grey = _images(2, channels=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(grey)),
        keras.ops.convert_to_numpy(models.PerImageStandardization()(grey)),
        atol=1e-6,
    )
    config = layer.get_config()
    assert config["per_channel"] is True
    assert models.PerImageStandardization.from_config(config).per_channel


@pytest.mark.parametrize("builder", [models.improved_cnn, models.small_resnet])
def test_builders_standardise_each_colour_channel(builder):
    model = builder((28, 28, 3), 5, augment=False, seed=0)
    assert model.get_layer("standardize").per_channel
    assert model.output_shape == (None, 5)


# --------------------------------------------------------------------------- small ResNet
@pytest.mark.parametrize("n_classes, channels", [(1, 1), (5, 3)])
def test_small_resnet_shapes_named_layers_and_residual_adds(n_classes, channels):
    model = models.small_resnet((28, 28, channels), n_classes, blocks_per_stage=2, seed=0)
    assert model.output_shape == (None, n_classes)
    for name in ("gap", "logits", "probability", "last_conv", "augmentation", "standardize"):
        model.get_layer(name)
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 3 * 2
    # three stages: 28 -> 14 -> 7 px before global pooling
    assert tuple(model.get_layer("gap").input.shape[1:]) == (7, 7, 128)
    probabilities = model.predict(_images(3, channels=channels), verbose=0)
    assert np.isfinite(probabilities).all()
    heat = models.grad_cam(model, _images(2, channels=channels))
    assert heat.shape == (2, 28, 28)


def test_small_resnet_bad_arguments_raise():
    with pytest.raises(ValueError, match="blocks_per_stage"):
        models.small_resnet(blocks_per_stage=0)
    with pytest.raises(ValueError, match="dropout"):
        models.small_resnet(dropout=1.0)
    with pytest.raises(ValueError, match="channels"):
        models.small_resnet((28, 28, 2))


# --------------------------------------------------------------------------- schedule, TTA
def test_cosine_schedule_trains_every_epoch_and_keeps_snapshots():
    rng = np.random.default_rng(0)
    x = _images(32, channels=1)
    y = rng.integers(0, 2, 32)
    model = models.improved_cnn((28, 28, 1), widths=(8, 16), augment=False, seed=0)
    result = models.fit_classifier(
        model, x, y, x, y, epochs=3, batch_size=16, schedule="cosine", snapshots=2, patience=1
    )
    assert result["epochs_run"] == 3 and result["best_epoch"] == 3  # no early stop
    assert (
        isinstance(model.optimizer.learning_rate, keras.optimizers.schedules.LearningRateSchedule)
        or float(model.optimizer.learning_rate) < 1e-3
    )  # decayed towards 0
    snaps = result["snapshots"]
    assert len(snaps) == 2 and len(snaps[0]) == len(model.get_weights())
    # the model holds the last epoch's weights: the last snapshot
    for a, b in zip(snaps[-1], model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="schedule"):
        models.fit_classifier(model, x, y, x, y, epochs=1, schedule="step")


def test_predict_tta_averages_transforms_and_snapshots():
    model = models.improved_cnn((28, 28, 3), 5, widths=(8, 16), augment=False, seed=0)
    x = _images(6)
    plain = model.predict(x, verbose=0)
    np.testing.assert_allclose(models.predict_tta(model, x), plain, rtol=1e-5)
    flipped = model.predict(np.ascontiguousarray(x[:, :, ::-1]), verbose=0)
    np.testing.assert_allclose(
        models.predict_tta(model, x, ("identity", "flip_h")), (plain + flipped) / 2, rtol=1e-5
    )
    first = model.get_weights()
    second = [w * 0.5 if w.ndim > 1 else w for w in first]
    model.set_weights(second)
    halved = model.predict(x, verbose=0)
    mean = models.predict_tta(model, x, snapshots=[first, second])
    np.testing.assert_allclose(mean, (plain + halved) / 2, rtol=1e-5)
    with pytest.raises(ValueError, match="transforms"):
        models.predict_tta(model, x, ("mirror",))


# --------------------------------------------------------------------------- benchmark
def test_benchmark_chooses_augmentation_by_modality():
    from benchmarks import cnn_medmnist

    args = cnn_medmnist.parse_args(["--dataset", "retinamnist"])
    assert args.augmentation == "auto" and cnn_medmnist.augmentation_name(args) == "fundus"
    args = cnn_medmnist.parse_args([])
    assert cnn_medmnist.augmentation_name(args) == "chest_xray"
    args = cnn_medmnist.parse_args(["--dataset", "retinamnist", "--augmentation", "chest"])
    assert cnn_medmnist.augmentation_name(args) == "chest_xray"
    args = cnn_medmnist.parse_args(["--augmentation", "none"])
    assert cnn_medmnist.augmentation_name(args) == "none"


def test_benchmark_smoke_on_retinamnist_writes_a_multiclass_report(tmp_path):
    require("retinamnist")
    from benchmarks import cnn_medmnist

    out = tmp_path / "retina.json"
    cnn_medmnist.main(
        ["--dataset", "retinamnist", "--profile", "smoke", "--seeds", "0", "--out", str(out)]
    )
    report = json.loads(out.read_text())
    settings = report["settings"]
    assert settings["task"] == "ordinal-regression" and settings["n_test"] == 400
    assert settings["augmentation"] == "fundus"
    run = report["per_seed"][0]
    assert 0 <= run["test_auc"] <= 1 and 0 <= run["test_acc"] <= 1
    assert "threshold" not in run  # no binary operating point for five grades
    rows = report["reference"]["rows"]
    assert rows["Google AutoML Vision"] == {"test_auc": 0.750, "test_acc": 0.531}
    assert [t["metric"] for t in report["targets"]] == ["test_auc", "test_acc"]
    assert "fundus" in report["model_card"]["data"].lower()
    # five grades: the accuracy is the arg-max's, not a 0.5 threshold's
    assert report["metrics"]["test_acc"]["label"] == "test accuracy (arg-max)"


def test_benchmark_metric_labels_follow_the_task_and_the_schedule():
    from benchmarks import cnn_medmnist

    binary = cnn_medmnist.metrics_for("binary-class", "plateau", 0)
    assert binary["test_acc"]["label"] == "test accuracy (threshold 0.5)"
    assert binary["val_auc"]["label"] == "validation AUC (model and epoch chosen here)"
    ordinal = cnn_medmnist.metrics_for("ordinal-regression", "cosine", 5)
    assert ordinal["test_acc"]["label"] == "test accuracy (arg-max)"
    assert ordinal["val_auc"]["label"] == "validation AUC (fixed length, last 5 epochs averaged)"
    assert cnn_medmnist.metrics_for("binary-class", "cosine", 1)["val_auc"]["label"] == (
        "validation AUC (fixed length, last epoch)"
    )
    assert (
        cnn_medmnist.METRICS["test_acc"]["label"] == "test accuracy (threshold 0.5)"
    )  # not mutated
