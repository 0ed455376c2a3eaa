"""Recurrent networks on real sequences (chapter 07): splice junctions and ECG5000.

    .venv/bin/python benchmarks/rnn_sequences.py --task splice --profile cpu --seeds 0 1 2 \\
        --out benchmarks/reports/rnn_splice_cpu.json
    .venv/bin/python benchmarks/rnn_sequences.py --task ecg5000 --profile cpu --seeds 0 1 2 \\
        --out benchmarks/reports/rnn_ecg5000_cpu.json

``splice``: per seed, a stratified 70/15/15 split (``helpers.data.split_indices``) with
identical sequences kept in one split (the file repeats some windows); a
positional k-mer + logistic-regression baseline (k and C chosen on validation) and the
Conv1D + BiLSTM hybrid (early stopping on validation) are scored once on the held-out test
split: accuracy, macro-F1, per-class F1, bootstrap intervals.

``ecg5000``: offline only the 500-beat training split exists, so each seed runs a
stratified 5-fold cross-validation on it. In each fold a GRU classifier (normal vs
abnormal) and a 5-class GRU classifier are trained with early stopping on an inner
validation split, and an LSTM autoencoder is trained on the normal training beats only,
its threshold chosen on the inner validation split (Youden). Out-of-fold predictions of all
folds are pooled for AUC, accuracy and macro-F1. In the ``gpu`` profile the published
4500-beat test split is tried as well; when it cannot be had the report says why.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import (  # noqa: E402
    add_set_argument,
    apply_overrides,
    build_report,
    target,
    write_report,
)
from helpers import config, data, evaluation, models  # noqa: E402
from helpers import sequences as sq  # noqa: E402

SPLICE_CLASSES = sq.SPLICE_CLASSES
ECG_CLASSES = ("normal", "R-on-T PVC", "PVC", "SP beat", "unclassified")


def make_plan(settings: config.Settings) -> dict[str, Any]:
    """The profile's knobs (``helpers.config``, like the notebooks): maximum epochs,
    early-stopping patience, training subset (None = all), the baseline's grid (k, C), the
    k-fold count for ECG and how many of the folds are run (smoke runs one, to test the
    code path quickly), recurrent units and bootstrap resamples."""
    pick = settings.pick
    return {
        "epochs": pick(None, smoke=1, cpu=60, gpu=100),
        "patience": pick(None, smoke=1, cpu=8, gpu=10),
        "n_train": pick(None, None, smoke=120),
        "grid_k": pick(None, (1, 2, 3), smoke=(2,)),
        "grid_c": pick(None, (0.03, 0.1, 0.3, 1.0), smoke=(0.1,)),
        "folds": pick(None, 5, smoke=2),
        "run_folds": pick(None, 5, smoke=1),
        "units": pick(None, smoke=8, cpu=32, gpu=64),
        "n_boot": pick(None, smoke=50, cpu=1000, gpu=2000),
    }


def _multiclass_scores(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, prefix: str = "", n_boot: int = 1000
) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    labels = list(range(n_classes))

    def macro_f1(t: np.ndarray, p: np.ndarray) -> float:
        return f1_score(t, p, labels=labels, average="macro", zero_division=0)

    acc = evaluation.bootstrap_ci(accuracy_score, y_true, y_pred, n_boot=n_boot)
    f1 = evaluation.bootstrap_ci(macro_f1, y_true, y_pred, n_boot=n_boot)
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        f"{prefix}accuracy": acc[0],
        f"{prefix}accuracy_ci": list(acc[1:]),
        f"{prefix}macro_f1": f1[0],
        f"{prefix}macro_f1_ci": list(f1[1:]),
        f"{prefix}per_class_f1": [float(v) for v in per_class],
    }


# --------------------------------------------------------------------------- splice
def run_splice(plan: dict[str, Any], seed: int) -> dict[str, Any]:
    """One seed of the splice-junction benchmark: baseline and hybrid, scored on test once."""
    frame = data.load_uci_sequences("splice")
    x = sq.one_hot_dna(frame["sequence"])
    y = frame["label"].map({c: i for i, c in enumerate(SPLICE_CLASSES)}).to_numpy()
    # identical sequences occur more than once: keep each in one split (no leakage)
    split = sq.splice_split(frame["sequence"], y, plan["n_train"], seed=seed)
    train, val, test = split["train"], split["val"], split["test"]
    result: dict[str, Any] = {
        "seed": seed,
        "n_train": len(train),
        "n_val": len(val),
        "n_test": len(test),
    }

    started = time.time()
    grid, fitted, (k, c) = sq.kmer_grid_search(x, y, train, val, plan["grid_k"], plan["grid_c"])
    baseline = fitted[k, c]
    test_pred = baseline.predict(sq.kmer_features(x[test], k, positional=True))
    result.update(
        _multiclass_scores(y[test], test_pred, 3, prefix="baseline_", n_boot=plan["n_boot"])
    )
    result.update(
        {
            "baseline_k": k,
            "baseline_C": c,
            "baseline_val_accuracy": float(grid["validation accuracy"].max()),
            "baseline_seconds": round(time.time() - started, 1),
        }
    )

    config.set_seed(seed)
    started = time.time()
    units = plan["units"]
    model = sq.conv_bilstm_classifier(x.shape[1:], 3, filters=2 * units, units=units)
    history = models.train(
        model,
        x[train],
        y[train],
        x[val],
        y[val],
        epochs=plan["epochs"],
        patience=plan["patience"],
        **sq.RNN_SCHEDULE,
    )
    test_pred = model.predict(x[test], verbose=0).argmax(axis=1)
    result.update(_multiclass_scores(y[test], test_pred, 3, n_boot=plan["n_boot"]))
    result.update(
        {
            "epochs_run": history["epochs_run"],
            "best_epoch": history["best_epoch"],
            "val_accuracy": history["val_accuracy"][history["best_epoch"] - 1],
            "parameters": int(model.count_params()),
            "seconds": round(time.time() - started, 1),
        }
    )
    return result


# --------------------------------------------------------------------------- ECG5000
def _ecg_fold(
    plan: dict[str, Any],
    x: np.ndarray,
    y5: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
) -> dict[str, np.ndarray]:
    """Train the three ECG models on ``train`` and score the beats of ``test``."""
    from sklearn.model_selection import train_test_split

    abnormal = (y5 != 0).astype(np.float32)
    fit, val = train_test_split(train, test_size=0.15, stratify=abnormal[train], random_state=seed)
    series = x[..., None]
    units = 2 * plan["units"]
    common = {"epochs": plan["epochs"], "patience": plan["patience"], **sq.RNN_SCHEDULE}

    config.set_seed(seed)
    binary = sq.rnn_classifier(series.shape[1:], 2, cell="gru", units=units, dropout=0.2)
    models.train(binary, series[fit], abnormal[fit], series[val], abnormal[val], **common)

    config.set_seed(seed)
    five = sq.rnn_classifier(series.shape[1:], 5, cell="gru", units=units, dropout=0.2)
    models.train(five, series[fit], y5[fit], series[val], y5[val], **common)

    config.set_seed(seed)
    normal_fit, normal_val = fit[y5[fit] == 0], val[y5[val] == 0]
    auto = sq.lstm_autoencoder(x.shape[1], units=units)
    models.train(
        auto,
        series[normal_fit],
        series[normal_fit],
        series[normal_val],
        series[normal_val],
        batch_size=32,
        **common,
    )
    threshold = evaluation.youden_threshold(abnormal[val], sq.reconstruction_error(auto, x[val]))
    return {
        "binary_score": binary.predict(series[test], verbose=0)[:, 0],
        "five_pred": five.predict(series[test], verbose=0).argmax(axis=1),
        "ae_score": sq.reconstruction_error(auto, x[test]),
        "ae_threshold": np.full(len(test), threshold),
    }


def _ecg_scores(
    y5: np.ndarray, out: dict[str, np.ndarray], prefix: str = "", n_boot: int = 1000
) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    abnormal = (y5 != 0).astype(int)
    result = _multiclass_scores(y5, out["five_pred"], 5, prefix=prefix, n_boot=n_boot)
    auc = evaluation.bootstrap_ci(roc_auc_score, abnormal, out["binary_score"], n_boot=n_boot)
    rule = evaluation.binary_metrics(abnormal, out["binary_score"], 0.5)
    ae_auc = evaluation.bootstrap_ci(roc_auc_score, abnormal, out["ae_score"], n_boot=n_boot)
    ae_called = (out["ae_score"] >= out["ae_threshold"]).astype(float)
    ae_rule = evaluation.binary_metrics(abnormal, ae_called, 0.5)
    result.update(
        {
            f"{prefix}auc_normal_vs_abnormal": auc[0],
            f"{prefix}auc_normal_vs_abnormal_ci": list(auc[1:]),
            f"{prefix}binary_sensitivity": rule["sensitivity"],
            f"{prefix}binary_specificity": rule["specificity"],
            f"{prefix}binary_accuracy": rule["accuracy"],
            f"{prefix}autoencoder_auc": ae_auc[0],
            f"{prefix}autoencoder_auc_ci": list(ae_auc[1:]),
            f"{prefix}autoencoder_sensitivity": ae_rule["sensitivity"],
            f"{prefix}autoencoder_specificity": ae_rule["specificity"],
            f"{prefix}per_class_recall": [
                float(np.mean(out["five_pred"][y5 == k] == k)) if np.any(y5 == k) else float("nan")
                for k in range(5)
            ],
        }
    )
    return result


def run_ecg(plan: dict[str, Any], seed: int) -> dict[str, Any]:
    """One seed of the ECG5000 benchmark: k-fold cross-validation on the 500 training beats."""
    from sklearn.model_selection import StratifiedKFold

    x, labels = data.load_ucr("ecg5000", "train")
    y5 = labels - 1
    index = data.stratified_subset(y5 != 0, plan["n_train"], seed=seed)
    x, y5 = x[index], y5[index]
    started = time.time()
    folds = StratifiedKFold(plan["folds"], shuffle=True, random_state=seed)
    pooled: dict[str, list[np.ndarray]] = {}
    covered, fold_aucs = [], []
    from sklearn.metrics import roc_auc_score

    for number, (train, test) in enumerate(folds.split(x, (y5 != 0))):
        if number == plan["run_folds"]:
            break
        out = _ecg_fold(plan, x, y5, train, test, seed)
        fold_aucs.append(float(roc_auc_score(y5[test] != 0, out["binary_score"])))
        covered.append(test)
        for key, value in out.items():
            pooled.setdefault(key, []).append(value)
    scored = np.concatenate(covered)  # every beat once, each predicted by the fold that held it out
    result: dict[str, Any] = {
        "seed": seed,
        "n_beats": len(x),
        "folds": plan["folds"],
        "folds_run": len(covered),
        "n_scored": len(scored),
    }
    result.update(
        _ecg_scores(
            y5[scored], {k: np.concatenate(v) for k, v in pooled.items()}, n_boot=plan["n_boot"]
        )
    )
    result.update(
        {
            "fold_auc_normal_vs_abnormal": fold_aucs,
            "mean_fold_auc_normal_vs_abnormal": float(np.mean(fold_aucs)),
            "seconds": round(time.time() - started, 1),
        }
    )

    if plan["full_test"]:  # the published test split (gpu profile), when it can be had
        try:
            x_test, test_labels = data.load_ucr("ecg5000", "test")
        except data.DatasetUnavailable as error:
            result["full_test"] = f"unavailable: {error}"
        else:
            from sklearn.model_selection import train_test_split

            train, val = train_test_split(
                np.arange(len(x)), test_size=0.15, stratify=y5 != 0, random_state=seed
            )
            merged = np.concatenate([x, x_test])
            y_all = np.concatenate([y5, test_labels - 1])
            test_idx = np.arange(len(x), len(merged))
            out = _ecg_fold(plan, merged, y_all, np.concatenate([train, val]), test_idx, seed)
            result["full_test"] = _ecg_scores(y_all[test_idx], out, n_boot=plan["n_boot"])
    return result


# --------------------------------------------------------------------------- main
METRICS = {
    "splice": {
        "accuracy": {
            "label": "test accuracy, Conv1D + BiLSTM",
            "column": "test accuracy",
            "unit": "",
        },
        "macro_f1": {
            "label": "test macro-F1, Conv1D + BiLSTM",
            "column": "test macro-F1",
            "unit": "",
        },
        "seconds": {"label": "seconds per seed (both models)", "unit": "s"},
    },
    "ecg5000": {
        "auc_normal_vs_abnormal": {
            "label": "normal vs abnormal AUC, GRU (pooled out-of-fold)",
            "column": "normal vs abnormal AUC (pooled out-of-fold)",
            "unit": "",
        },
        "mean_fold_auc_normal_vs_abnormal": {
            "label": "normal vs abnormal AUC, GRU (mean of the folds)",
            "unit": "",
        },
        "binary_sensitivity": {
            "label": "sensitivity, GRU (threshold 0.5)",
            "column": "sensitivity (each model's own threshold)",
            "unit": "",
        },
        "binary_specificity": {
            "label": "specificity, GRU (threshold 0.5)",
            "column": "specificity (each model's own threshold)",
            "unit": "",
        },
        "accuracy": {"label": "five-class accuracy, GRU", "unit": ""},
        "macro_f1": {"label": "five-class macro-F1, GRU", "unit": ""},
        "seconds": {"label": "seconds per seed", "unit": "s"},
    },
}
# simpler methods, same protocol: report name -> per-seed key of each headline metric
BASELINES = {
    "splice": {
        "positional k-mer logistic regression": {
            "accuracy": "baseline_accuracy",
            "macro_f1": "baseline_macro_f1",
        }
    },
    "ecg5000": {
        "LSTM autoencoder trained on normal beats (reconstruction error)": {
            "auc_normal_vs_abnormal": "autoencoder_auc",
            "binary_sensitivity": "autoencoder_sensitivity",
            "binary_specificity": "autoencoder_specificity",
        }
    },
}
# this benchmark's model, as the baseline table names it
METHODS = {"splice": "Conv1D + BiLSTM", "ecg5000": "GRU"}
TARGETS = {
    "splice": [("accuracy", ">=", 0.96), ("seconds", "<=", 180)],
    "ecg5000": [("auc_normal_vs_abnormal", ">=", 0.98)],
}
DATASETS = {
    "splice": "UCI splice junctions (primate DNA, 60 bases; EI / IE / N)",
    "ecg5000": "ECG5000 (UCR), the 500-beat training split; normal vs abnormal and five classes",
}
REFERENCES = {
    "splice": "Published results on this dataset (e.g. KBANN, Towell et al. 1990) used other splits "
    "and cross-validation without grouping the repeated windows, and could not be checked "
    "offline; the fair comparison is the baseline measured here on the same grouped splits.",
    "ecg5000": "Published ECG5000 results use the 4,500-beat test split and the five classes; offline "
    "only the 500 training beats exist, so we cross-validate on them and compare with a "
    "baseline measured here instead.",
}
MODEL_CARDS = {
    "splice": {
        "intended_use": "Teaching: reading DNA with a Conv1D + bidirectional LSTM and checking with "
        "in-silico mutagenesis that it uses the GT/AG splice consensus.",
        "data": "UCI splice-junction data: 3,190 primate DNA windows of 60 bases from GenBank 64.1, "
        "labelled donor (EI), acceptor (IE) or neither (N); repeated windows kept in one split.",
        "not_for": "Annotating genes or predicting the effect of a patient's variant; other species, "
        "window lengths or sequencing technologies.",
        "failure_modes": [
            "A positional k-mer logistic regression is as accurate (recurrent networks chapter).",
            "The file repeats windows; random splits put copies in training and test and inflate "
            "accuracy (recurrent networks chapter).",
        ],
    },
    "ecg5000": {
        "intended_use": "Teaching: separating normal from abnormal heartbeats with a GRU, and "
        "detecting abnormal beats without abnormal labels.",
        "data": "ECG5000: beats of one 20-hour ECG of one patient with severe congestive heart "
        "failure (BIDMC database), resampled to 140 samples and z-normalised.",
        "not_for": "Any patient: the beats come from one person, one lead, pre-cut and aligned; no "
        "rhythm diagnosis (atrial fibrillation, pacing) and no ST-segment assessment.",
        "failure_modes": [
            "The rare classes have 2 to 19 beats: five-class recall on them is an anecdote "
            "(recurrent networks chapter).",
            "Results on one patient's beats say nothing about other patients.",
            "The benchmark's autoencoder is the plain 140-step LSTM design; in the recurrent networks "
            "chapter that design reconstructed normal beats worse than the mean normal beat, so its "
            "AUC here may say little beyond distance to the mean beat (the chapter's convolutional "
            "autoencoder does better).",
        ],
    },
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark for the given command-line arguments; return the report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(METRICS), required=True)
    parser.add_argument(
        "--profile",
        default="auto",
        choices=[*config.PROFILE_NAMES, "auto"],
        help="DL4H_PROFILE, when set, wins",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True)
    add_set_argument(parser)
    args = parser.parse_args(argv)
    import tensorflow as tf  # imported quietly by helpers.config already

    # Each new model traces new predict functions; TensorFlow's warning about that
    # "retracing" is expected here and harmless.
    tf.get_logger().setLevel("ERROR")

    started = time.time()
    settings = config.setup(args.profile, seed=args.seeds[0])
    profile = settings.profile  # DL4H_PROFILE, when set, wins
    plan = apply_overrides({**make_plan(settings), "full_test": profile == "gpu"}, args.set)
    run = run_splice if args.task == "splice" else run_ecg
    per_seed = []
    for seed in args.seeds:
        per_seed.append(run(plan, seed))
        shown = {k: round(per_seed[-1][k], 4) for k in METRICS[args.task]}
        print(f"seed {seed}: {shown}", flush=True)
    baselines = {
        name: {
            metric: float(np.mean([run[key] for run in per_seed])) for metric, key in keys.items()
        }
        for name, keys in BASELINES[args.task].items()
    }
    report = build_report(
        benchmark=f"rnn_{args.task}",
        dataset=DATASETS[args.task],
        profile=profile,
        seeds=args.seeds,
        settings={
            **plan,
            "classes": list(SPLICE_CLASSES if args.task == "splice" else ECG_CLASSES),
        },
        metrics=METRICS[args.task],
        per_seed=per_seed,
        model_card=MODEL_CARDS[args.task],
        argv=argv,
        script="benchmarks/rnn_sequences.py",
        started=started,
        baselines=baselines,
        reference={
            "citation": "none on this protocol",
            "protocol": REFERENCES[args.task],
            "rows": {},
        },
        targets=[target(*goal) for goal in TARGETS[args.task]],
        details={"method": METHODS[args.task]},
    )
    write_report(args.out, report)
    return report


if __name__ == "__main__":
    main()
