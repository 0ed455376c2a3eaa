"""Train a class-conditional DCGAN on a binary MedMNIST dataset and check its images honestly.

Fidelity: the Fréchet distance between generated and real images in the penultimate
features of a chapter-04 classifier (``improved_cnn`` trained on the real training split,
best epoch chosen on validation), next to the real-vs-real baseline (a real training
sample vs the real test split), and classifier two-sample-test AUCs (0.5 =
indistinguishable). Usefulness: TSTR (the same classifier recipe trained only on
generated images, validated on the real validation split, tested on the real test split)
vs TRTR (trained on the real training split). Privacy: nearest-neighbour distances of the
generated images to the training images vs those of real test images; a generated image
closer to a training image than the 1st percentile of the real-test distances is flagged.
The test split is only ever predicted, never used to choose anything.

Data come only from the data root (``DL4H_DATA``) through ``helpers.data``. Example:

    .venv/bin/python benchmarks/gan_medmnist.py --dataset pneumoniamnist --profile cpu \\
        --seed 0 --out benchmarks/reports/gan_pneumoniamnist_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import write_report  # noqa: E402
from helpers import config, data, evaluation, gan, models  # noqa: E402

# `n_train=None` means the whole training split; `n_generated=None` as many generated images
# as real training images. Classifier epochs: early stopping on validation AUC (real
# validation split for both TRTR and TSTR), not before `min_epochs`.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"size": 28, "n_train": 512, "gan_steps": 50, "batch_size": 64, "n_generated": 256,
              "max_epochs": 1, "min_epochs": 0, "patience": 1, "latent_dim": 64, "base_filters": 32},
    "cpu": {"size": 28, "n_train": None, "gan_steps": 2500, "batch_size": 64, "n_generated": None,
            "max_epochs": 12, "min_epochs": 4, "patience": 4, "latent_dim": 64, "base_filters": 64},
    "gpu": {"size": 64, "n_train": None, "gan_steps": 10000, "batch_size": 64, "n_generated": None,
            "max_epochs": 30, "min_epochs": 10, "patience": 8, "latent_dim": 128, "base_filters": 64},
}
TARGETS = {"tstr_over_trtr_auc_min": 0.90, "n_flagged_max": 0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataset", default="pneumoniamnist", help="binary MedMNIST 2D grey-scale flag")
    parser.add_argument("--profile", default="cpu", choices=list(PROFILES),
                        help="smoke: 512 films, 50 GAN steps; cpu: 28 px, 2500 steps; gpu: 64 px, 10000 steps")
    parser.add_argument("--seed", type=int, default=0, help="seed for every model and sample")
    parser.add_argument("--steps", type=int, default=None, help="override the profile's GAN steps")
    parser.add_argument("--label-smoothing", type=float, default=0.1,
                        help="one-sided label smoothing of the discriminator's real targets")
    parser.add_argument("--out", default=None,
                        help="JSON report path (default benchmarks/reports/gan_<dataset>_<profile>.json)")
    return parser.parse_args(argv)


def train_classifier(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                     settings: dict[str, Any], seed: int) -> tuple[Any, int]:
    """Chapter 04's recipe: improved_cnn, class weights, early stopping on validation AUC."""
    config.set_seed(seed)
    model = models.improved_cnn(x.shape[1:], 1, seed=seed)
    history = models.fit_classifier(model, x, y, x_val, y_val, epochs=settings["max_epochs"],
                                    batch_size=settings["batch_size"], patience=settings["patience"],
                                    min_epochs=settings["min_epochs"])
    return model, len(history.history["val_auc"])


