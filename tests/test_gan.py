"""helpers.gan: builders, one adversarial step, the fidelity and memorisation checks, and
the chapter 06 benchmark script in its smoke profile on real PneumoniaMNIST."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import config, data, gan
from tests.conftest import require


@pytest.fixture(scope="module")
def pneumonia_train():
    """400 real PneumoniaMNIST training films in [0, 1] with their labels."""
    require("pneumoniamnist")
    images, labels = data.load_medmnist("pneumoniamnist", "train")
    return data.as_float_images(images[:400]), labels[:400].reshape(-1)


# --------------------------------------------------------------------------- builders
def test_unconditional_generator_makes_28px_images_in_tanh_range():
    config.set_seed(0)
    generator = gan.build_generator(latent_dim=16)
    assert generator.input_shape == (None, 16)
    assert generator.output_shape == (None, 28, 28, 1)
    noise = np.random.default_rng(0).standard_normal((8, 16)).astype("float32") * 50
    images = generator.predict(noise, verbose=0)
    assert images.shape == (8, 28, 28, 1)
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert images.std() > 0  # not a constant image


def test_conditional_models_take_a_label_and_it_changes_the_output():
    config.set_seed(0)
    generator = gan.build_generator(latent_dim=16, n_classes=2)
    discriminator = gan.build_discriminator((28, 28, 1), n_classes=2)
    assert [tuple(s) for s in generator.input_shape] == [(None, 16), (None, 1)]
    assert discriminator.output_shape == (None, 1)
    model = gan.GAN(generator, discriminator)
    assert model.conditional and model.n_classes == 2 and model.latent_dim == 16
    noise = np.random.default_rng(1).standard_normal((4, 16))
    normal = model.generate(4, [0, 0, 0, 0], noise=noise)
    pneumonia = model.generate(4, [1, 1, 1, 1], noise=noise)
    assert normal.shape == (4, 28, 28, 1)
    assert np.abs(normal - pneumonia).max() > 1e-4
    logits = discriminator.predict([normal, np.zeros((4, 1), "int32")], verbose=0)
    assert logits.shape == (4, 1) and np.isfinite(logits).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_classes": 1}, "n_classes must be 0"),
        ({"image_size": 30}, "multiple of 4"),
        ({"latent_dim": 0}, "latent_dim must be >= 1"),
    ],
)
def test_generator_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gan.build_generator(**kwargs)


def test_discriminator_and_gan_reject_bad_settings():
    with pytest.raises(ValueError, match="image_shape must be"):
        gan.build_discriminator((28, 28))
    with pytest.raises(ValueError, match="dropout"):
        gan.build_discriminator(dropout=1.0)
    with pytest.raises(ValueError, match="both be conditional"):
        gan.GAN(gan.build_generator(8, n_classes=2), gan.build_discriminator())
    with pytest.raises(ValueError, match="label_smoothing"):
        gan.GAN(gan.build_generator(8), gan.build_discriminator(), label_smoothing=0.7)


def test_scaling_round_trip_and_range_check():
    images = np.array([[[0, 128, 255]]], dtype=np.uint8)
    scaled = gan.to_tanh_range(images)
    assert scaled.shape == (1, 1, 3, 1)
    np.testing.assert_allclose(scaled[0, 0, :, 0], [-1.0, 128 / 255 * 2 - 1, 1.0], atol=1e-6)
    np.testing.assert_allclose(gan.to_unit_range(scaled)[0, 0, :, 0], [0, 128 / 255, 1], atol=1e-6)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        gan.to_tanh_range(np.full((1, 4, 4), 2.0))


# --------------------------------------------------------------------------- training
def test_training_steps_change_both_networks_and_give_finite_losses(pneumonia_train):
    config.set_seed(0)
    images, labels = pneumonia_train
    model = gan.GAN(
        gan.build_generator(16, n_classes=2, base_filters=16),
        gan.build_discriminator(n_classes=2, base_filters=16),
        label_smoothing=0.1,
    )
    g_before = [w.copy() for w in model.generator.get_weights()]
    d_before = [w.copy() for w in model.discriminator.get_weights()]
    calls = []
    history = model.train(
        gan.to_tanh_range(images),
        labels,
        steps=3,
        batch_size=32,
        callback=lambda step, m: calls.append(step),
        callback_every=2,
    )
    assert set(history) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(len(v) == 3 and np.isfinite(v).all() for v in history.values())
    assert all(0 <= p <= 1 for p in history["d_real"] + history["d_fake"])
    assert calls == [2]
    # the optimizers were built in GAN(), not in the first traced step: one trace, not two
    assert model._step.experimental_get_tracing_count() == 1
    g_changed = max(
        np.abs(a - b).max() for a, b in zip(g_before, model.generator.get_weights(), strict=True)
    )
    d_changed = max(
        np.abs(a - b).max()
        for a, b in zip(d_before, model.discriminator.get_weights(), strict=True)
    )
    assert g_changed > 0 and d_changed > 0


def test_train_rejects_unscaled_images_and_missing_labels(pneumonia_train):
    images, labels = pneumonia_train
    model = gan.GAN(
        gan.build_generator(8, n_classes=2, base_filters=8),
        gan.build_discriminator(n_classes=2, base_filters=8),
    )
    with pytest.raises(ValueError, match=r"scaled to \[-1, 1\]"):
        model.train(images * 255, labels, steps=1)
    with pytest.raises(ValueError, match="needs the class labels"):
        model.train(gan.to_tanh_range(images), steps=1)
    with pytest.raises(ValueError, match="labels must be integers in"):
        model.train(gan.to_tanh_range(images), labels + 5, steps=1)
    with pytest.raises(ValueError, match="images must have shape"):
        model.train(np.zeros((4, 32, 32, 1), "float32"), np.zeros(4), steps=1)
    with pytest.raises(ValueError, match="needs labels to generate"):
        model.generate(2)


# --------------------------------------------------------------------------- evaluation
def test_frechet_distance_is_zero_for_a_set_with_itself_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((500, 8))
    assert gan.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)
    # a mean shift of 1 in every one of 8 dimensions adds |shift|^2 = 8 exactly
    assert gan.frechet_distance(feats, feats + 1.0) == pytest.approx(8.0, abs=1e-6)
    small = gan.frechet_distance(feats, feats + 0.5)
    assert 0 < small < gan.frechet_distance(feats, feats + 1.0)
    # Gaussians with the same mean: FD = sum (sigma_a - sigma_b)^2 = 8 * (1 - 2)^2
    wide = rng.standard_normal((20000, 8)) * 2
    assert gan.frechet_distance(rng.standard_normal((20000, 8)), wide) == pytest.approx(
        8.0, rel=0.1
    )


def test_frechet_distance_matches_scipy_sqrtm_and_survives_singular_covariances():
    from scipy import linalg

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((300, 5)), rng.standard_normal((300, 5)) @ rng.random((5, 5)) + 0.3
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = (
        np.sum((a.mean(0) - b.mean(0)) ** 2)
        + np.trace(cov_a)
        + np.trace(cov_b)
        - 2 * np.trace(np.real(linalg.sqrtm(cov_a @ cov_b)))
    )
    assert gan.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    dead = np.column_stack([a, np.zeros(300)])  # a constant ("dead") feature
    assert gan.frechet_distance(dead, dead) == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(gan.frechet_distance(dead, np.column_stack([b, np.zeros(300)])))


def test_frechet_distance_rejects_bad_input():
    with pytest.raises(ValueError, match="feature dimensions differ"):
        gan.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        gan.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        gan.frechet_distance(np.full((5, 3), np.nan), np.zeros((5, 3)))


def test_nearest_neighbour_finds_a_planted_training_copy(pneumonia_train):
    images, _ = pneumonia_train
    train, test = images[:300], images[300:]
    generated = np.random.default_rng(0).random((20, 28, 28, 1)).astype("float32")
    generated[7] = train[123]  # a memorised training film
    dist, index = gan.nearest_neighbour_distances(generated, train)
    assert dist.shape == (20,) and index.shape == (20,)
    assert dist[7] == pytest.approx(0.0, abs=1e-6) and index[7] == 123
    assert np.all(np.delete(dist, 7) > 1.0)  # noise is far from every film
    report = gan.memorisation_report(generated, train, test)
    assert report["flagged"] == [7] and report["flagged_train_index"] == [123]
    assert report["n_flagged"] == 1 and report["fraction_flagged"] == pytest.approx(0.05)
    assert 0 < report["threshold"] <= report["real_test_median"]
    assert report["generated_min"] == pytest.approx(0.0, abs=1e-6)


def test_nearest_neighbour_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="differ in size per image"):
        gan.nearest_neighbour_distances(np.zeros((2, 28, 28)), np.zeros((3, 14, 14)))
    with pytest.raises(ValueError, match="percentile must be"):
        gan.memorisation_report(np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((2, 4)), percentile=60)


def test_two_sample_auc_is_chance_for_real_halves_and_one_for_noise(pneumonia_train):
    images, _ = pneumonia_train
    same = gan.classifier_two_sample_auc(images[:200], images[200:400], seed=0)
    assert 0.35 < same < 0.65
    noise = np.random.default_rng(0).random((200, 28, 28, 1))
    assert gan.classifier_two_sample_auc(images[:200], noise, seed=0) > 0.99
    with pytest.raises(ValueError, match="different sizes per sample"):
        gan.classifier_two_sample_auc(images[:10], np.zeros((10, 5)))
    with pytest.raises(ValueError, match="at least 4 samples"):
        gan.classifier_two_sample_auc(images[:2], images[2:4])


def test_mean_pairwise_distance_is_exact_and_zero_for_copies():
    # three points on a line at 0, 3 and 4: pairs 3, 4 and 1, mean 8/3
    assert gan.mean_pairwise_distance(np.array([[0.0], [3.0], [4.0]])) == pytest.approx(8 / 3)
    copies = np.repeat(np.random.default_rng(0).random((1, 28, 28, 1)), 10, axis=0)
    assert gan.mean_pairwise_distance(copies) == pytest.approx(0.0, abs=1e-9)
    # subsampling keeps the estimate close to the full mean
    x = np.random.default_rng(1).standard_normal((900, 4))
    assert gan.mean_pairwise_distance(x, max_samples=300) == pytest.approx(
        gan.mean_pairwise_distance(x, max_samples=900), rel=0.05
    )
    with pytest.raises(ValueError, match="at least 2 samples"):
        gan.mean_pairwise_distance(np.zeros((1, 3)))


def test_per_class_diversity_scores_a_collapsed_class_low_and_real_films_near_one(pneumonia_train):
    images, labels = pneumonia_train
    real, real_y = images[:200], labels[:200]
    # generated set: class 0 is a real-like, diverse set (other real films of class 0);
    # class 1 has collapsed onto three films, repeated with faint noise
    normal = images[200:][labels[200:] == 0]
    sick = images[200:][labels[200:] == 1]
    rng = np.random.default_rng(0)
    collapsed = np.clip(
        sick[rng.integers(0, 3, 100)] + rng.normal(0, 0.002, (100, *sick.shape[1:])), 0, 1
    )
    generated = np.concatenate([normal, collapsed])
    generated_y = np.concatenate([np.zeros(len(normal)), np.ones(100)])
    report = gan.per_class_diversity(generated, generated_y, real, real_y)
    assert set(report) == {0, 1}
    assert 0.8 < report[0]["ratio"] < 1.25 and 0.7 < report[0]["nn_ratio"] < 1.4
    # three distinct films keep about 2/3 of the pairwise spread: the mean pairwise distance
    # sees partial collapse only weakly, the nearest-neighbour distance sees it clearly
    assert report[1]["ratio"] < 0.8
    assert report[1]["nn_ratio"] < 0.1
    assert report[1]["n_generated"] == 100 and report[0]["n_real"] == int(np.sum(real_y == 0))
    for row in report.values():
        assert row["ratio"] == pytest.approx(row["generated"] / row["real"])
        assert row["nn_ratio"] == pytest.approx(row["nn_generated"] / row["nn_real"])


def test_pooling_classes_hides_a_collapse_that_per_class_diversity_shows(pneumonia_train):
    # One film per class, each repeated: a complete collapse within both classes. Pooled
    # over the classes the pairs that cross classes still differ, so the pooled ratio looks
    # like real data; per class both statistics are exactly 0.
    images, labels = pneumonia_train
    one_each = np.stack(
        [images[np.flatnonzero(labels == 0)[0]], images[np.flatnonzero(labels == 1)[0]]]
    )
    generated_y = np.repeat([0, 1], 50)
    generated = one_each[generated_y]
    pooled = gan.mean_pairwise_distance(generated) / gan.mean_pairwise_distance(images)
    report = gan.per_class_diversity(generated, generated_y, images, labels)
    for row in report.values():
        assert row["ratio"] == pytest.approx(0.0, abs=1e-9)
        assert row["nn_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert pooled > 0.5


def test_per_class_diversity_is_blind_to_artefacts_noise_raises_it(pneumonia_train):
    # The documented limit: heavy noise makes films *more* different from each other in
    # pixels, so a ratio at or above 1 is no evidence of good images.
    images, labels = pneumonia_train
    noisy = np.clip(images + np.random.default_rng(0).normal(0, 0.3, images.shape), 0, 1)
    report = gan.per_class_diversity(noisy, labels, images, labels)
    assert all(row["ratio"] > 1.2 and row["nn_ratio"] > 1.2 for row in report.values())


def test_per_class_diversity_handles_a_missing_class_and_rejects_bad_input():
    rng = np.random.default_rng(0)
    real, real_y = rng.random((20, 5)), np.repeat([0, 1], 10)
    report = gan.per_class_diversity(rng.random((6, 5)), np.zeros(6), real, real_y)
    assert report[1]["n_generated"] == 0 and report[1]["n_real"] == 10
    assert (
        report[1]["generated"] == 0.0 and report[1]["ratio"] == 0.0 and report[1]["nn_ratio"] == 0.0
    )
    assert report[1]["real"] == pytest.approx(gan.mean_pairwise_distance(real[10:]))
    assert report[0]["n_generated"] == 6 and report[0]["ratio"] > 0
    with pytest.raises(ValueError, match="one entry per sample"):
        gan.per_class_diversity(rng.random((6, 5)), np.zeros(5), real, real_y)
    with pytest.raises(ValueError, match="do not occur among the real labels"):
        gan.per_class_diversity(rng.random((6, 5)), np.full(6, 2), real, real_y)
    with pytest.raises(ValueError, match="differ in size per sample"):
        gan.per_class_diversity(rng.random((6, 4)), np.zeros(6), real, real_y)
    with pytest.raises(ValueError, match="fewer than 2 real samples"):
        gan.per_class_diversity(rng.random((6, 5)), np.zeros(6), real[:11], real_y[:11])
    with pytest.raises(ValueError, match="all identical"):
        gan.per_class_diversity(rng.random((6, 5)), np.zeros(6), np.zeros((4, 5)), [0, 0, 1, 1])


def test_high_frequency_share_sees_a_checkerboard_and_noise_but_not_smooth_films(pneumonia_train):
    images, _ = pneumonia_train
    np.testing.assert_allclose(gan.high_frequency_share(np.full((2, 8, 8), 0.5)), [0.0, 0.0])
    checker = (np.indices((28, 28)).sum(axis=0) % 2)[None, ..., None].astype(float)
    assert gan.high_frequency_share(checker)[0] == pytest.approx(1.0)
    # a slow sinusoid (period 14 px) has no power at the Nyquist frequency
    slow = np.tile(np.sin(2 * np.pi * np.arange(28) / 14), (28, 1))[None]
    assert gan.high_frequency_share(slow)[0] == pytest.approx(0.0, abs=1e-12)
    real = gan.high_frequency_share(images)
    assert real.shape == (len(images),) and np.median(real) < 0.02
    # a faint checkerboard (amplitude 0.05 on [0, 1] films) is hard to see and easy to measure
    faint = np.clip(images + 0.05 * (checker - 0.5), 0, 1)
    assert np.median(gan.high_frequency_share(faint)) > 3 * np.median(real)
    noisy = np.clip(images + np.random.default_rng(0).normal(0, 0.05, images.shape), 0, 1)
    assert np.median(gan.high_frequency_share(noisy)) > 1.5 * np.median(real)
    # blur (2 x 2 averages) removes it
    blurred = np.repeat(
        np.repeat(images.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)), 2, axis=1), 2, axis=2
    )
    assert np.median(gan.high_frequency_share(blurred)) < 0.1 * np.median(real)
    with pytest.raises(ValueError, match="expected grey images"):
        gan.high_frequency_share(np.zeros((4, 28)))
    with pytest.raises(ValueError, match="NaN"):
        gan.high_frequency_share(np.full((1, 4, 4), np.nan))
    with pytest.raises(ValueError, match="no frequency"):
        gan.high_frequency_share(np.zeros((1, 5, 5)))
    with pytest.raises(ValueError, match="min_frequency"):
        gan.high_frequency_share(np.zeros((1, 4, 4)), min_frequency=0.7)


# --------------------------------------------------------------------------- benchmark
def test_benchmark_smoke_run_on_real_pneumoniamnist(tmp_path):
    require("pneumoniamnist")
    from benchmarks import gan_medmnist

    out = tmp_path / "gan_smoke.json"
    returned = gan_medmnist.main(
        ["--profile", "smoke", "--seeds", "0", "--steps", "30", "--out", str(out)]
    )
    report = json.loads(out.read_text())
    assert report == json.loads(json.dumps(returned))
    assert report["benchmark"] == "gan_medmnist" and report["profile"] == "smoke"
    settings, run = report["settings"], report["per_seed"][0]
    assert settings["n_train"] == 512 and settings["n_test"] == 624 and settings["gan_steps"] == 30
    assert run["n_generated"] == 256 and run["fidelity_n_per_set"] == 256
    assert run["tstr_over_trtr"] == pytest.approx(run["tstr_test_auc"] / run["trtr_test_auc"])
    assert report["headline"]["tstr_over_trtr"] == pytest.approx(run["tstr_over_trtr"])
    # 30 steps of a GAN cannot fool a linear classifier on pixels
    assert run["c2st_auc_pixels_generated_vs_real_test"] > 0.9
    memo = run["memorisation"]
    assert memo["n_generated"] == 256 and memo["n_flagged"] == run["n_flagged"]
    assert memo["threshold"] <= memo["real_test_median"]
    verdicts = {t["metric"]: t["met"] for t in report["targets"]}
    assert verdicts == {
        "tstr_over_trtr": run["tstr_over_trtr"] >= 0.9,
        "n_flagged": run["n_flagged"] == 0,
    }
    assert report["provenance"]["argv"][:2] == ["--profile", "smoke"]
