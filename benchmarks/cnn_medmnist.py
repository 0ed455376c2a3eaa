"""Train and evaluate chapter 04's best CNN on a MedMNIST 2D dataset; write a JSON report.

For each seed the model is trained on the official training split with class weights,
augmentation, a learning-rate schedule and early stopping on validation AUC (best epoch
restored). Binary tasks also get an operating threshold chosen on the validation split for
a target sensitivity, the clinical metrics at that threshold on test with bootstrap 95%
intervals, and temperature scaling fitted on validation. Test AUC and ACC follow the
MedMNIST v2 evaluator (ACC at threshold 0.5 for binary tasks, arg-max otherwise). The test
split is only ever predicted, never used to choose anything.

Data come only from the data root (``DL4H_DATA``) through ``helpers.data``. Example:

    .venv/bin/python benchmarks/cnn_medmnist.py --dataset pneumoniamnist --size 28 \\
        --profile cpu --seeds 0 1 2 --out benchmarks/reports/cnn_pneumoniamnist_28_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import summarise, write_report  # noqa: E402
from helpers import config, data, evaluation, models  # noqa: E402

# What each profile does. `max_epochs` is a ceiling: early stopping on validation AUC ends
# training sooner, but not before `min_epochs` (validation AUC is noisy in the first epochs,
# and a first cpu run stopped one seed at epoch 12 with a clearly lower validation AUC).
# `n_train=None` means the whole training split.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"n_train": 256, "max_epochs": 1, "min_epochs": 0, "patience": 1, "batch_size": 64, "n_boot": 20},
    "cpu": {"n_train": None, "max_epochs": 30, "min_epochs": 10, "patience": 8, "batch_size": 64, "n_boot": 1000},
    "gpu": {"n_train": None, "max_epochs": 30, "min_epochs": 10, "patience": 8, "batch_size": 64, "n_boot": 2000},
}

# MedMNIST v2 (Yang et al., Scientific Data 2023), Table: test AUC / ACC.
REFERENCE = {
    "pneumoniamnist": {
        "ResNet-18 (28)": {"auc": 0.944, "acc": 0.854},
        "ResNet-50 (28)": {"auc": 0.948, "acc": 0.854},
        "AutoKeras": {"auc": 0.947, "acc": 0.878},
        "ResNet-50 (224)": {"auc": 0.962, "acc": 0.884},
        "Google AutoML Vision": {"auc": 0.991, "acc": 0.946},
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " " + __doc__.split("\n\n")[1].replace("\n", " "),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dataset", default="pneumoniamnist",
                        help="MedMNIST 2D flag (binary or multi-class), e.g. pneumoniamnist, "
                             "breastmnist, bloodmnist")
    parser.add_argument("--size", type=int, default=28, choices=data.MEDMNIST_SIZES,
                        help="image size in pixels (64/128/224 need a download)")
    parser.add_argument("--profile", default="cpu", choices=list(PROFILES),
                        help="smoke: 256 training images, 1 epoch; cpu: full data, up to 30 "
                             "epochs; gpu: full data, up to 30 epochs")
    parser.add_argument("--model", default="auto", choices=["auto", "improved_cnn", "backbone"],
                        help="auto: the improved CNN below 224 px, an ImageNet backbone at 224 px")
    parser.add_argument("--backbone", default="EfficientNetB0", choices=list(models.BACKBONES),
                        help="Keras Applications backbone for --model backbone")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per seed")
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's max epochs")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--target-sensitivity", type=float, default=0.95,
                        help="binary tasks: threshold chosen on validation to reach this sensitivity")
    parser.add_argument("--out", default=None,
                        help="JSON report path (default benchmarks/reports/cnn_<dataset>_<size>_<profile>.json)")
    return parser.parse_args(argv)


def run_seed(args: argparse.Namespace, settings: dict[str, Any], seed: int,
             splits: dict[str, tuple[np.ndarray, np.ndarray]], task: str, n_labels: int) -> dict[str, Any]:
    """Train one model with ``seed`` and evaluate it on validation and test."""
    config.set_seed(seed)
    binary = task == "binary-class"
    n_out = 1 if binary else n_labels
    x_train, y_train = splits["train"]
    x_val, y_val = splits["val"]
    x_test, y_test = splits["test"]
    use_backbone = args.model == "backbone" or (args.model == "auto" and args.size == 224)
    if use_backbone:
        model = models.pretrained_backbone(x_train.shape[1:], n_out, name=args.backbone, seed=seed)
    else:
        model = models.improved_cnn(x_train.shape[1:], n_out, seed=seed)
    started = time.time()
    history = models.fit_classifier(
        model, x_train, y_train, x_val, y_val, epochs=args.epochs or settings["max_epochs"],
        batch_size=settings["batch_size"], learning_rate=args.learning_rate,
        patience=settings["patience"], min_epochs=settings["min_epochs"],
    )
    train_seconds = time.time() - started
    val_score = model.predict(x_val, batch_size=256, verbose=0)
    test_score = model.predict(x_test, batch_size=256, verbose=0)
    val_auc, val_acc = evaluation.medmnist_auc_acc(y_val, val_score, task)
    test_auc, test_acc = evaluation.medmnist_auc_acc(y_test, test_score, task)
    aucs = history.history["val_auc"]
    result: dict[str, Any] = {
        "seed": seed, "model": model.name, "parameters": int(model.count_params()),
        "epochs_run": len(aucs),
        "best_epoch": settings["min_epochs"] + int(np.argmax(aucs[settings["min_epochs"]:])) + 1,
        "train_seconds": round(train_seconds, 1),
        "val_auc": val_auc, "val_acc": val_acc, "test_auc": test_auc, "test_acc": test_acc,
    }
    if binary:
        y_val_b, y_test_b = y_val.reshape(-1), y_test.reshape(-1)
        threshold = evaluation.threshold_for_sensitivity(y_val_b, val_score[:, 0], args.target_sensitivity)
        report = evaluation.clinical_report(y_test_b, test_score[:, 0], threshold,
                                            n_boot=settings["n_boot"], seed=seed)
        temperature = evaluation.fit_temperature(models.predict_logits(model, x_val), y_val_b)
        calibrated = evaluation.apply_temperature(models.predict_logits(model, x_test), temperature)
        result.update({
            "threshold": threshold,
            "val_metrics_at_threshold": evaluation.binary_metrics(y_val_b, val_score[:, 0], threshold),
            "test_metrics_at_threshold": {name: dict(zip(["value", "ci_low", "ci_high"], row, strict=True))
                                          for name, row in report.iterrows()},
            "temperature": temperature,
            "test_ece": evaluation.expected_calibration_error(y_test_b, test_score[:, 0]),
            "test_ece_temperature_scaled": evaluation.expected_calibration_error(y_test_b, calibrated),
        })
    print(f"seed {seed}: {len(aucs)} epochs in {train_seconds:.0f} s, val AUC {val_auc:.3f}, "
          f"test AUC {test_auc:.3f}, test ACC {test_acc:.3f}")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write its report; returns the report's payload."""
    started = time.time()
    args = parse_args(argv)
    settings = PROFILES[args.profile]
    info = data.medmnist_info(args.dataset)
    task = info["task"]
    if task not in ("binary-class", "multi-class", "ordinal-regression"):
        raise SystemExit(f"{args.dataset}: task {task!r} is not supported (binary or multi-class only)")
    config.setup_devices(args.profile)
    splits = data.load_medmnist_splits(args.dataset, args.size, settings["n_train"], seed=0)
    per_seed = [run_seed(args, settings, seed, splits, task, len(info["label"])) for seed in args.seeds]
    keys = ["test_auc", "test_acc", "val_auc", "val_acc", "train_seconds", "epochs_run"]
    payload = {
        "benchmark": "cnn_medmnist",
        "dataset": args.dataset, "size": args.size, "task": task,
        "n_train": len(splits["train"][0]), "n_val": len(splits["val"][0]), "n_test": len(splits["test"][0]),
        "settings": settings, "learning_rate": args.learning_rate,
        "recipe": "improved_cnn (per-image standardisation, batch norm, dropout 0.3, augmentation without flips), "
                  "balanced class weights, Adam, LR halved on val-AUC plateau, early stopping on val AUC",
        "target_sensitivity": args.target_sensitivity if task == "binary-class" else None,
        "seeds": args.seeds, "per_seed": per_seed, "summary": summarise(per_seed, keys),
        "reference_medmnist_v2": REFERENCE.get(args.dataset, {}),
        "selection": "model, epoch and threshold chosen on the validation split; test predicted once",
    }
    out = args.out or f"benchmarks/reports/cnn_{args.dataset}_{args.size}_{args.profile}.json"
    write_report(out, payload, args.profile, started)
    summary = payload["summary"]
    print(f"mean test AUC {summary['test_auc']['mean']:.3f}, mean test ACC {summary['test_acc']['mean']:.3f}")
    return payload


if __name__ == "__main__":
    main()
