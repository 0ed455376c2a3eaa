"""Estimate what each chapter's ``gpu`` profile needs on a Colab T4: memory and minutes.

No notebook of this course has run on a real GPU yet (see the README). This script gives
the next best thing, an estimate whose every input is stated:

1. :data:`JOBS` lists, per chapter, the training (and heavy inference) jobs its ``gpu``
   profile runs, read from the notebook code (the cell is named in each entry) and built
   with the project's own builders at the ``gpu`` sizes. The knob values come from
   :data:`GPU_KNOBS`; ``tests/test_gpu_estimate.py`` checks them against the notebooks'
   ``S.pick(..., gpu=...)`` calls, so a changed notebook fails the test until this table
   follows.
2. For every model it measures here, on the CPU: parameters, forward FLOPs per sample
   (TensorFlow's profiler on a frozen concrete function, plus two layer types the profiler
   does not count, see :func:`forward_flops`), and activation elements per sample (the sum
   of all layer output sizes, nested models included).
3. Memory on the GPU (:func:`training_memory_bytes`): 18 bytes per parameter (float32
   weights, gradients and two Adam moments, plus the float16 copy that mixed precision
   casts) and 2 bytes per activation element per sample in the batch (float16), times 1
   (low) to 2 (high) for the backward pass's temporaries and cuDNN workspaces.
4. Minutes on a T4 (:func:`job_seconds`): per training step the larger of the FLOP time
   (3 x forward FLOPs x batch / a sustained rate) and a per-step overhead, plus a per-epoch
   and per-model fixed cost. The sustained rate is calibrated on NVIDIA's published T4
   ResNet-50 throughput (:data:`CALIBRATION`) with ResNet-50's FLOPs counted by the same
   counter. Low and high estimates bracket the stated assumptions.
5. Host RAM: the chapter's main NumPy arrays at gpu sizes (:func:`host_arrays_gb`), against
   Colab's 12.7 GB. CPU-side work is listed (:data:`CPU_SIDE`); for chapter 03, whose
   gpu-profile work is all on the CPU, the pipeline timing is estimated from per-film costs
   measured here (:func:`measure_pipeline`).

Run: ``.venv/bin/python benchmarks/gpu_estimate.py`` (about two minutes on 2 cores; needs the
course data for the split sizes). It writes ``benchmarks/reports/gpu/gpu_estimate.json``
and ``gpu_estimate.md``; the README's table is :func:`markdown_table` of that report. (The
reports live in a sub-folder because ``benchmarks/reports/*.json`` must all be benchmark
reports in the common format of ``benchmarks/report.py``.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
OUT_DIR = ROOT / "benchmarks" / "reports" / "gpu"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up messages

# --------------------------------------------------------------------------- the knobs
# The gpu-profile values of the notebooks' knobs that the job table uses, per chapter.
# tests/test_gpu_estimate.py parses every `NAME = S.pick(..., gpu=VALUE)` of the notebook
# and fails when one of these differs. Values from helpers.config.PROFILES["gpu"]
# (S.epochs, S.img_size, S.batch_size) are under "S.<field>" and checked against it.
GPU_KNOBS: dict[str, dict[str, Any]] = {
    "00": {},
    "01": {
        "N_SPLITS": 10,
        "MLP_STEPS": 1500,
        "N_TREES": 500,
        "N_BOOT": 2000,
        "TRAIN_SIZES": [20, 40, 80, 160, 320],
        "N_REPEATS": 10,
        "NOISE_LEVELS": [0.0, 0.1, 0.2, 0.3, 0.4],
        "N_LEAK_SEEDS": 50,
    },
    "02": {"EPOCHS": 300, "N_SEEDS": 10, "REG_EPOCHS": 600, "GD_STEPS": 5000},
    "03": {"N_PIPELINE": None, "TIMED_EPOCHS": 5, "S.img_size": 224, "S.batch_size": 128},
    "04": {
        "S.epochs": 30,
        "S.img_size": 224,
        "ABLATION_EPOCHS": 8,
        "N_ABLATION": 2000,
        "N_SEEDS": 3,
        "MAX_EPOCHS": 30,
        "FINAL_MODEL": "backbone",
        "BACKBONE": "EfficientNetB0",
        "N_BOOT": 2000,
        "RES_DEPTH": 31,
        "N_RES": 2000,
        "RES_EPOCHS": 5,
        "RES_SEEDS": 3,
    },
    "05": {
        "SIZE": 64,
        "EPOCHS_3D": 80,
        "EPOCHS_2D": 30,
        "LAST_K": 20,
        "SEG_EPOCHS": 150,
        "WIDTHS": (32, 64, 128, 256),
        "CONVS": (2, 2, 2, 2),
        "SEG_3D": True,
        "SEG_BASE": 32,
    },
    "06": {
        "IMG_SIZE": 64,
        "GAN_STEPS": 8000,
        "BASE_FILTERS": 64,
        "CLF_EPOCHS": 20,
        "N_GENERATED": 4708,
    },
    "07": {
        "EPOCHS": 100,
        "CELL_EPOCHS": 30,
        "ECG_EPOCHS": 100,
        "AE_EPOCHS": 300,
        "UNITS": 64,
        "N_ISM": 250,
        "FULL_ECG": True,
        "PATIENCE": 10,
    },
    "08": {
        "EPOCHS": 40,
        "UNITS": 64,
        "COX_EPOCHS": 300,
        "TREES": 400,
        "N_BOOT": 2000,
        "PATIENCE": 6,
    },
    "09": {
        "IMG_SIZE": 64,
        "N_MEMBERS": 8,
        "MEMBER_EPOCHS": 20,
        "MC_SAMPLES": 100,
        "N_EXPLAIN": 12,
        "ROUNDS": 20,
        "LOCAL_EPOCHS": 2,
        "N_HOSPITALS": 4,
        "N_SIMS": 20,
    },
}
K = GPU_KNOBS

NOTEBOOKS = {
    "00": "00_start_here",
    "01": "01_deep_learning_vs_machine_learning",
    "02": "02_neural_network_foundations",
    "03": "03_medical_image_preprocessing",
    "04": "04_cnn_chest_xray",
    "05": "05_volumes_and_segmentation",
    "06": "06_gan_synthetic_images",
    "07": "07_rnn_sequences",
    "08": "08_disease_course_prediction",
    "09": "09_trustworthy_clinical_ai",
}

# Work that runs on Colab's 2 CPU cores whatever the accelerator (not in the minutes below).
CPU_SIDE = {
    "00": "none to speak of (reads the data, one papermill copy)",
    "01": "random forests (500 trees) in every fold, learning-curve subset and noise level, "
    "50 leakage splits with a 100-tree forest each, four imputers, 2000 bootstraps",
    "02": "the NumPy network (5000 full-batch steps) and the gradient experiments",
    "03": "all of it: DICOM handling and the input-pipeline timing (8 tf.data variants x 5 "
    "epochs over 4708 films at 224 px, decoded and augmented on the CPU; minutes estimated "
    "from per-film costs measured here)",
    "04": "bootstrap intervals (2000 resamples)",
    "05": "reading the NIfTI volumes, HD95 surface distances, 2000 bootstraps",
    "06": "Frechet distances, nearest-neighbour memorisation search over 4708 x 4708 films "
    "at 64 px, 2000 bootstraps",
    "07": "k-mer logistic-regression grid search, 2000 bootstraps",
    "08": "parsing 12,000 PhysioNet stays, 400-tree gradient boosting (several fits), a "
    "400-tree random survival forest, Cox models, 2000 bootstraps",
    "09": "20 simulated treatment data sets with gradient boosting and MLP learners, "
    "subgroup bootstraps (2000)",
}

# --------------------------------------------------------------------------- calibration
# Read in NVIDIA/DeepLearningExamples, TensorFlow/Classification/ConvNets/resnet50v1.5/
# README.md ("Inference performance: NVIDIA T4 (1x T4 16G)", "Mixed Precision Inference
# Latency", TensorFlow 20.06-tf1-py3 NGC container) and the same README's DGX-1 tables.
# The README gives no T4 *training* throughput, so the training rate is derived from the
# T4 inference rate in two ways (the two ends of the range):
#   fast: divided by the training/inference ratio that the same README measured on a V100
#         (inference 2742.14 img/s, batch 256, mixed precision; training 1270 img/s, batch
#         256, mixed precision + XLA, 1 GPU): 2.16;
#   slow: divided by 3 (a training step costs about three forward passes).
CALIBRATION = {
    "source": "NVIDIA/DeepLearningExamples, TensorFlow/Classification/ConvNets/resnet50v1.5/"
    "README.md",
    "t4_inference_img_s": 993.39,
    "t4_inference_setting": "ResNet-50 v1.5, NVIDIA T4 16 GB, mixed precision, batch 256, "
    "TensorFlow 20.06-tf1-py3 NGC container, no XLA",
    "v100_inference_img_s": 2742.14,
    "v100_training_img_s": 1270.0,
    "v100_setting": "DGX-1, 1x V100 16 GB, mixed precision, batch 256 (training + XLA)",
    "slow_train_over_infer": 3.0,
    # EfficientNet-B0 trains at far fewer FLOP/s than ResNet-50 (depthwise convolutions are
    # memory-bound). NVIDIA/DeepLearningExamples, TensorFlow2/Classification/ConvNets/
    # efficientnet_v1/README.md, 1 GPU, mixed precision: EfficientNet v1-B0 trains at
    # 3454 img/s on an A100 80GB and 868 img/s on a V100 32GB (the README notes B0 is
    # CPU-bound by its augmentation there); ResNet-50 v1.5 (first README) 2375 img/s on an
    # A100 40GB and 1270 img/s on a V100 16GB.
    "effnet_b0_train_img_s": {"A100": 3454.0, "V100": 868.0},
    "resnet50_train_img_s": {"A100": 2375.0, "V100": 1270.0},
    "effnet_source": "NVIDIA/DeepLearningExamples, TensorFlow2/Classification/ConvNets/"
    "efficientnet_v1/README.md",
}
T4_USABLE_GB = 15.0  # of the card's 16 GB, what TensorFlow gets on Colab (about 15 GiB)
COLAB_RAM_GB = 12.7  # Colab's free-tier host memory
# Keras from NumPy arrays on Colab is not NVIDIA's tuned NGC container (DALI, XLA): the
# share of the calibrated rate a Keras job reaches, from 1 (low minutes) to 0.5 (high).
KERAS_EFFICIENCY = (1.0, 0.5)
# Host-to-device copy of each batch of NumPy inputs (PCIe 3 x16; Colab's virtual machines
# reach less): bytes per second, (fast, slow).
H2D_BYTES_S = (10e9, 3e9)
# Fixed costs (seconds, low and high): building, tracing and compiling one model's training
# and prediction functions (on the project's CPU, build + compile + first fit + predict took
# 2.1-4.4 s for chapter 01's MLP and 4.8-5.2 s for the 64-px improved CNN; larger graphs
# take longer), and setting up one epoch or fit() call (an assumption).
BUILD_S = (2.0, 10.0)
EPOCH_S = (0.05, 0.3)
# Recurrent layers: per time step of a training step, the loop overhead on a GPU (ms).
# cuDNN runs a whole LSTM/GRU sequence in one kernel; a Python-defined cell (SimpleRNN
# has no cuDNN kernel, GRU-D is a custom cell) launches its kernels once per time step,
# forward and backward.
RNN_STEP_MS = {"cudnn": (0.005, 0.02), "loop": (0.1, 0.3)}
# Host overhead per training step (seconds), measured with measure_overhead() on the
# project's shared 2-core machine on 2026-12-02: the fastest of four runs of this script
# (load only slows it; 1.5-2.9 ms and 0.54-1.5 ms were seen). Fixed here so that the report
# does not move with the machine's load; every run measures again and records the new
# values under "overhead_measured_now".
HOST_STEP_S = {"fit_step_s": 1.5e-3, "fused_step_s": 0.54e-3}
# Chapter 03's input-pipeline timing runs on the CPU whatever the accelerator. Per 224-px
# film on 2 cores (ms), measured with measure_pipeline() the same way (fastest of three
# runs; 0.38-0.68 and 5.1-6.9 ms were seen): PNG decoding and the chapter's augmentation +
# normalisation (cell 62) in tf.data with AUTOTUNE. The high estimate is 1.5 x (Colab's
# 2.2 GHz vCPUs; real 224-px films compress worse than the upsampled 28-px films timed here,
# so they decode slower).
PIPELINE_MS = {"decode": 0.38, "augment": 5.1}
# Cell 66: 8 variants x TIMED_EPOCHS epochs; decoding runs in every epoch of the 3 uncached
# PNG variants and once in the 3 cached ones, augmentation in every epoch of the 6
# augmented variants (4 PNG, 2 from arrays).
PIPELINE_PASSES = {
    "decode": 3 * K["03"]["TIMED_EPOCHS"] + 3,
    "augment": 6 * K["03"]["TIMED_EPOCHS"],
}


# --------------------------------------------------------------------------- jobs
@dataclass
class Job:
    """One training (or inference) job of a chapter's gpu profile.

    ``models`` maps a model key of :data:`MODELS` to the forward passes per sample that a
    step costs: 3 for ordinary training (forward, backward to activations and to weights),
    1 for inference; a GAN step is 4 generator + 9 discriminator forwards (see the note).
    ``samples`` per epoch, ``epochs`` (a ceiling when ``ceiling``: early stopping may end
    it sooner), ``repeats`` (seeds, arms, members, folds), ``steps`` overrides
    ``ceil(samples / batch) * epochs`` when the notebook counts steps. ``val_samples`` are
    forward passes after every epoch (validation); ``fused`` means Keras runs many steps
    per call (``steps_per_execution``), so the per-step host overhead is paid once;
    ``loop`` means the notebook calls a compiled step from a Python loop (no ``fit()``), so
    an epoch costs no Keras set-up, only its evaluation calls.
    """

    chapter: str
    name: str
    models: dict[str, float]
    samples: int
    epochs: int
    batch: int
    repeats: int = 1
    ceiling: bool = False
    steps: int | None = None
    val_samples: int = 0
    fused: bool = False
    loop: bool = False  # a Python loop over batches, no Keras fit(): no per-epoch set-up
    builds: int | None = None  # models built and compiled (default: repeats)
    cell: str = ""
    note: str = ""

    @property
    def train(self) -> bool:
        return any(v > 1 for v in self.models.values())

    def steps_per_repeat(self) -> int:
        if self.steps is not None:
            return self.steps
        return math.ceil(self.samples / self.batch) * self.epochs


def _jobs(sizes: dict[str, int]) -> list[Job]:
    """The job table. ``sizes`` holds the split sizes (:func:`split_sizes`)."""
    s = sizes
    pn_train, pn_val, pn_test = s["pneumonia_train"], s["pneumonia_val"], s["pneumonia_test"]
    lc = [n for n in K["01"]["TRAIN_SIZES"] if n < s["bc_lc_train"]]
    # fmt: off
    return [
        # ---- 01 (cells 10, 15, 25): the 30-32-16-1 Keras MLP, MLP_STEPS steps of 64 per fit
        Job("01", "MLP, cross-validation", {"mlp_bc": 3}, samples=0, epochs=1, batch=64,
            repeats=K["01"]["N_SPLITS"], steps=K["01"]["MLP_STEPS"], fused=True, cell="cell 10"),
        Job("01", "MLP, learning curves", {"mlp_bc": 3}, samples=0, epochs=1, batch=64,
            repeats=len(lc) * K["01"]["N_REPEATS"] + 1, steps=K["01"]["MLP_STEPS"], fused=True,
            cell="cell 15", note="sizes below the 398-case training part x N_REPEATS, + all"),
        Job("01", "MLP, label noise", {"mlp_bc": 3}, samples=0, epochs=1, batch=64,
            repeats=len(K["01"]["NOISE_LEVELS"]) * K["01"]["N_SPLITS"], steps=K["01"]["MLP_STEPS"],
            fused=True, cell="cell 25"),
        # ---- 02 (cells 26, 27, 29): Python loop over mini-batches of 32 (train())
        Job("02", "optimiser race", {"mlp_diabetes_16": 3}, samples=s["diabetes_train"],
            epochs=K["02"]["EPOCHS"], batch=32, repeats=3 * K["02"]["N_SEEDS"], ceiling=True,
            loop=True, cell="cells 26-27",
            note="3 optimisers on the first seed, then N_SEEDS - 1 more seeds that stop at "
                 "training MSE 0.5 (ceiling)"),
        Job("02", "regularisation", {"mlp_diabetes_128": 3}, samples=s["diabetes_train"],
            epochs=K["02"]["REG_EPOCHS"], batch=32, repeats=4, ceiling=True, loop=True,
            cell="cell 29", note="4 regimes; early stopping (patience 20) ends one sooner"),
        # ---- 03: no training (the pipeline timing runs on the CPU)
        # ---- 04 (cells 22, 25, 27, 33): 224-px films
        Job("04", "plain vs residual stacks", {"conv_stack_224": 3}, samples=K["04"]["N_RES"],
            epochs=K["04"]["RES_EPOCHS"], batch=64, repeats=2 * K["04"]["RES_SEEDS"],
            cell="cell 22", note="2 stacks (plain, residual) x RES_SEEDS"),
        Job("04", "article's CNN (baseline)", {"seed_cnn_224": 3}, samples=pn_train,
            epochs=K["04"]["S.epochs"], batch=32, cell="cell 25"),
        Job("04", "ablation: improved CNN arms", {"improved_cnn_224": 3},
            samples=K["04"]["N_ABLATION"], epochs=K["04"]["ABLATION_EPOCHS"], batch=64,
            repeats=4 * K["04"]["N_SEEDS"], val_samples=0, cell="cell 27", note="4 arms x N_SEEDS"),
        Job("04", "ablation: article's CNN arm", {"seed_cnn_224": 3}, samples=K["04"]["N_ABLATION"],
            epochs=K["04"]["ABLATION_EPOCHS"], batch=64, repeats=K["04"]["N_SEEDS"],
            cell="cell 27"),
        Job("04", "ablation predictions", {"improved_cnn_224": 1}, samples=3 * pn_val, epochs=1,
            batch=256, repeats=5 * K["04"]["N_SEEDS"], builds=0, cell="cell 27",
            note="validation, brightened and darkened films for every run"),
        Job("04", "EfficientNetB0 fine-tuning", {"efficientnetb0_224": 3}, samples=pn_train,
            epochs=K["04"]["MAX_EPOCHS"], batch=64, ceiling=True, val_samples=pn_val,
            cell="cell 33"),
        Job("04", "test predictions, Grad-CAM", {"efficientnetb0_224": 1}, samples=4 * pn_test,
            epochs=1, batch=256, builds=1, cell="cells 39-47"),
        # ---- 05 (cells 16, 28): AdrenalMNIST3D at 64 voxels, hippocampus 3D U-Net
        Job("05", "2D slice CNN", {"cnn2d_slices_64": 3}, samples=s["adrenal_slices_train"],
            epochs=K["05"]["EPOCHS_2D"], batch=128, val_samples=0, cell="cell 16",
            note="every axial slice that shows the gland"),
        Job("05", "2D slice predictions", {"cnn2d_slices_64": 1},
            samples=s["adrenal_slices_valtest"], epochs=1, batch=512, builds=0, cell="cell 16"),
        Job("05", "2.5D CNN (snapshot ensemble)", {"cnn2d_central_64": 3},
            samples=s["adrenal_train"], epochs=3 * K["05"]["EPOCHS_2D"], batch=64,
            val_samples=s["adrenal_val"], cell="cell 16",
            note="3 x EPOCHS_2D epochs; the test split predicted in the last LAST_K"),
        Job("05", "3D CNN (snapshot ensemble)", {"cnn3d_64": 3}, samples=s["adrenal_train"],
            epochs=K["05"]["EPOCHS_3D"], batch=32, val_samples=2 * s["adrenal_val"], cell="cell 16",
            note="random shifts on the CPU each epoch; flip test-time augmentation"),
        Job("05", "3D CNN test predictions", {"cnn3d_64": 1},
            samples=2 * s["adrenal_test"] * K["05"]["LAST_K"], epochs=1, batch=128, builds=0,
            cell="cell 16", note="last LAST_K epochs, with flips"),
        Job("05", "3D U-Net (hippocampus)", {"unet3d_hippo": 3}, samples=s["hippo_train"],
            epochs=K["05"]["SEG_EPOCHS"], batch=4, cell="cell 28",
            note="whole 48x64x48 volumes, batch 4"),
        # ---- 06 (cells 9, 11, 18, 23, 25): 64-px films in the gpu profile
        Job("06", "reference classifier (real films)", {"improved_cnn_64": 3}, samples=pn_train,
            epochs=K["06"]["CLF_EPOCHS"], batch=64, ceiling=True, val_samples=pn_val,
            cell="cell 9"),
        Job("06", "3 GANs (cGAN x2, GAN)", {"generator_64": 4, "discriminator_64": 9}, samples=0,
            epochs=1, batch=64, repeats=3, steps=K["06"]["GAN_STEPS"], cell="cells 11, 18",
            note="per step: D step (G forward, D forward+backward on real and fake) and G step "
                 "(G and D forward+backward); the unconditional GAN counted as conditional"),
        Job("06", "sampling synthetic films", {"generator_64": 1}, samples=K["06"]["N_GENERATED"],
            epochs=1, batch=512, repeats=3, builds=0, cell="cell 23"),
        Job("06", "TSTR classifier (synthetic films)", {"improved_cnn_64": 3},
            samples=K["06"]["N_GENERATED"], epochs=K["06"]["CLF_EPOCHS"], batch=64, ceiling=True,
            val_samples=pn_val, cell="cell 25"),
        # ---- 07 (cells 15, 21, 27, 32, 34, 36, 39)
        Job("07", "SimpleRNN / LSTM / GRU",
            {"rnn_simple_splice": 3, "rnn_lstm_splice": 3, "rnn_gru_splice": 3},
            samples=s["splice_train"], epochs=K["07"]["CELL_EPOCHS"], batch=64, cell="cell 15",
            note="three models, one after the other (their FLOPs are summed per step)"),
        Job("07", "BiLSTM (splice)", {"bilstm_splice": 3}, samples=s["splice_train"],
            epochs=K["07"]["EPOCHS"], batch=64, ceiling=True, val_samples=s["splice_val"],
            cell="cell 21"),
        Job("07", "Conv1D + BiLSTM (splice)", {"conv_bilstm_splice": 3}, samples=s["splice_train"],
            epochs=K["07"]["EPOCHS"], batch=64, ceiling=True, val_samples=s["splice_val"],
            cell="cell 21"),
        Job("07", "in-silico mutagenesis", {"conv_bilstm_splice": 1},
            samples=2 * K["07"]["N_ISM"] * 60 * 4, epochs=1, batch=2048, builds=0, cell="cell 27"),
        Job("07", "GRU, ECG normal vs abnormal", {"gru_ecg_2": 3}, samples=s["ecg_train"],
            epochs=K["07"]["ECG_EPOCHS"], batch=64, ceiling=True, val_samples=s["ecg_val"],
            cell="cell 32"),
        Job("07", "GRU, ECG 5 classes (plain, weighted)", {"gru_ecg_5": 3}, samples=s["ecg_train"],
            epochs=K["07"]["ECG_EPOCHS"], batch=64, repeats=2, ceiling=True,
            val_samples=s["ecg_val"], cell="cell 34"),
        Job("07", "LSTM autoencoder (normal beats)", {"lstm_ae_ecg": 3},
            samples=s["ecg_normal_train"], epochs=K["07"]["AE_EPOCHS"], batch=32, ceiling=True,
            val_samples=s["ecg_normal_val"], cell="cell 36"),
        Job("07", "4500-beat test split", {"gru_ecg_2": 1}, 4500, 1, 256, builds=0, cell="cell 39"),
        # ---- 08 (cells 20, 40)
        Job("08", "GRU and GRU-D mortality models", {"gru_mortality": 3, "grud_mortality": 3},
            samples=s["physionet_train"], epochs=K["08"]["EPOCHS"], batch=64, ceiling=True,
            val_samples=s["physionet_val"], cell="cell 20",
            note="two models, one after the other (their FLOPs are summed per step)"),
        Job("08", "neural Cox (GBSG)", {"cox_gbsg": 3}, samples=s["gbsg_fit"],
            epochs=K["08"]["COX_EPOCHS"], batch=256, ceiling=True,
            val_samples=s["gbsg_train"] - s["gbsg_fit"], cell="cell 40"),
        # ---- 09 (cells 7, 9, 18, 23, 44): 64-px films
        Job("09", "deep ensemble", {"improved_cnn_64": 3}, samples=pn_train,
            epochs=K["09"]["MEMBER_EPOCHS"], batch=64, repeats=K["09"]["N_MEMBERS"], ceiling=True,
            val_samples=pn_val, cell="cell 7"),
        Job("09", "ensemble under 4 corruptions x 6 severities", {"improved_cnn_64": 1},
            samples=s["corruptions"] * 6 * pn_test, epochs=1, batch=512,
            repeats=K["09"]["N_MEMBERS"], builds=0, cell="cell 23"),
        Job("09", "occlusion maps", {"improved_cnn_64": 1},
            samples=K["09"]["N_EXPLAIN"] * s["occlusion_positions_64"], epochs=1, batch=2048,
            repeats=3, builds=0, cell="cell 18"),
        Job("09", "federated, pooled and alone", {"worker_cnn_64": 3}, samples=pn_train,
            epochs=3 * K["09"]["ROUNDS"] * K["09"]["LOCAL_EPOCHS"], batch=64, builds=1,
            cell="cell 44",
            note="FedAvg (ROUNDS x LOCAL_EPOCHS over all hospitals), the pooled run and each "
                 "hospital alone: 3 x ROUNDS x LOCAL_EPOCHS epochs of the training films"),
    ]
    # fmt: on


# --------------------------------------------------------------------------- models
def _models() -> dict[str, Callable[[], Any]]:
    """Model key -> builder at the gpu profile's sizes (weights=None: nothing downloaded)."""
    import keras

    from helpers import ehr_models as em
    from helpers import gan, models
    from helpers import sequences as sq
    from helpers import volumes as vol

    def conv_stack(shape, depth, residual, width=8):
        # chapter 04's plain / residual stacks (the notebook's conv_stack; the skip adds no FLOPs
        # worth counting, so the residual version stands for both)
        inputs = keras.Input(shape)
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inputs)
        for _ in range((depth - 1) // 2):
            y = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
            y = keras.layers.Conv2D(width, 3, padding="same")(y)
            x = keras.layers.ReLU()(keras.layers.Add()([x, y]) if residual else y)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))

    def mlp(n_in, hidden, activation, dropout=0.0):
        layers = [keras.Input((n_in,))]
        for units in hidden:
            layers.append(keras.layers.Dense(units, activation=activation))
            if dropout:
                layers.append(keras.layers.Dropout(dropout))
        layers.append(keras.layers.Dense(1))
        return keras.Sequential(layers)

    k5 = K["05"]
    return {
        # 01 cell 10 make_mlp; 02 cell 26 build()
        "mlp_bc": lambda: mlp(30, (32, 16), "relu", 0.2),
        "mlp_diabetes_16": lambda: mlp(10, (16,), "tanh"),
        "mlp_diabetes_128": lambda: mlp(10, (128, 128), "relu"),
        "seed_cnn_224": lambda: models.seed_cnn((224, 224, 1)),
        "conv_stack_224": lambda: conv_stack((224, 224, 1), K["04"]["RES_DEPTH"], residual=True),
        "improved_cnn_224": lambda: models.improved_cnn((224, 224, 1), seed=0),
        "efficientnetb0_224": lambda: models.pretrained_backbone(
            (224, 224, 1), name=K["04"]["BACKBONE"], weights=None, seed=0
        ),
        "cnn2d_slices_64": lambda: vol.volume_classifier(
            (64, 64, 1), widths=k5["WIDTHS"], convs_per_block=k5["CONVS"]
        ),
        "cnn2d_central_64": lambda: vol.volume_classifier(
            (64, 64, 3), widths=k5["WIDTHS"], convs_per_block=k5["CONVS"]
        ),
        "cnn3d_64": lambda: vol.volume_classifier(
            (64, 64, 64, 1),
            widths=k5["WIDTHS"],
            convs_per_block=k5["CONVS"],
            flip_axes=(3,),
            seed=0,
        ),
        "unet3d_hippo": lambda: vol.unet(
            (*vol.HIPPOCAMPUS_SHAPE, 1), 3, base=k5["SEG_BASE"], depth=3
        ),
        "generator_64": lambda: gan.build_generator(
            64, 2, image_size=K["06"]["IMG_SIZE"], base_filters=K["06"]["BASE_FILTERS"]
        ),
        "discriminator_64": lambda: gan.build_discriminator(
            (K["06"]["IMG_SIZE"],) * 2 + (1,), 2, base_filters=K["06"]["BASE_FILTERS"]
        ),
        "rnn_simple_splice": lambda: sq.rnn_classifier(
            (60, 4), 3, cell="simple", units=K["07"]["UNITS"], readout="last"
        ),
        "rnn_lstm_splice": lambda: sq.rnn_classifier(
            (60, 4), 3, cell="lstm", units=K["07"]["UNITS"], readout="last"
        ),
        "rnn_gru_splice": lambda: sq.rnn_classifier(
            (60, 4), 3, cell="gru", units=K["07"]["UNITS"], readout="last"
        ),
        "bilstm_splice": lambda: sq.rnn_classifier(
            (60, 4),
            3,
            cell="lstm",
            units=K["07"]["UNITS"],
            bidirectional=True,
            readout="all",
            dropout=0.5,
        ),
        "conv_bilstm_splice": lambda: sq.conv_bilstm_classifier(
            (60, 4), 3, filters=2 * K["07"]["UNITS"], units=K["07"]["UNITS"]
        ),
        "gru_ecg_2": lambda: sq.rnn_classifier(
            (140, 1), 2, cell="gru", units=2 * K["07"]["UNITS"], dropout=0.2
        ),
        "gru_ecg_5": lambda: sq.rnn_classifier(
            (140, 1), 5, cell="gru", units=2 * K["07"]["UNITS"], dropout=0.2
        ),
        "lstm_ae_ecg": lambda: sq.lstm_autoencoder(
            140, units=K["07"]["UNITS"], conv_stages=2, learning_rate=1e-2
        ),
        "gru_mortality": lambda: em.mortality_model(
            48, 37, _physionet_static(), kind="gru", units=K["08"]["UNITS"]
        ),
        "grud_mortality": lambda: em.mortality_model(
            48, 37, _physionet_static(), kind="grud", units=K["08"]["UNITS"]
        ),
        "cox_gbsg": lambda: em.cox_model(7, hidden=(32, 32), dropout=0.1),
        "improved_cnn_64": lambda: models.improved_cnn((K["09"]["IMG_SIZE"],) * 2 + (1,), seed=0),
        "worker_cnn_64": lambda: models.improved_cnn(
            (K["09"]["IMG_SIZE"],) * 2 + (1,), batch_norm=False, augment=False, seed=0
        ),
        "resnet50_calibration": lambda: keras.applications.ResNet50(weights=None),
        "efficientnetb0_calibration": lambda: keras.applications.EfficientNetB0(weights=None),
    }


