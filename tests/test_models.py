"""helpers.models: builders, shapes, training utilities, Grad-CAM, the offline-weights path,
and the chapter 04 benchmark script in its smoke profile on real PneumoniaMNIST."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from helpers import config, data, models
from tests.conftest import count_train_step_traces, require


@pytest.fixture(scope="module")
def pneumonia32():
    """32 real PneumoniaMNIST training films (16 normal, 16 pneumonia) in [0, 1]."""
    require("pneumoniamnist")
    images, labels = data.load_medmnist("pneumoniamnist", "train")
    labels = labels.reshape(-1)
    pick = np.concatenate([np.flatnonzero(labels == 0)[:16], np.flatnonzero(labels == 1)[:16]])
    return data.as_float_images(images[pick]), labels[pick].astype("float32")


def _tiny_images(n=4, size=28, channels=1, seed=0):
    return np.random.default_rng(seed).random((n, size, size, channels)).astype("float32")


# --------------------------------------------------------------------------- shapes
def test_seed_cnn_matches_the_article_architecture_on_28px():
    model = models.seed_cnn((28, 28, 1))
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 1)
    # conv 3x3 (valid) + pool 2: 28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1, so Flatten gives 128.
    assert model.get_layer("flatten").output.shape[-1] == 128
    expected = (
        (9 * 1 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 128 + 128) + (128 * 512 + 512) + 513
    )
    assert model.count_params() == expected


def test_seed_cnn_still_builds_for_the_articles_224px_colour_shape():
    model = models.seed_cnn((224, 224, 3))
    assert model.get_layer("flatten").output.shape[-1] == 26 * 26 * 128


@pytest.mark.parametrize("n_classes, shape", [(1, (None, 1)), (4, (None, 4))])
def test_improved_cnn_outputs_and_named_layers(n_classes, shape):
    model = models.improved_cnn((28, 28, 1), n_classes)
    assert model.output_shape == shape
    assert model.get_layer("last_conv").output.shape[1:] == (7, 7, 128)
    probabilities = model.predict(_tiny_images(), verbose=0)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    if n_classes > 1:
        np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_augmentation_has_no_flip_and_is_off_at_inference():
    augmentation = models.chest_augmentation()
    names = [type(layer).__name__ for layer in augmentation.layers]
    assert "RandomFlip" not in names and "RandomRotation" in names
    model = models.improved_cnn((28, 28, 1), augment=True)
    x = _tiny_images()
    np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(x, verbose=0))
    changed = augmentation(x, training=True).numpy()
    assert not np.allclose(changed, x)  # in training mode the images do change
    np.testing.assert_allclose(augmentation(x, training=False).numpy(), x)


def test_per_image_standardization_removes_overall_brightness():
    x = _tiny_images(n=3)
    layer = models.PerImageStandardization()
    out = layer(x).numpy()
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1, atol=0.02)
    np.testing.assert_allclose(layer(0.7 * x).numpy(), out, atol=0.02)  # exposure-invariant
    model = models.improved_cnn((28, 28, 1), seed=0)
    inside = keras.Model(model.input, model.get_layer("standardize").output)(x).numpy()
    np.testing.assert_allclose(inside.mean(axis=(1, 2, 3)), 0, atol=1e-5)  # the model's own layer
    np.testing.assert_allclose(
        model.predict(0.8 * x, verbose=0), model.predict(x, verbose=0), atol=0.01
    )
    plain = models.improved_cnn((28, 28, 1), standardize=False)
    assert "standardize" not in [layer.name for layer in plain.layers]


@pytest.mark.parametrize(
    "shape, message",
    [
        ((28, 28), "height, width, channels"),
        ((28, 28, 2), "1 or 3 channels"),
        ((28, 28, 4), "1 or 3 channels"),
        ((4, 4, 1), "too small"),
    ],
)
def test_bad_input_shapes_raise(shape, message):
    with pytest.raises(ValueError, match=message):
        models.improved_cnn(shape)


def test_seed_cnn_refuses_images_too_small_for_three_blocks():
    with pytest.raises(ValueError, match="too small"):
        models.seed_cnn((16, 16, 1))


def test_bad_builder_arguments_raise():
    with pytest.raises(ValueError, match="dropout"):
        models.improved_cnn(dropout=1.0)
    with pytest.raises(ValueError, match="n_classes"):
        models.improved_cnn(n_classes=0)
    with pytest.raises(ValueError, match="convs_per_block"):
        models.improved_cnn(convs_per_block=0)


def test_predicting_images_of_the_wrong_shape_raises():
    model = models.improved_cnn((28, 28, 1))
    with pytest.raises(ValueError, match=r"model expects inputs of shape \(n, 28, 28, 1\)"):
        models.predict_logits(model, _tiny_images(size=32))
    with pytest.raises(ValueError, match="model expects inputs"):
        models.penultimate_features(model, np.zeros((28, 28)))


# --------------------------------------------------------------------------- training
def test_seed_cnn_overfits_32_real_films(pneumonia32):
    x, y = pneumonia32
    config.set_seed(0)
    model = models.compile_model(models.seed_cnn(), learning_rate=1e-3)
    # Adam at a training loss near 0 can spike in a late epoch (seen with TensorFlow 2.16):
    # keep the weights of the lowest training loss, which is what memorising means here.
    keep_best = keras.callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    model.fit(x, y, epochs=40, batch_size=8, verbose=0, callbacks=[keep_best])
    accuracy = np.mean((model.predict(x, verbose=0)[:, 0] >= 0.5) == y)
    assert accuracy >= 0.97


def test_improved_cnn_overfits_32_real_films(pneumonia32):
    x, y = pneumonia32
    config.set_seed(0)
    model = models.compile_model(
        models.improved_cnn(augment=False, dropout=0.0), learning_rate=3e-3
    )
    history = model.fit(x, y, epochs=30, batch_size=8, verbose=0)
    assert history.history["accuracy"][-1] >= 0.97
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_balanced_class_weight():
    weights = models.balanced_class_weight(np.array([0, 1, 1, 1]))
    assert weights == pytest.approx({0: 2.0, 1: 4 / 6})
    with pytest.raises(ValueError, match="no labels"):
        models.balanced_class_weight(np.array([]))


def test_training_callbacks_monitor_validation_auc_and_checkpoint(tmp_path, pneumonia32):
    x, y = pneumonia32
    callbacks = models.training_callbacks(tmp_path / "best.weights.h5", patience=2)
    kinds = {type(c).__name__: c for c in callbacks}
    assert set(kinds) == {"EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"}
    assert (
        kinds["EarlyStopping"].monitor == "val_auc" and kinds["EarlyStopping"].restore_best_weights
    )
    assert models.training_callbacks(min_epochs=3)[0].start_from_epoch == 3
    config.set_seed(0)
    model = models.compile_model(models.seed_cnn())
    history = model.fit(
        x, y, validation_data=(x, y), epochs=3, batch_size=16, callbacks=callbacks, verbose=0
    )
    assert "val_auc" in history.history
    assert (tmp_path / "best.weights.h5").is_file()
    assert len(models.training_callbacks(lr_patience=None)) == 1
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        models.training_callbacks(tmp_path / "best.keras")


def test_fit_classifier_learns_real_films_and_restores_the_best_epoch(pneumonia32):
    x, y = pneumonia32
    config.set_seed(0)
    model = models.improved_cnn(augment=False, dropout=0.0, seed=0)
    history = models.fit_classifier(
        model,
        x,
        y,
        x,
        y,
        epochs=12,
        batch_size=8,
        learning_rate=3e-3,
        patience=20,
        lr_patience=None,
    )
    aucs = history["val_auc"]
    assert len(aucs) == 12 and max(aucs) >= 0.95
    assert history["epochs_run"] == 12 and history["best_epoch"] == int(np.argmax(aucs)) + 1
    # the restored weights are those of the best validation epoch, not of the last one
    restored = model.evaluate(x, y, verbose=0, return_dict=True)["auc"]
    assert restored == pytest.approx(max(aucs), abs=1e-3)


def test_fit_classifier_one_hot_targets_for_several_outputs_and_bad_labels(pneumonia32):
    x, y = pneumonia32
    model = models.improved_cnn(n_classes=2, augment=False, seed=0)
    history = models.fit_classifier(model, x, y, x, y, epochs=1, batch_size=16, class_weight=False)
    assert model.loss == "categorical_crossentropy" and len(history["val_auc"]) == 1
    with pytest.raises(ValueError, match="class indices 0..1"):
        models.fit_classifier(models.improved_cnn(seed=0), x, y + 1, x, y, epochs=1)
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        models.fit_classifier(models.improved_cnn(seed=0), x, y, x, y, epochs=0)


# --------------------------------------------------------------------------- outputs
def test_logits_match_probabilities_and_features_have_the_head_width():
    model = models.improved_cnn((28, 28, 1), seed=0)
    x = _tiny_images(n=5)
    logits = models.predict_logits(model, x)
    assert logits.shape == (5,)
    np.testing.assert_allclose(
        1 / (1 + np.exp(-logits)), model.predict(x, verbose=0)[:, 0], rtol=1e-4
    )
    assert models.penultimate_features(model, x).shape == (5, 128)
    assert models.penultimate_features(models.seed_cnn(), x).shape == (5, 512)


def test_grad_cam_shape_and_range(pneumonia32):
    x, y = pneumonia32
    config.set_seed(0)
    model = models.compile_model(models.improved_cnn(augment=False))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    maps = models.grad_cam(model, x[:6])
    assert maps.shape == (6, 28, 28) and maps.dtype == np.float32
    named = models.grad_cam(model, x[:6], layer_name="last_conv")  # before BN/ReLU: differs
    assert named.shape == maps.shape and named.min() >= 0 and named.max() <= 1
    assert maps.min() >= 0 and maps.max() <= 1
    peaks = maps.reshape(6, -1).max(axis=1)
    assert np.all((peaks == 0) | np.isclose(peaks, 1))  # each map is scaled to its maximum
    assert np.any(peaks > 0)


def test_grad_cam_bad_arguments_raise():
    model = models.improved_cnn((28, 28, 1))
    with pytest.raises(ValueError, match="no layer 'nope'"):
        models.grad_cam(model, _tiny_images(), layer_name="nope")
    with pytest.raises(ValueError, match="not a convolutional feature map"):
        models.grad_cam(model, _tiny_images(), layer_name="dropout")
    with pytest.raises(ValueError, match="class_index"):
        models.grad_cam(model, _tiny_images(), class_index=1)
    with pytest.raises(ValueError, match="model expects inputs"):
        models.grad_cam(model, _tiny_images(channels=3))


# --------------------------------------------------------------------------- backbones
def test_backbone_offline_falls_back_to_random_weights(monkeypatch, capsys):
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    model = models.pretrained_backbone((32, 32, 1), name="MobileNetV2", augment=False)
    assert "offline mode" in capsys.readouterr().out
    assert model.output_shape == (None, 1)
    x = _tiny_images(n=2, size=32)
    assert model.predict(x, verbose=0).shape == (2, 1)
    maps = models.grad_cam(model, x)  # the backbone's last feature maps, resized to 32x32
    assert maps.shape == (2, 32, 32) and maps.min() >= 0 and maps.max() <= 1
    assert models.penultimate_features(model, x).shape == (2, 1280)


def test_backbone_download_failure_falls_back_to_random_weights(monkeypatch, capsys):
    from keras.src.utils import file_utils

    def no_network(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(file_utils, "get_file", no_network)
    model = models.pretrained_backbone((32, 32, 3), name="MobileNetV2", augment=False)
    out = capsys.readouterr().out
    assert "could not load the 'imagenet' weights" in out and "weights=None" in out
    assert model.get_layer("mobilenetv2_1.00_32").trainable


def test_backbone_unknown_name_raises():
    with pytest.raises(ValueError, match="unknown backbone 'VGG99'"):
        models.pretrained_backbone(name="VGG99")


# --------------------------------------------------------------------------- benchmark
def test_benchmark_smoke_writes_a_sane_report(tmp_path):
    require("pneumoniamnist")
    from benchmarks import cnn_medmnist

    out = tmp_path / "report.json"
    cnn_medmnist.main(
        ["--dataset", "pneumoniamnist", "--profile", "smoke", "--seeds", "0", "--out", str(out)]
    )
    report = json.loads(out.read_text())
    settings = report["settings"]
    assert report["profile"] == "smoke" and settings["n_train"] == 256 and settings["n_test"] == 624
    assert settings["n_boot"] == 20  # smoke-sized bootstrap
    run = report["per_seed"][0]
    for key in ("test_auc", "test_acc", "val_auc", "threshold", "train_seconds", "temperature"):
        assert key in run
    assert 0.5 < run["test_auc"] <= 1 and 0 <= run["test_acc"] <= 1
    assert 0 <= run["threshold"] <= 1 and run["train_seconds"] > 0
    assert run["val_metrics_at_threshold"]["sensitivity"] >= 0.95  # chosen on validation
    test_metrics = run["test_metrics_at_threshold"]
    assert set(test_metrics) == {
        "roc_auc",
        "pr_auc",
        "sensitivity",
        "specificity",
        "ppv",
        "npv",
        "accuracy",
    }
    for row in test_metrics.values():
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert report["headline"]["test_auc"] == pytest.approx(run["test_auc"])
    assert report["spread"]["test_auc"]["sd"] is None  # one seed: no spread to claim
    assert report["reference"]["rows"]["ResNet-50 (224)"] == {"test_auc": 0.962, "test_acc": 0.884}
    assert [t["met"] for t in report["targets"]] == [
        run["test_auc"] >= 0.97,
        run["test_acc"] >= 0.90,
    ]
    prov = report["provenance"]
    assert prov["argv"] == [
        "--dataset",
        "pneumoniamnist",
        "--profile",
        "smoke",
        "--seeds",
        "0",
        "--out",
        str(out),
    ]
    assert prov["peak_memory_mb"]["host_rss_mb"] > 0 and "tensorflow" in prov["versions"]
    assert set(report["model_card"]) == {"intended_use", "data", "not_for", "failure_modes"}


def test_benchmark_honours_dl4h_profile(tmp_path, monkeypatch):
    require("pneumoniamnist")
    from benchmarks import cnn_medmnist

    monkeypatch.setenv("DL4H_PROFILE", "smoke")
    out = tmp_path / "report.json"
    cnn_medmnist.main(["--profile", "cpu", "--seeds", "1", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["profile"] == "smoke" and report["settings"]["n_train"] == 256


def test_benchmark_help_documents_the_options(capsys):
    from benchmarks import cnn_medmnist

    with pytest.raises(SystemExit):
        cnn_medmnist.parse_args(["--help"])
    text = capsys.readouterr().out
    for option in ("--dataset", "--size", "--profile", "--seeds", "--out"):
        assert option in text


def test_augmentation_is_an_argument_any_layer_or_none():
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    colour = models.improved_cnn((28, 28, 3), augment=flip, seed=0)
    assert colour.layers[1] is flip
    plain = models.improved_cnn((28, 28, 1), augment=False)
    assert plain.layers[1].name == "standardize"
    chest = models.improved_cnn((28, 28, 1), seed=0)
    assert chest.layers[1].name == "augmentation"
    assert not any(isinstance(layer, keras.layers.RandomFlip) for layer in chest.layers[1].layers)


def test_train_reports_the_restored_epoch_and_respects_min_epochs(monkeypatch):
    """models.train is the one early-stopping loop: its best_epoch is the epoch whose
    weights the model holds, never one of the first min_epochs."""
    config.set_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    result = models.train(model, x, y, x, y, epochs=6, patience=10, min_epochs=0)
    losses = result["val_loss"]
    assert result["best_epoch"] == int(np.argmin(losses)) + 1 and result["epochs_run"] == 6
    restored = model.evaluate(x, y, verbose=0)
    assert restored == pytest.approx(min(losses), rel=1e-4)
    later = models.train(model, x, y, x, y, epochs=4, patience=10, min_epochs=3)
    assert later["best_epoch"] == 4  # only the 4th epoch could be chosen
    with pytest.raises(ValueError, match="64 training inputs but 60 labels"):
        models.train(model, x, y[:60], x, y, epochs=1)


# --------------------------------------------------------------------------- model cache
def _cached_run(x, y, seed, **recipe):
    config.set_seed(seed)
    model = models.improved_cnn(augment=False, dropout=0.0, seed=seed)
    result = models.fit_classifier_cached(
        model, x, y, x, y, seed=seed, epochs=2, batch_size=16, lr_patience=None, **recipe
    )
    return model, result


def test_the_model_cache_trains_once_then_loads_the_same_model(pneumonia32, tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    x, y = pneumonia32
    first, trained = _cached_run(x, y, seed=0)
    assert trained["cached"] is False and trained["epochs_run"] == 2
    entry = tmp_path / "models" / trained["cache_key"]
    assert (entry / "model.weights.h5").is_file() and (entry / "history.json").is_file()
    again, loaded = _cached_run(x, y, seed=0)
    assert loaded["cached"] is True and loaded["cache_key"] == trained["cache_key"]
    assert loaded["val_auc"] == trained["val_auc"] and loaded["best_epoch"] == trained["best_epoch"]
    np.testing.assert_array_equal(first.predict(x, verbose=0), again.predict(x, verbose=0))
    # loaded models are compiled like trained ones
    assert again.evaluate(x, y, verbose=0, return_dict=True)["auc"] > 0


def test_the_model_cache_key_follows_seed_recipe_data_and_architecture(pneumonia32):
    x, y = pneumonia32
    config.set_seed(0)
    model = models.improved_cnn(augment=False, dropout=0.0, seed=0)
    key = models.model_cache_key(model, (x, y), seed=0, epochs=2)
    assert key == models.model_cache_key(model, (x, y), seed=0, epochs=2)
    assert key != models.model_cache_key(model, (x, y), seed=1, epochs=2)
    assert key != models.model_cache_key(model, (x, y), seed=0, epochs=3)
    flipped = y.copy()
    flipped[0] = 1 - flipped[0]
    assert key != models.model_cache_key(model, (x, flipped), seed=0, epochs=2)
    wider = models.improved_cnn(augment=False, dropout=0.3, seed=0)
    assert key != models.model_cache_key(wider, (x, y), seed=0, epochs=2)


def test_an_unreadable_cache_entry_is_retrained_and_replaced(pneumonia32, tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    x, y = pneumonia32
    _, trained = _cached_run(x, y, seed=0)
    weights = tmp_path / "models" / trained["cache_key"] / "model.weights.h5"
    weights.write_bytes(b"not an HDF5 file")
    _, again = _cached_run(x, y, seed=0)
    assert again["cached"] is False  # trained anew, not loaded from the broken file
    assert weights.read_bytes()[:4] == b"\x89HDF"  # and the entry was written again
    _, third = _cached_run(x, y, seed=0)
    assert third["cached"] is True


def test_the_model_cache_can_be_switched_off(pneumonia32, tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(models.MODEL_CACHE_ENV, "0")
    x, y = pneumonia32
    _, first = _cached_run(x, y, seed=0)
    _, second = _cached_run(x, y, seed=0)
    assert first["cached"] is False and second["cached"] is False
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
    with pytest.raises(ValueError, match="snapshot"):
        _cached_run(x, y, seed=0, snapshots=2, schedule="cosine")


# --------------------------------------------------------------------------- one trace
def _tiny_dense(n_out=1):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    return keras.Model(inputs, keras.layers.Dense(n_out, activation="sigmoid")(inputs))


def test_a_first_fit_traces_the_training_step_twice_without_build_optimizer(monkeypatch):
    """What build_optimizer is for, and the control that lets the next tests fail: Keras
    creates the optimizer's and a string metric's variables inside the first traced step,
    so TensorFlow traces that step again."""
    x, y = (
        np.random.default_rng(0).random((8, 6), dtype=np.float32),
        np.array([0, 1] * 4, "float32"),
    )
    model = _tiny_dense()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    calls = count_train_step_traces(model, monkeypatch)
    model.fit(x, y, epochs=2, verbose=0)
    assert calls["n"] == 2


def test_compile_model_builds_the_optimizer_so_fit_traces_once(monkeypatch):
    x, y = (
        np.random.default_rng(0).random((8, 6), dtype=np.float32),
        np.array([0, 1] * 4, "float32"),
    )
    model = models.compile_model(_tiny_dense())
    assert model.optimizer.built and model.optimizer.variables
    calls = count_train_step_traces(model, monkeypatch)
    model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y))
    assert calls["n"] == 1
    assert {"accuracy", "auc", "val_accuracy", "val_auc"} <= set(model.history.history)
    # the accuracy object is the binary one ("accuracy" would have chosen it): 0.5 threshold
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == pytest.approx(
        np.mean((model.predict(x, verbose=0).ravel() > 0.5) == y)
    )


def test_build_optimizer_refuses_an_uncompiled_model():
    with pytest.raises(ValueError, match="not compiled"):
        models.build_optimizer(_tiny_dense())


def test_every_compiling_builder_of_helpers_traces_its_training_step_once(monkeypatch):
    from helpers import ehr_models, sequences

    rng = np.random.default_rng(0)
    seq, labels = rng.random((8, 5, 4), dtype=np.float32), np.array([0, 1] * 4)
    cases = {
        "rnn_classifier(2)": (
            sequences.rnn_classifier((5, 4), 2, units=4),
            seq,
            labels.astype("float32"),
        ),
        "rnn_classifier(3)": (sequences.rnn_classifier((5, 4), 3, units=4), seq, labels % 3),
        "lstm_autoencoder": (sequences.lstm_autoencoder(5, 4, units=4), seq, seq),
        "mortality_model": (
            ehr_models.mortality_model(5, 3, 2, units=4),
            [rng.random((8, 5, 9), dtype=np.float32), rng.random((8, 2), dtype=np.float32)],
            np.repeat(labels[:, None], 5, axis=1).astype("float32"),
        ),
        "cox_model": (
            ehr_models.cox_model(4, hidden=(4,)),
            rng.random((8, 4), dtype=np.float32),
            np.stack([rng.random(8) + 0.1, labels], axis=1).astype("float32"),
        ),
    }
    for name, (model, x, y) in cases.items():
        calls = count_train_step_traces(model, monkeypatch)
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        assert calls["n"] == 1, f"{name}: the training step was traced {calls['n']} times"
