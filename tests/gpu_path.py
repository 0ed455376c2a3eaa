"""Test fixtures for the ``gpu`` profile's code path on a CPU (tests/test_gpu_path.py).

The ``gpu`` profile reads files the offline data root does not hold (PneumoniaMNIST at 64
and 224 px, the 4500-beat ECG5000 test split). :func:`build_root` makes a temporary data
root whose files are the real ones (symbolic links) plus, for those, clearly labelled
**test fixtures**: real 28-pixel films upsampled and saved under the larger file name, real
training beats saved under the test-split name, a few real 64-voxel volumes. Each fixture
has a marker beside it (``helpers.data.fixture_marker``); ``helpers.data.fetch`` refuses a
marked file unless ``DL4H_TEST_FIXTURES=1``, so no loader can take one for real data.

:data:`TINY` holds, per notebook, the papermill parameters that shrink the ``gpu`` profile's
sizes (epochs, images, bootstrap resamples) without changing its code path: the profile
still picks its own backbones, resolutions, 3D U-Net and mixed precision.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from helpers import data

# Films per split in the PneumoniaMNIST fixtures (stratified; both classes in each).
FIXTURE_FILMS = {"train": 40, "val": 24, "test": 64}  # ch09 samples batches of 50
FIXTURE_VOLUMES = {"train": 12, "val": 8, "test": 8}
FIXTURE_BEATS = 120

# Per notebook: parameters injected by papermill (the notebook's `parameters` cell names).
TINY: dict[str, dict[str, object]] = {
    "00_start_here": {"N_SHOW": 4},
    "01_deep_learning_vs_machine_learning": {
        "N_SPLITS": 2,
        "N_BOOT": 20,
        "MLP_STEPS": 20,
        "N_TREES": 10,
        "TRAIN_SIZES": [20, 40],
        "N_REPEATS": 1,
        "NOISE_LEVELS": [0.0, 0.2],
        "N_LEAK_SEEDS": 2,
    },
    "02_neural_network_foundations": {
        "DEPTH": 6,
        "N_INITS": 1,
        "GD_STEPS": 20,
        "EPOCHS": 2,
        "N_SEEDS": 1,
        "REG_EPOCHS": 2,
        "N_BOOT": 20,
    },
    "03_medical_image_preprocessing": {"N_PIPELINE": 64, "TIMED_EPOCHS": 2},
    "04_cnn_chest_xray": {
        "EPOCHS": 1,
        "ABLATION_EPOCHS": 1,
        "N_ABLATION": 32,
        "N_SEEDS": 1,
        "MAX_EPOCHS": 1,
        "N_BOOT": 20,
        "RES_DEPTH": 5,
        "N_RES": 64,
        "RES_EPOCHS": 1,
        "VALIDATION": "official",  # the fixture's 64 pooled films are too few for 10 grouped folds
        # 64 px, not the profile's 224: the same branches (ImageNet backbone, mixed precision)
        # at a twelfth of the pixels. The 224-px file and a backbone at 224 px are run by the
        # CNN benchmark's gpu-path test (--size 224).
        "IMG_SIZE": 64,
        # the same branch (models.pretrained_backbone) with a backbone that builds and traces in
        # half the time; the profile's EfficientNetB0 is trained by the CNN benchmark's gpu-path
        # test at 224 px and under mixed_float16 in tests/test_mixed_precision.py
        "BACKBONE": "MobileNetV2",
    },
    "05_volumes_and_segmentation": {
        "EPOCHS_3D": 1,
        "EPOCHS_2D": 1,
        "LAST_K": 1,
        "SEG_EPOCHS": 1,
        "SEG_CASES": 10,
        "N_BOOT": 20,
        # the gpu profile's four stages, two convolutions each, and its 3D U-Net, with fewer
        # filters: at the profile's widths the 64-voxel models are most of the test's time
        "WIDTHS": [4, 8, 8, 8],
        "SEG_BASE": 4,
    },
    "06_gan_synthetic_images": {
        "GAN_STEPS": 10,
        "BASE_FILTERS": 8,
        "CLF_EPOCHS": 1,
        "N_GENERATED": 64,
    },
    "07_rnn_sequences": {
        "N_TRAIN": 200,
        "EPOCHS": 1,
        "CELL_EPOCHS": 1,
        "ECG_EPOCHS": 1,
        "AE_EPOCHS": 1,
        "UNITS": 8,
        "N_ISM": 4,
        "N_BOOT": 20,
    },
    "08_disease_course_prediction": {
        "LIMIT": 300,
        "EPOCHS": 1,
        "UNITS": 8,
        "COX_EPOCHS": 2,
        "TREES": 10,
        "N_BOOT": 20,
    },
    "09_trustworthy_clinical_ai": {
        "N_MEMBERS": 2,
        "MEMBER_EPOCHS": 1,
        "MC_SAMPLES": 4,
        "N_BOOT": 20,
        "N_EXPLAIN": 2,
        "N_SIMS": 1,
        "ROUNDS": 1,
    },
}


# Notebooks whose gpu path runs in float32 here, with the reason. TensorFlow has no fast
# float16 3D convolution on CPUs (Eigen fallback): chapter 05's 64-voxel 3D CNN predicts 4
# volumes in 23.0 s under mixed_float16 against 3.6 s in float32 on the 2-core test machine.
# The float16 behaviour of those models is checked in tests/test_mixed_precision.py.
FLOAT32_ON_CPU = {
    "05_volumes_and_segmentation": "float16 3D convolutions have no fast CPU kernel",
    "volumes": "float16 3D convolutions have no fast CPU kernel",
    "volumes_hippocampus": "float16 3D convolutions have no fast CPU kernel",
}


def _mark(path: Path, description: str) -> None:
    data.fixture_marker(path).write_text(
        json.dumps({"description": description, "made_by": "tests/gpu_path.py"}, indent=1)
    )


def _stratified(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    return np.sort(data.stratified_subset(labels.ravel(), n, seed=seed))


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in images])


def _film_fixture(real_root: Path, target: Path, size: int) -> None:
    arrays = {}
    for split, n in FIXTURE_FILMS.items():
        images, labels = data.load_medmnist("pneumoniamnist", split, data_home=real_root)
        keep = _stratified(labels, n)
        arrays[f"{split}_images"] = _resize(images[keep], size).astype(np.uint8)
        arrays[f"{split}_labels"] = labels[keep]
    np.savez_compressed(target, **arrays)
    _mark(
        target,
        f"TEST FIXTURE: {sum(FIXTURE_FILMS.values())} real 28-px PneumoniaMNIST films "
        f"(stratified per split) upsampled to {size} px; not MedMNIST+'s {size}-px file",
    )


def _volume_fixture(real_root: Path, target: Path) -> None:
    arrays = {}
    for split, n in FIXTURE_VOLUMES.items():
        images, labels = data.load_medmnist("adrenalmnist3d", split, size=64, data_home=real_root)
        keep = _stratified(labels, n)
        arrays[f"{split}_images"] = images[keep]
        arrays[f"{split}_labels"] = labels[keep]
    np.savez_compressed(target, **arrays)
    _mark(target, "TEST FIXTURE: a stratified subset of the real AdrenalMNIST3D 64-voxel splits")


def _ecg_fixture(real_root: Path, target: Path) -> None:
    source = real_root / data.dataset_info("ecg5000_train").path
    lines = source.read_text().splitlines()[:FIXTURE_BEATS]
    target.write_text("\n".join(lines) + "\n")
    _mark(
        target,
        f"TEST FIXTURE: the first {FIXTURE_BEATS} beats of the real ECG5000 TRAIN file saved "
        "under the TEST name; not the published test split",
    )


def build_root(real_root: Path, root: Path) -> Path:
    """A data root in ``root``: links to everything in ``real_root`` plus the fixtures."""
    root.mkdir(parents=True, exist_ok=True)
    fixtures = {
        data.dataset_info("pneumoniamnist_64").path: lambda t: _film_fixture(real_root, t, 64),
        data.dataset_info("pneumoniamnist_224").path: lambda t: _film_fixture(real_root, t, 224),
        data.dataset_info("adrenalmnist3d_64").path: lambda t: _volume_fixture(real_root, t),
        data.dataset_info("ecg5000_test").path: lambda t: _ecg_fixture(real_root, t),
    }
    for entry in sorted(real_root.iterdir()):
        if entry.name == "cache":
            continue
        if entry.is_dir() and any(path.split("/")[0] == entry.name for path in fixtures):
            (root / entry.name).mkdir(exist_ok=True)
            for item in entry.iterdir():
                relative = f"{entry.name}/{item.name}"
                if relative not in fixtures:
                    os.symlink(item, root / relative)
        else:
            os.symlink(entry, root / entry.name)
    for relative, make in fixtures.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        make(target)
    return root