def _auc(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    score = model.predict(x, batch_size=256, verbose=0)
    return evaluation.medmnist_auc_acc(y.reshape(-1, 1), score, "binary-class")[0]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write its report; returns the report's payload."""
    started = time.time()
    args = parse_args(argv)
    settings = dict(PROFILES[args.profile])
    if args.steps is not None:
        settings["gan_steps"] = args.steps
    info = data.medmnist_info(args.dataset)
    if info["task"] != "binary-class" or info["n_channels"] != 1:
        raise SystemExit(f"{args.dataset}: this benchmark needs a binary grey-scale dataset")
    config.setup_devices(args.profile)
    seed = args.seed
    splits = {name: (images, labels.reshape(-1).astype("int32")) for name, (images, labels)
              in data.load_medmnist_splits(args.dataset, settings["size"], settings["n_train"],
                                           seed=seed).items()}
    x_train, y_train = splits["train"]
    x_val, y_val = splits["val"]
    x_test, y_test = splits["test"]
    timings: dict[str, float] = {}

    # 1. TRTR: the real classifier (also the feature extractor for the Fréchet distance).
    tick = time.time()
    real_clf, trtr_epochs = train_classifier(x_train, y_train, x_val, y_val, settings, seed)
    timings["trtr_classifier_seconds"] = round(time.time() - tick, 1)
    trtr_val_auc, trtr_test_auc = _auc(real_clf, x_val, y_val), _auc(real_clf, x_test, y_test)

    # 2. The class-conditional DCGAN on the real training split.
    tick = time.time()
    config.set_seed(seed)
    n_classes = len(info["label"])
    model = gan.GAN(
        gan.build_generator(settings["latent_dim"], n_classes, image_size=settings["size"],
                            base_filters=settings["base_filters"]),
        gan.build_discriminator(x_train.shape[1:], n_classes, base_filters=settings["base_filters"]),
        label_smoothing=args.label_smoothing,
    )
    history = model.train(gan.to_tanh_range(x_train), y_train, steps=settings["gan_steps"],
                          batch_size=settings["batch_size"], seed=seed)
    timings["gan_seconds"] = round(time.time() - tick, 1)

    # 3. Generated images with the training split's class proportions.
    n_gen = settings["n_generated"] or len(x_train)
    rng = np.random.default_rng(seed)
    y_gen = rng.choice(y_train, size=n_gen, replace=True).astype("int32")
    x_gen = gan.to_unit_range(model.generate(n_gen, y_gen, seed=seed + 1))

    # 4. TSTR: the same recipe trained only on generated images (validated on real val).
    tick = time.time()
    syn_clf, tstr_epochs = train_classifier(x_gen, y_gen, x_val, y_val, settings, seed)
    timings["tstr_classifier_seconds"] = round(time.time() - tick, 1)
    tstr_val_auc, tstr_test_auc = _auc(syn_clf, x_val, y_val), _auc(syn_clf, x_test, y_test)

    # 5. Fidelity in the real classifier's feature space, with a real-vs-real baseline of equal size.
    n_fd = min(len(x_test), n_gen, len(x_train))
    train_pick = rng.choice(len(x_train), n_fd, replace=False)
    gen_pick = rng.choice(n_gen, n_fd, replace=False)
    test_pick = rng.choice(len(x_test), n_fd, replace=False)
    f_train = models.penultimate_features(real_clf, x_train[train_pick])
    f_test = models.penultimate_features(real_clf, x_test[test_pick])
    f_gen = models.penultimate_features(real_clf, x_gen[gen_pick])
    fidelity = {
        "n_per_set": int(n_fd),
        "fd_generated_vs_real_train": gan.frechet_distance(f_gen, f_train),
        "fd_real_test_vs_real_train": gan.frechet_distance(f_test, f_train),
        "c2st_auc_features_generated_vs_real_test": gan.classifier_two_sample_auc(f_test, f_gen, seed=seed),
        "c2st_auc_features_real_train_vs_real_test": gan.classifier_two_sample_auc(f_test, f_train, seed=seed),
        "c2st_auc_pixels_generated_vs_real_test": gan.classifier_two_sample_auc(
            x_test[test_pick], x_gen[gen_pick], seed=seed),
        "c2st_auc_pixels_real_train_vs_real_test": gan.classifier_two_sample_auc(
            x_test[test_pick], x_train[train_pick], seed=seed),
    }

    # 6. Memorisation: nearest training image of every generated image vs of every real test image.
    memo = gan.memorisation_report(x_gen, x_train, x_test, percentile=1.0)
    memorisation = {key: memo[key] for key in (
        "threshold", "percentile", "n_generated", "n_flagged", "fraction_flagged", "generated_median",
        "generated_min", "real_test_median", "real_test_min")}
    memorisation["flagged"] = memo["flagged"][:50]

    ratio = tstr_test_auc / trtr_test_auc
    payload = {
        "benchmark": "gan_medmnist", "dataset": args.dataset, "size": settings["size"], "seed": seed,
        "n_train": len(x_train), "n_val": len(x_val), "n_test": len(x_test), "n_generated": n_gen,
        "settings": settings, "label_smoothing": args.label_smoothing,
        "gan": {"generator_parameters": int(model.generator.count_params()),
                "discriminator_parameters": int(model.discriminator.count_params()),
                "steps": settings["gan_steps"],
                "final_d_loss_mean_last_100": float(np.mean(history["d_loss"][-100:])),
                "final_g_loss_mean_last_100": float(np.mean(history["g_loss"][-100:])),
                "final_d_real_mean_last_100": float(np.mean(history["d_real"][-100:])),
                "final_d_fake_mean_last_100": float(np.mean(history["d_fake"][-100:]))},
        "usefulness": {"trtr_test_auc": trtr_test_auc, "trtr_val_auc": trtr_val_auc, "trtr_epochs": trtr_epochs,
                       "tstr_test_auc": tstr_test_auc, "tstr_val_auc": tstr_val_auc, "tstr_epochs": tstr_epochs,
                       "tstr_over_trtr": ratio},
        "fidelity": fidelity, "memorisation": memorisation, "timings": timings,
        "targets": TARGETS,
        "targets_met": {"tstr_over_trtr": bool(ratio >= TARGETS["tstr_over_trtr_auc_min"]),
                        "no_memorised_images": bool(memo["n_flagged"] <= TARGETS["n_flagged_max"])},
        "recipe": "class-conditional DCGAN (label embedding), Adam 2e-4 beta1 0.5, non-saturating loss, "
                  "one-sided label smoothing; classifiers: chapter 04 improved_cnn with class weights and "
                  "early stopping on real validation AUC",
        "selection": "classifier epochs chosen on the real validation split; GAN settings fixed in advance; "
                     "test split predicted only",
    }
    out = args.out or f"benchmarks/reports/gan_{args.dataset}_{args.profile}.json"
    write_report(out, payload, args.profile, started)
    print(f"TRTR test AUC {trtr_test_auc:.3f}, TSTR test AUC {tstr_test_auc:.3f} (ratio {ratio:.3f}); "
          f"FD gen {fidelity['fd_generated_vs_real_train']:.2f} vs real {fidelity['fd_real_test_vs_real_train']:.2f}; "
          f"flagged {memo['n_flagged']}/{n_gen}")
    return payload


if __name__ == "__main__":
    main()