def _physionet_static() -> int:
    """Width of chapter 08's static input: the scaled descriptors and their missing flags."""
    from helpers import ehr

    return 2 * len(ehr.STATIC)  # ehr.model_inputs: scaled values and missing flags


# --------------------------------------------------------------------------- measurement
def _rnn_layers(model: Any) -> list[tuple[Any, int]]:
    """(recurrent layer, time steps) for every RNN / Bidirectional layer, nested included."""
    import keras

    out = []
    for layer in _flat_layers(model):
        if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)):
            steps = (
                layer.input.shape[1]
                if not isinstance(layer.input, list)
                else layer.input[0].shape[1]
            )
            out.append((layer, int(steps)))
    return out


def _flat_layers(model: Any) -> list[Any]:
    """Every layer of ``model``, descending into nested models (Functional, Sequential);
    the layers *inside* a Bidirectional or RNN wrapper are not listed separately."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_flat_layers(layer))
        else:
            out.append(layer)
    return out


def forward_flops(model: Any) -> dict[str, Any]:
    """Forward floating-point operations for one sample (a multiply-add counts 2).

    TensorFlow's profiler (``tf.compat.v1.profiler``, option ``float_operation``) counts the
    ops of the model's inference graph, frozen with batch size 1. Two gaps are filled
    analytically: ``Conv3DTranspose`` (its op, ``Conv3DBackpropInputV2``, has no registered
    FLOP count): ``2 x input voxels x in-channels x kernel volume x filters``; recurrent
    layers (their loop body is a function the profiler does not enter): ``2 x the layer's
    parameters x time steps``, every weight used once per step.
    """
    import keras
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    specs = [tf.TensorSpec((1, *tuple(t.shape[1:])), t.dtype) for t in model.inputs]
    single = len(specs) == 1

    @tf.function(autograph=False)
    def function(*x):
        return model(x[0] if single else list(x), training=False)

    frozen = convert_variables_to_constants_v2(function.get_concrete_function(*specs))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(
        graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options
    )
    profiled = int(profile.total_float_ops)
    supplement = 0
    for layer in _flat_layers(model):
        if isinstance(layer, keras.layers.Conv3DTranspose):
            cin = int(layer.input.shape[-1])
            voxels = math.prod(int(v) for v in layer.input.shape[1:-1])
            supplement += 2 * voxels * cin * math.prod(layer.kernel_size) * layer.filters
    for layer, steps in _rnn_layers(model):
        supplement += 2 * layer.count_params() * steps
    return {"profiled": profiled, "supplement": supplement, "total": profiled + supplement}


def largest_output(model: Any) -> int:
    """The largest single layer output of one sample (elements): inference keeps little more
    than a layer's input and output at a time."""
    import keras

    largest = 0
    for layer in _flat_layers(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        largest = max(largest, sum(math.prod(int(v) for v in t.shape[1:]) for t in outputs))
    return int(largest)


def activation_elements(model: Any) -> int:
    """Sum of every layer's output size for one sample (nested models included); for a
    recurrent layer, the per-step states it keeps for backpropagation (time steps x units x
    gates, both directions) instead of its output."""
    import keras

    total = 0
    rnn = {id(layer): steps for layer, steps in _rnn_layers(model)}
    for layer in _flat_layers(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        size = sum(math.prod(int(v) for v in t.shape[1:]) for t in outputs)
        if id(layer) in rnn:
            inner = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
            cell = getattr(inner, "cell", inner)
            units = int(getattr(cell, "units", 0) or 0)
            gates = {"LSTMCell": 5, "GRUCell": 4}.get(type(cell).__name__, 4)
            directions = 2 if isinstance(layer, keras.layers.Bidirectional) else 1
            size = max(size, rnn[id(layer)] * units * gates * directions)
        total += size
    return int(total)


def describe_model(model: Any) -> dict[str, Any]:
    """Parameters, forward FLOPs and activation elements per sample, input elements, and
    the recurrent layers (with whether cuDNN can run them on a GPU)."""
    import keras

    flops = forward_flops(model)
    recurrent = []
    for layer, steps in _rnn_layers(model):
        inner = layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer
        cudnn = isinstance(inner, (keras.layers.LSTM, keras.layers.GRU)) and not getattr(
            inner, "recurrent_dropout", 0
        )
        directions = 2 if isinstance(layer, keras.layers.Bidirectional) else 1
        recurrent.append(
            {"layer": layer.name, "steps": steps, "cudnn": bool(cudnn), "directions": directions}
        )
    return {
        "params": int(model.count_params()),
        "layers": len(_flat_layers(model)),
        "forward_flops": flops["total"],
        "flops_profiled": flops["profiled"],
        "flops_supplement": flops["supplement"],
        "activation_elements": activation_elements(model),
        "largest_output_elements": largest_output(model),
        "input_elements": int(sum(math.prod(int(v) for v in t.shape[1:]) for t in model.inputs)),
        "recurrent": recurrent,
    }


def training_memory_bytes(params: int, activations: int, batch: int, factor: float = 1.0) -> float:
    """GPU memory of one training step under mixed precision (the rule of this estimate):
    18 bytes per parameter (float32 weights 4, gradients 4, Adam's two moments 8, the
    float16 copy the layers compute with 2) plus 2 bytes (float16) per activation element
    per sample, for the whole batch, times ``factor`` (1 to 2: the backward pass's temporary
    gradients and cuDNN workspaces)."""
    return 18 * params + 2.0 * activations * batch * factor


def inference_memory_bytes(params: int, largest: int, batch: int, factor: float = 1.0) -> float:
    """GPU memory of one prediction batch: float32 weights and their float16 copy (6 bytes
    per parameter) plus the largest layer's input and output in float16 (2 x 2 bytes x its
    output elements x batch), times ``factor`` (1 to 2)."""
    return 6 * params + 2.0 * 2 * largest * batch * factor


def measure_overhead() -> dict[str, float]:
    """Per-step host overhead measured on this CPU: a tiny Keras model's ``fit`` (one step
    per call of the training function) and the same with ``steps_per_execution=200``.
    Both floors: the model's arithmetic is negligible, what remains is dispatch. The
    fastest of five epochs is kept (other processes on a shared machine only slow it)."""
    import keras
    import numpy as np

    x = np.random.default_rng(0).standard_normal((64 * 200, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    out = {}
    for name, spe in (("fit_step_s", 1), ("fused_step_s", 200)):
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
        model.compile("adam", "binary_crossentropy", steps_per_execution=spe)
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)  # trace
        epochs = []
        for _ in range(5):
            start = time.perf_counter()
            model.fit(x, y, batch_size=64, epochs=1, verbose=0)
            epochs.append((time.perf_counter() - start) / 200)
        out[name] = min(epochs)
    return out


# --------------------------------------------------------------------------- sizes
def measure_pipeline(n: int = 256) -> dict[str, float]:
    """Chapter 03's per-film CPU costs at 224 px (ms): PNG decoding and the chapter's
    augmentation + normalisation, in tf.data with AUTOTUNE as in cell 66, on real 28-px
    films upsampled to 224 px (the 224-px file is a 1 GB download). Best of two epochs."""
    import cv2
    import keras
    import numpy as np
    import tensorflow as tf

    from helpers import data

    x, _ = data.load_medmnist("pneumoniamnist", split="train")
    films = np.stack([cv2.resize(im, (224, 224), interpolation=cv2.INTER_LINEAR) for im in x[:n]])
    encoded = np.array([cv2.imencode(".png", im)[1].tobytes() for im in films], dtype=object)
    augment = keras.Sequential(
        [
            keras.layers.RandomRotation(0.02, fill_mode="constant", seed=0),
            keras.layers.RandomTranslation(0.05, 0.05, fill_mode="constant", seed=0),
            keras.layers.RandomZoom(0.1, fill_mode="constant", seed=0),
            keras.layers.RandomContrast(0.1, seed=0),
        ]
    )
    normalise = keras.layers.Normalization(axis=None, mean=0.5, variance=0.06)

    def decode(png):
        return tf.image.convert_image_dtype(tf.io.decode_png(png, channels=1), tf.float32)

    def best_ms(dataset) -> float:
        times = []
        for _ in range(3):  # the first pass traces
            start = time.perf_counter()
            for _ in dataset:
                pass
            times.append(time.perf_counter() - start)
        return 1e3 * min(times[1:]) / n

    auto = tf.data.AUTOTUNE
    decoded = tf.data.Dataset.from_tensor_slices(encoded).map(decode, num_parallel_calls=auto)
    floats = tf.data.Dataset.from_tensor_slices(films[..., None].astype("float32") / 255)
    augmented = floats.batch(128).map(
        lambda b: normalise(augment(b, training=True)), num_parallel_calls=auto
    )
    return {"decode": best_ms(decoded.batch(128)), "augment": best_ms(augmented)}


def pipeline_minutes(ms: dict[str, float], films: int) -> dict[str, float]:
    """Chapter 03's pipeline timing on 2 CPU cores (minutes, low and high)."""
    low = films * sum(PIPELINE_PASSES[k] * ms[k] for k in PIPELINE_PASSES) / 1e3 / 60
    return {"low": _round_minutes(low), "high": _round_minutes(1.5 * low)}


def split_sizes() -> dict[str, int]:
    """The real split sizes the jobs use, from the data cards and the project's own split
    functions (needs the course data)."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.model_selection import train_test_split

    from helpers import data
    from helpers import sequences as sq

    sizes: dict[str, int] = {}
    pn = data.medmnist_info("pneumoniamnist")["n_samples"]
    sizes.update({f"pneumonia_{k}": int(v) for k, v in pn.items()})
    ad = data.medmnist_info("adrenalmnist3d")["n_samples"]
    sizes.update({f"adrenal_{k}": int(v) for k, v in ad.items()})
    # chapter 05 cell 16: axial slices that show the gland (max > 0), 64-voxel volumes
    kept = {}
    for split in data.SPLITS:
        x, _ = data.load_medmnist("adrenalmnist3d", split=split, size=64)
        kept[split] = int((x.reshape(len(x) * x.shape[1], -1).max(axis=1) > 0).sum())
        del x
    sizes["adrenal_slices_train"] = kept["train"]
    sizes["adrenal_slices_valtest"] = kept["val"] + kept["test"]
    sizes["hippo_train"] = int(round(0.7 * 260))  # volumes.subject_split (0.7, 0.1, 0.2)
    # 01 cell 15: 30 % held out for the learning curves
    y_bc = load_breast_cancer().target
    lc_train, _ = train_test_split(
        np.arange(len(y_bc)), test_size=0.3, stratify=y_bc, random_state=42
    )
    sizes["bc_lc_train"] = len(lc_train)
    # 02 cell 16: split_indices on the diabetes quartiles
    import pandas as pd

    y_dia = load_diabetes(as_frame=True, scaled=False).target.to_numpy()
    quartile = pd.qcut(y_dia, 4, labels=False)
    sizes["diabetes_train"] = len(data.split_indices(quartile, seed=42)["train"])
    # 07 cells 14, 30, 36
    splice = data.load_uci_sequences("splice")
    y_splice = splice["label"].map({c: i for i, c in enumerate(sq.SPLICE_CLASSES)}).to_numpy()
    split = sq.splice_split(splice["sequence"], y_splice, None, seed=42)
    sizes["splice_train"], sizes["splice_val"] = len(split["train"]), len(split["val"])
    _, labels = data.load_ucr("ecg5000", "train")
    y5 = np.asarray(labels).astype(int) - 1  # chapter 07 cell 29: classes 1-5
    ecg = data.split_indices((y5 != 0).astype(int), seed=42)
    sizes["ecg_train"], sizes["ecg_val"] = len(ecg["train"]), len(ecg["val"])
    sizes["ecg_normal_train"] = int((y5[ecg["train"]] == 0).sum())
    sizes["ecg_normal_val"] = int((y5[ecg["val"]] == 0).sum())
    # 08: Raindrop split (data card: 9,590 / 1,199 / 1,199); GBSG train 1546, 1/5 watched
    sizes["physionet_train"], sizes["physionet_val"] = 9590, 1199
    sizes["gbsg_train"] = 1546
    sizes["gbsg_fit"] = 1546 - 1546 // 5
    # 09 cells 18, 23: occlusion positions (patch 6, stride 2) and corruption kinds
    from helpers import trust

    side = K["09"]["IMG_SIZE"]
    tops = sorted(set(range(0, side - 6 + 1, 2)) | {side - 6})
    sizes["occlusion_positions_64"] = len(tops) ** 2
    sizes["corruptions"] = len(trust.CORRUPTIONS)
    return sizes


# --------------------------------------------------------------------------- host RAM
def host_arrays_gb(sizes: dict[str, int]) -> dict[str, dict[str, float]]:
    """The chapter's main NumPy arrays at gpu sizes (GB), from the notebook code. ``low`` is
    their sum; ``high`` doubles it for the copies Keras and tf.data make while training."""
    n_pn = sizes["pneumonia_train"] + sizes["pneumonia_val"] + sizes["pneumonia_test"]
    n_ad = sizes["adrenal_train"] + sizes["adrenal_val"] + sizes["adrenal_test"]
    px224, px64, vox64 = 224 * 224, 64 * 64, 64**3
    gb = 1e-9
    arrays = {
        "00": {"28-px films": n_pn * 28 * 28 * 1},
        "01": {},
        "02": {},
        "03": {
            "224-px films (uint8)": sizes["pneumonia_train"] * px224,
            "float copy for make_dataset": 4 * sizes["pneumonia_train"] * px224,
            "4 cached tf.data pipelines (float32)": 4 * 4 * sizes["pneumonia_train"] * px224,
        },
        "04": {
            "224-px splits (float32)": 4 * n_pn * px224,
            "uint8 pixels": n_pn * px224,
            "ablation subset": 4 * K["04"]["N_ABLATION"] * px224,
            "brightened/darkened validation": 2 * 4 * sizes["pneumonia_val"] * px224,
        },
        "05": {
            "64-voxel volumes (float32)": 4 * n_ad * vox64,
            "axial slices (float32)": 4 * sizes["adrenal_train"] * vox64,
            "shifted copy per epoch": 4 * sizes["adrenal_train"] * vox64,
        },
        "06": {
            "64-px splits (float32)": 4 * n_pn * px64,
            "training films in [-1, 1]": 4 * sizes["pneumonia_train"] * px64,
            "synthetic films, 3 GANs": 3 * 4 * K["06"]["N_GENERATED"] * px64,
        },
        "07": {},
        "08": {"hourly tensors (values, mask, delta, views)": 8 * 4 * 11988 * 48 * 37},
        "09": {
            "64-px splits (float32)": 4 * n_pn * px64,
            "corrupted test sets": 4 * 6 * sizes["corruptions"] * sizes["pneumonia_test"] * px64,
        },
    }
    out = {}
    for chapter, parts in arrays.items():
        low = sum(parts.values()) * gb
        out[chapter] = {
            "arrays": {k: round(v * gb, 3) for k, v in parts.items()},
            "low": round(low, 1),
            "high": round(2 * low, 1),
        }
    return out


# --------------------------------------------------------------------------- the estimate
def calibrated_rates(resnet_flops: float, effnet_flops: float) -> dict[str, Any]:
    """Sustained training FLOP/s of a T4 (fast, slow) from the published numbers."""
    c = CALIBRATION
    v100_ratio = c["v100_inference_img_s"] / c["v100_training_img_s"]
    img_fast = c["t4_inference_img_s"] / v100_ratio
    img_slow = c["t4_inference_img_s"] / c["slow_train_over_infer"]
    rate = {"fast": img_fast * 3 * resnet_flops, "slow": img_slow * 3 * resnet_flops}
    # EfficientNet-B0's FLOP/s relative to ResNet-50's: image-rate ratio x FLOP ratio
    rel = {
        gpu: c["effnet_b0_train_img_s"][gpu]
        / c["resnet50_train_img_s"][gpu]
        * effnet_flops
        / resnet_flops
        for gpu in ("A100", "V100")
    }
    return {
        "v100_train_over_infer": round(v100_ratio, 3),
        "t4_resnet50_train_img_s": {"fast": round(img_fast, 1), "slow": round(img_slow, 1)},
        "resnet50_forward_flops": resnet_flops,
        "efficientnetb0_forward_flops": effnet_flops,
        "sustained_flop_s": rate,
        "depthwise_relative_efficiency": {"fast": max(rel.values()), "slow": min(rel.values())},
    }


def job_seconds(job: Job, info: dict[str, dict], rates: dict, overhead: dict) -> dict:
    """Low and high seconds of one job on a T4 (see the module docstring)."""
    out = {}
    steps = job.steps_per_repeat()
    val_batches = math.ceil(job.val_samples / 256) if job.val_samples else 0
    builds = job.repeats if job.builds is None else job.builds
    for end, i in (("low", 0), ("high", 1)):
        speed = "fast" if i == 0 else "slow"
        eff = KERAS_EFFICIENCY[i]
        flop_s = 0.0  # seconds of arithmetic per sample (all models of the step)
        rnn_ms = 0.0
        in_bytes = 0.0
        for key, passes in job.models.items():
            m = info[key]
            rate = rates["sustained_flop_s"][speed] * eff
            if key.startswith("efficientnet"):
                rate *= rates["depthwise_relative_efficiency"][speed]
            flop_s += passes * m["forward_flops"] / rate
            in_bytes = max(in_bytes, 4.0 * m["input_elements"])
            for r in m["recurrent"]:
                per = RNN_STEP_MS["cudnn" if r["cudnn"] else "loop"][i]
                # training: forward and backward loops; inference: forward only
                rnn_ms += per * r["steps"] * r["directions"] * (1 if passes <= 1 else 2)
        host = overhead["fused_step_s" if job.fused else "fit_step_s"] * (1 if i == 0 else 3)
        batch = min(job.batch, job.samples) if job.samples else job.batch
        copy = batch * in_bytes / H2D_BYTES_S[i]
        step = max(flop_s * batch, host) + rnn_ms / 1000.0 + copy
        total_steps = steps * job.repeats
        val = 0.0
        if job.val_samples:
            val_flop = sum(info[k]["forward_flops"] for k in job.models) * job.val_samples
            val = (
                job.epochs
                * job.repeats
                * (val_flop / (rates["sustained_flop_s"][speed] * eff) + val_batches * host)
            )
        # an epoch of a Python loop costs its two or three evaluation calls, not Keras set-up
        per_epoch = 3 * host if job.loop else EPOCH_S[i]
        fixed = builds * BUILD_S[i] + job.epochs * job.repeats * per_epoch
        out[end] = step * total_steps + val + fixed
    out["steps"] = steps * job.repeats
    return out


def job_memory(job: Job, info: dict[str, dict]) -> dict[str, float]:
    """Low and high GPU memory (GB) of one job's step; a GAN step holds both models."""
    params = sum(info[k]["params"] for k in job.models)
    batch = min(job.batch, job.samples) if job.samples else job.batch
    if not job.train:
        largest = max(info[k]["largest_output_elements"] for k in job.models)
        return {
            end: inference_memory_bytes(params, largest, batch, factor) / 1e9
            for end, factor in (("low", 1.0), ("high", 2.0))
        }
    # activations kept: the generator once, the discriminator twice (real and fake)
    acts = sum(
        info[k]["activation_elements"] * (2 if k.startswith("discriminator") else 1)
        for k in job.models
    )
    return {
        end: training_memory_bytes(params, acts, batch, factor) / 1e9
        for end, factor in (("low", 1.0), ("high", 2.0))
    }


def estimate(quick: bool = False) -> dict[str, Any]:
    """Build every model, measure it, and estimate every job and chapter."""
    import keras

    from helpers import config

    keras.mixed_precision.set_global_policy("float32")  # measure in float32 on the CPU
    started = time.time()
    sizes = split_sizes()
    jobs = _jobs(sizes)
    builders = _models()
    needed = sorted(
        {k for job in jobs for k in job.models}
        | {"resnet50_calibration", "efficientnetb0_calibration"}
    )
    info: dict[str, dict] = {}
    for key in needed:
        keras.backend.clear_session()
        info[key] = describe_model(builders[key]())
    overhead = dict(HOST_STEP_S)
    measured_now = {**measure_overhead(), "pipeline_ms": measure_pipeline()}
    pipeline = pipeline_minutes(PIPELINE_MS, sizes["pneumonia_train"])
    rates = calibrated_rates(
        info["resnet50_calibration"]["forward_flops"],
        info["efficientnetb0_calibration"]["forward_flops"],
    )
    ram = host_arrays_gb(sizes)
    job_rows, chapters = [], {}
    for job in jobs:
        seconds = job_seconds(job, info, rates, overhead)
        memory = job_memory(job, info)
        row = {
            **asdict(job),
            "steps_total": seconds["steps"],
            "minutes_low": round(seconds["low"] / 60, 2),
            "minutes_high": round(seconds["high"] / 60, 2),
            "gpu_memory_gb_low": round(memory["low"], 2),
            "gpu_memory_gb_high": round(memory["high"], 2),
            "exceeds_t4": memory["high"] > T4_USABLE_GB,
        }
        job_rows.append(row)
    for chapter in NOTEBOOKS:
        rows = [r for r in job_rows if r["chapter"] == chapter]
        low = sum(r["minutes_low"] for r in rows)
        high = sum(r["minutes_high"] for r in rows)
        chapters[chapter] = {
            "notebook": NOTEBOOKS[chapter],
            "jobs": len(rows),
            "gpu_minutes_low": _round_minutes(low),
            "gpu_minutes_high": _round_minutes(high),
            "gpu_memory_gb_low": round(max((r["gpu_memory_gb_low"] for r in rows), default=0), 1),
            "gpu_memory_gb_high": round(max((r["gpu_memory_gb_high"] for r in rows), default=0), 1),
            "exceeds_t4": any(r["exceeds_t4"] for r in rows),
            "host_ram_gb_low": ram[chapter]["low"],
            "host_ram_gb_high": ram[chapter]["high"],
            "host_ram_exceeds_colab": ram[chapter]["high"] > COLAB_RAM_GB,
            "host_arrays_gb": ram[chapter]["arrays"],
            "cpu_side_work": CPU_SIDE[chapter],
            "cpu_side_minutes": pipeline if chapter == "03" else None,
        }
    gpu_profile = asdict(config.PROFILES["gpu"])
    return {
        "what": "estimated needs of each chapter's gpu profile on a Colab T4; nothing here "
        "ran on a GPU",
        "measured_on": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "keras": keras.__version__,
            "date": time.strftime("%Y-%m-%d"),
            "seconds": round(time.time() - started, 1),
        },
        "gpu_profile": gpu_profile,
        "rules": {
            "training_flops": "3 x forward FLOPs per sample (GAN step: 4 x generator + 9 x "
            "discriminator); inference 1 x",
            "step_seconds": "max(FLOP time, host overhead per step) + recurrent loop overhead "
            "+ host-to-device copy of the batch",
            "flop_rate": "calibrated ResNet-50 training rate x Keras efficiency "
            f"{KERAS_EFFICIENCY[0]} (low) to {KERAS_EFFICIENCY[1]} (high); "
            "EfficientNet x the depthwise relative efficiency",
            "host_overhead": "per-step floor measured on a 2-core CPU (HOST_STEP_S, low) "
            "and 3 x it (high)",
            "fixed": f"per model built {BUILD_S} s, per epoch {EPOCH_S} s (low, high)",
            "rnn_step_ms": RNN_STEP_MS,
            "h2d_bytes_s": H2D_BYTES_S,
            "memory": "training: 18 B/parameter (fp32 weights, gradients, 2 Adam moments, "
            "fp16 copy) + 2 B x activation elements per sample x batch x 1 (low) to "
            "2 (high); inference: 6 B/parameter + 2 x 2 B x largest layer output x "
            "batch x 1 to 2",
            "epochs": "the gpu ceiling; where early stopping may end a job sooner the "
            "estimate is an upper bound for that job (ceiling = true)",
            "t4_usable_gb": T4_USABLE_GB,
            "colab_ram_gb": COLAB_RAM_GB,
        },
        "calibration": {**CALIBRATION, **rates},
        "overhead_used": overhead,
        "overhead_measured_now": measured_now,
        "pipeline_ms_used": PIPELINE_MS,
        "pipeline_passes": PIPELINE_PASSES,
        "sizes": sizes,
        "models": info,
        "jobs": job_rows,
        "chapters": chapters,
    }


def _round_minutes(value: float) -> float:
    """Minutes to two significant figures (at least 0.1): no false precision."""
    if value < 0.05:
        return 0.0
    digits = 1 - int(math.floor(math.log10(abs(value))))
    return round(value, max(digits, 0) if value >= 1 else 1)


def _span(low: float, high: float) -> str:
    """'low-high', one number when they are equal, '<0.1' when both are below 0.1."""
    if high < 0.1:
        return "<0.1"
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def markdown_table(report: dict[str, Any]) -> str:
    """The per-chapter table, the same in gpu_estimate.md and in the README."""
    lines = [
        "| chapter | GPU jobs | T4 memory peak (GB) | T4 minutes (low-high) | host RAM (GB) |",
        "|---|---|---|---|---|",
    ]

    for chapter, c in report["chapters"].items():
        memory = _span(c["gpu_memory_gb_low"], c["gpu_memory_gb_high"]) if c["jobs"] else "-"
        if c["exceeds_t4"]:
            memory += " (over 15)"
        minutes = f"{c['gpu_minutes_low']:g}-{c['gpu_minutes_high']:g}" if c["jobs"] else "-"
        ram = _span(c["host_ram_gb_low"], c["host_ram_gb_high"])
        lines.append(f"| {chapter} | {c['jobs']} | {memory} | {minutes} | {ram} |")
    cpu = report["chapters"]["03"]["cpu_side_minutes"]
    note = (
        "Chapter 03 has no GPU job; its input-pipeline timing alone (8 tf.data variants x 5 "
        f"epochs of 4708 films at 224 px, on the CPU) takes about {cpu['low']:g}-{cpu['high']:g} "
        "minutes on 2 cores (per-film costs measured here)."
    )
    lines += ["", *textwrap.wrap(note, 95)]
    return "\n".join(lines)


def markdown_report(report: dict[str, Any]) -> str:
    """gpu_estimate.md: the table, the calibration and the jobs."""
    cal = report["calibration"]
    lines = [
        "# Estimated needs of the `gpu` profile on a Colab T4",
        "",
        "Nothing here ran on a GPU: every number is an estimate from models built and "
        "measured on a CPU (`benchmarks/gpu_estimate.py`, "
        f"{report['measured_on']['date']}). Minutes count the GPU jobs only; the CPU-side "
        "work of each chapter runs on Colab's 2 cores as on a laptop.",
        "",
        markdown_table(report),
        "",
        "## Calibration",
        "",
        f"- Source: {cal['source']}: {cal['t4_inference_img_s']} img/s "
        f"({cal['t4_inference_setting']}); V100 {cal['v100_inference_img_s']} img/s inference "
        f"and {cal['v100_training_img_s']} img/s training ({cal['v100_setting']}).",
        f"- T4 ResNet-50 training: {cal['t4_resnet50_train_img_s']['fast']} img/s (inference / "
        f"{cal['v100_train_over_infer']}, the V100 ratio) to "
        f"{cal['t4_resnet50_train_img_s']['slow']} img/s (inference / 3).",
        f"- Keras ResNet50 forward: {cal['resnet50_forward_flops'] / 1e9:.2f} GFLOP per image "
        "(this counter); sustained training rate "
        f"{cal['sustained_flop_s']['fast'] / 1e12:.1f} to "
        f"{cal['sustained_flop_s']['slow'] / 1e12:.1f} TFLOP/s, times a Keras efficiency of "
        f"{KERAS_EFFICIENCY[0]} to {KERAS_EFFICIENCY[1]}.",
        f"- EfficientNet-B0 ({cal['efficientnetb0_forward_flops'] / 1e9:.2f} GFLOP): "
        f"{cal['effnet_source']}; its FLOP rate relative to ResNet-50's: "
        f"{cal['depthwise_relative_efficiency']['fast']:.3f} to "
        f"{cal['depthwise_relative_efficiency']['slow']:.3f}.",
        "- Host overhead per step (a floor measured on the project's 2-core CPU, "
        "`HOST_STEP_S`): fit "
        f"{report['overhead_used']['fit_step_s'] * 1e3:.1f} ms, fused (steps_per_execution) "
        f"{report['overhead_used']['fused_step_s'] * 1e3:.1f} ms; high estimate 3x.",
        "",
        "## What dominates the uncertainty",
        "",
        "- The sustained rate: T4 training throughput is derived from a published *inference* "
        "number (x 1/2.16 to 1/3), and Keras from NumPy arrays is assumed to reach 100% to 50% "
        "of NVIDIA's tuned container. FLOP-bound jobs (04, 05, 06) span about 3x for this alone.",
        "- 3D convolutions (chapter 05) are assumed to run at the same FLOP rate as ResNet-50's "
        "2D convolutions; no published T4 3D-convolution training number was found.",
        "- EfficientNet-B0's depthwise convolutions run at 7-15% of ResNet-50's FLOP rate "
        "(from NVIDIA's A100 and V100 training numbers); chapter 04's fine-tuning hangs on it.",
        "- Small models (01, 02, 07, 08, 09's ensemble and federated runs) are bound by the "
        "per-step host overhead, a CPU floor times 1 to 3, not by the GPU.",
        "- Epoch counts are ceilings where early stopping may end a job sooner (marked "
        "'ceiling'): those jobs' minutes are upper bounds.",
        "",
        "## Jobs",
        "",
        "GFLOP per sample: of one step (3 x forward for training, 4 x G + 9 x D for a GAN, 1 x "
        "forward for inference). Memory: the step's GPU memory, low-high.",
        "",
        "| ch | job | cell | epochs | batch | repeats | steps | GFLOP per sample | memory GB | "
        "minutes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["jobs"]:
        gflop = sum(report["models"][k]["forward_flops"] * v for k, v in r["models"].items())
        epochs = f"{r['epochs']}{' (ceiling)' if r['ceiling'] else ''}"
        lines.append(
            f"| {r['chapter']} | {r['name']} | {r['cell']} | {epochs} | {r['batch']} | "
            f"{r['repeats']} | {r['steps_total']} | {gflop / 1e9:.3g} | "
            f"{_span(r['gpu_memory_gb_low'], r['gpu_memory_gb_high'])} | "
            f"{r['minutes_low']:g}-{r['minutes_high']:g} |"
        )
    lines += ["", "## CPU-side work (Colab's 2 cores, not in the minutes)", ""]
    lines += [f"- {ch}: {c['cpu_side_work']}" for ch, c in report["chapters"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    report = estimate()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "gpu_estimate.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out_dir / "gpu_estimate.md").write_text(markdown_report(report))
    print(markdown_table(report))
    print(f"wrote {args.out_dir / 'gpu_estimate.json'} and gpu_estimate.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
