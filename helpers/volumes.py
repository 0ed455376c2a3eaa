"""CT and MRI volumes (chapter 05): reading NIfTI, fitting volumes to a batch shape,
segmentation metrics, and the 2D / 2.5D / 3D classifiers and U-Nets of the chapter.

The module imports without TensorFlow; the model builders import Keras when called.

Axes: volumes are NumPy arrays in the order the file stores them. For the Decathlon
hippocampus files that is ``(x, y, z)`` with the RAS+ affine ``diag(1, 1, 1)`` (x increases towards the
patient's right, y anterior, z superior); MedMNIST 3D volumes are ``(depth, height,
width)``. Keras models take a trailing channel axis.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # Keras is imported inside the builders (this module stays light)
    import keras

from . import data

#: Label values of the Decathlon hippocampus task and their names.
HIPPOCAMPUS_LABELS: dict[int, str] = {1: "anterior", 2: "posterior"}
#: Slicing directions of 2D segmenters: axes 1-3 of ``(n, X, H, W)`` hippocampus volumes, named
#: for the files' orientation (their affines say RAS: X runs right-left, H anterior-posterior,
#: W inferior-superior); the ``axis`` of :func:`slice_stack` and :func:`train_segmenter`.
VIEW_AXES: dict[str, int] = {"sagittal": 1, "coronal": 2, "axial": 3}
#: The fixed shape every hippocampus volume is padded to (all 260 fit without cropping).
HIPPOCAMPUS_SHAPE: tuple[int, int, int] = (48, 64, 48)
_HIPPO_DIR = "msd/Task04_Hippocampus"
#: Published MedMNIST v2 rows for AdrenalMNIST3D (28 px), test AUC / ACC, checked against
#: the benchmark table on medmnist.com (Yang et al. 2023). The table's best AUC is 0.839
#: and its best ACC 0.802.
MEDMNIST3D_PUBLISHED: dict[str, dict[str, float]] = {
    "ResNet-18 + 3D": {"test_auc": 0.827, "test_acc": 0.721},
    "ResNet-50 + 3D": {"test_auc": 0.828, "test_acc": 0.745},
    "auto-sklearn": {"test_auc": 0.828, "test_acc": 0.802},
}
PUBLISHED_BEST = {"test_auc": 0.839, "test_acc": 0.802}


# --------------------------------------------------------------------------- errors
class VolumeFileError(data.DatasetCorrupt):
    """A NIfTI file that is missing, truncated or not NIfTI; the message names the file."""


class VolumeMismatchError(data.DatasetCorrupt):
    """An image and its label map disagree in shape or in affine (voxel-to-world geometry)."""


class LabelValueError(data.DatasetCorrupt):
    """A label map holds values outside the task's label set."""


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Volume:
    """One volume as read from disk: voxel array, 4x4 affine (voxel -> RAS+ millimetres),
    voxel spacing in mm and the file it came from."""

    array: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, ...]
    path: Path

    @property
    def orientation(self) -> str:
        """Axis codes of the affine, e.g. ``'RAS'``: where each array axis points."""
        import nibabel as nib

        return "".join(nib.aff2axcodes(self.affine))


def read_nifti(path: str | os.PathLike[str]) -> Volume:
    """Read a NIfTI-1/2 file (``.nii`` or ``.nii.gz``) with ``nibabel``.

    Raises :class:`VolumeFileError` naming the file when it is missing, not NIfTI, truncated
    (a cut ``.gz`` stream) or not 3D.
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    if not path.is_file():
        raise VolumeFileError(f"{path}: no such NIfTI file")
    try:
        image = nib.load(path)
        array = np.asarray(image.dataobj)
    except ImageFileError as error:
        raise VolumeFileError(f"{path} is not a NIfTI file ({error})") from error
    except (EOFError, OSError, ValueError, Exception) as error:  # noqa: BLE001
        raise VolumeFileError(
            f"{path} could not be read as NIfTI: truncated or damaged "
            f"({type(error).__name__}: {error})"
        ) from error
    if array.ndim != 3:
        raise VolumeFileError(f"{path} holds a {array.ndim}D array {array.shape}, expected 3D")
    spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
    return Volume(array, np.asarray(image.affine, dtype=float), spacing, path)


def read_pair(
    image_path: str | os.PathLike[str],
    label_path: str | os.PathLike[str],
    labels: Sequence[int] = (0, 1, 2),
    atol: float = 1e-3,
) -> tuple[Volume, Volume]:
    """Read an image and its label map and check that they belong together.

    Shapes must be equal and affines equal within ``atol`` mm (else
    :class:`VolumeMismatchError`); label values must be whole numbers in ``labels`` (else
    :class:`LabelValueError`). The label array is returned as ``uint8``.
    """
    image, label = read_nifti(image_path), read_nifti(label_path)
    if image.array.shape != label.array.shape:
        raise VolumeMismatchError(
            f"{label.path}: label shape {label.array.shape} differs from image shape "
            f"{image.array.shape} ({image.path})"
        )
    if not np.allclose(image.affine, label.affine, atol=atol):
        raise VolumeMismatchError(
            f"{label.path}: label affine differs from the image's ({image.path}); the two "
            f"grids do not cover the same place.\nimage:\n{image.affine}\nlabel:\n{label.affine}"
        )
    values = np.unique(label.array)
    bad = [v for v in values.tolist() if v not in set(labels)]
    if bad:
        raise LabelValueError(f"{label.path}: label values {bad[:8]} are outside {sorted(labels)}")
    label_array = label.array.astype(np.uint8)
    return image, Volume(label_array, label.affine, label.spacing, label.path)


def hippocampus_folder(data_home: str | os.PathLike[str] | None = None) -> Path:
    """The extracted Decathlon Task 04 folder (with ``imagesTr`` and ``labelsTr``).

    Uses ``<data root>/msd/Task04_Hippocampus`` when it exists; otherwise fetches the
    official archive (``data.fetch("msd_hippocampus")``: ``DatasetUnavailable`` offline)
    and extracts it next to it, refusing members that would land outside the folder.
    """
    root = data.data_root(data_home)
    folder = root / _HIPPO_DIR
    if (folder / "imagesTr").is_dir() and (folder / "labelsTr").is_dir():
        return folder
    archive = data.fetch("msd_hippocampus", data_home=data_home)
    target = archive.parent
    try:
        with tarfile.open(archive) as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.name.startswith("Task04_Hippocampus/")
                and "/._" not in m.name  # macOS resource forks in the official archive
            ]
            tar.extractall(target, members=members, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise data.DatasetCorrupt(f"{archive}: cannot extract ({error})") from error
    if not (folder / "imagesTr").is_dir():
        raise data.DatasetCorrupt(f"{archive} holds no Task04_Hippocampus/imagesTr folder")
    return folder


def hippocampus_cases(data_home: str | os.PathLike[str] | None = None) -> list[str]:
    """Case ids (``hippocampus_001`` ...) that have both an image and a label file."""
    folder = hippocampus_folder(data_home)
    images = {p.name[: -len(".nii.gz")] for p in (folder / "imagesTr").glob("hippocampus_*.nii.gz")}
    labels = {p.name[: -len(".nii.gz")] for p in (folder / "labelsTr").glob("hippocampus_*.nii.gz")}
    missing = sorted(images ^ labels)
    if missing:
        raise data.DatasetCorrupt(
            f"{folder}: cases without their image or label file: {missing[:5]}"
        )
    return sorted(images)


def load_hippocampus(
    n: int | None = None,
    seed: int = 0,
    data_home: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Read the hippocampus cases (all 260, or ``n`` drawn with ``seed``) as dicts with
    ``case``, ``image`` (float32), ``label`` (uint8), ``spacing`` and ``affine``; each pair is
    checked by :func:`read_pair`."""
    folder = hippocampus_folder(data_home)
    cases = hippocampus_cases(data_home)
    if n is not None and n < len(cases):
        rng = np.random.default_rng(seed)
        cases = sorted(rng.choice(cases, size=n, replace=False).tolist())
    out = []
    for case in cases:
        image, label = read_pair(
            folder / "imagesTr" / f"{case}.nii.gz", folder / "labelsTr" / f"{case}.nii.gz"
        )
        out.append(
            {
                "case": case,
                "image": image.array.astype(np.float32),
                "label": label.array,
                "spacing": image.spacing,
                "affine": image.affine,
            }
        )
    return out


def subject_split(
    cases: Sequence[str], fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), seed: int = 0
) -> dict[str, list[str]]:
    """Split cases into train / val / test with a fixed seed; no case is in two splits
    (checked).

    Pass one id per person to get a subject-level split. The Decathlon's hippocampus files
    crop the left and right hippocampus of a person separately and do not say which
    volumes belong together, so for them this is a split by volume, the closest to a
    subject-level split the public files allow. The Decathlon's own test labels are not
    public, so the held-back cases come from its training set.
    """
    if not np.isclose(sum(fractions), 1.0) or min(fractions) <= 0:
        raise ValueError(f"fractions must be positive and sum to 1, not {fractions}")
    order = np.random.default_rng(seed).permutation(len(cases))
    n_train = int(round(fractions[0] * len(cases)))
    n_val = int(round(fractions[1] * len(cases)))
    chosen = [cases[i] for i in order]
    splits = {
        "train": sorted(chosen[:n_train]),
        "val": sorted(chosen[n_train : n_train + n_val]),
        "test": sorted(chosen[n_train + n_val :]),
    }
    seen: set[str] = set()
    for names in splits.values():
        if seen & set(names):
            raise AssertionError("a case is in two splits")
        seen |= set(names)
    return splits


# --------------------------------------------------------------------------- shapes, intensities
def pad_or_crop(
    volume: np.ndarray, shape: Sequence[int], value: float = 0
) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """Centre ``volume`` in an array of ``shape`` (padding with ``value``, cropping what is
    too large). Returns the array and, per axis, ``(offset in the input, offset in the
    output)``, which :func:`restore_shape` uses to go back to the original grid."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != volume.ndim:
        raise ValueError(f"shape {shape} has {len(shape)} axes, volume has {volume.ndim}")
    out = np.full(shape, value, dtype=volume.dtype)
    src, dst, box = [], [], []
    for size, target in zip(volume.shape, shape, strict=True):
        if size >= target:
            start = (size - target) // 2
            src.append(slice(start, start + target))
            dst.append(slice(0, target))
            box.append((start, 0))
        else:
            start = (target - size) // 2
            src.append(slice(0, size))
            dst.append(slice(start, start + size))
            box.append((0, start))
    out[tuple(dst)] = volume[tuple(src)]
    return out, tuple(box)


def restore_shape(
    fitted: np.ndarray,
    original_shape: Sequence[int],
    box: Sequence[tuple[int, int]],
    value: float = 0,
) -> np.ndarray:
    """Undo :func:`pad_or_crop`: put ``fitted`` back on the original grid (cropped-away
    voxels get ``value``, e.g. background)."""
    out = np.full(tuple(original_shape), value, dtype=fitted.dtype)
    src, dst = [], []
    for size, target, (in_off, out_off) in zip(original_shape, fitted.shape, box, strict=True):
        n = min(size - in_off, target - out_off)
        dst.append(slice(in_off, in_off + n))
        src.append(slice(out_off, out_off + n))
    out[tuple(dst)] = fitted[tuple(src)]
    return out


def normalize_mri(volume: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Z-score an MRI volume over ``mask`` (default: its non-zero voxels).

    MRI intensities have no physical unit: the same tissue gets different values on another
    scanner or session, so each volume is standardised on its own (nnU-Net does the same
    for MRI). Percentiles 0.5 and 99.5 are clipped first against bright outliers.
    """
    volume = np.asarray(volume, dtype=np.float32)
    if mask is None:
        mask = volume > 0
    values = volume[mask] if np.any(mask) else volume.ravel()
    low, high = np.percentile(values, [0.5, 99.5])
    clipped = np.clip(volume, low, high)
    values = clipped[mask] if np.any(mask) else clipped.ravel()
    return ((clipped - values.mean()) / (values.std() + 1e-6)).astype(np.float32)


def window_ct(hu: np.ndarray, level: float = 40.0, width: float = 400.0) -> np.ndarray:
    """Map CT values in Hounsfield units to [0, 1] through a window (default: soft tissue,
    level 40 HU, width 400 HU). HU are calibrated (water 0, air -1000), so one fixed
    window means the same tissue on every scanner, unlike MRI."""
    if width <= 0:
        raise ValueError(f"window width must be positive, not {width}")
    low = level - width / 2
    return np.clip((np.asarray(hu, dtype=np.float32) - low) / width, 0.0, 1.0)


def batch_memory_mb(
    shape: Sequence[int], batch: int = 32, channels: int = 1, bytes_per_value: int = 4
) -> float:
    """Memory of one input batch of volumes (float32 by default), in MiB: what the input
    alone costs before any feature map is computed."""
    return float(np.prod(shape)) * batch * channels * bytes_per_value / 2**20


def orthogonal_slices(volume: np.ndarray, index: Sequence[int] | None = None) -> list[np.ndarray]:
    """The three orthogonal central slices (axis 0, 1, 2) through ``index`` (default the
    centre) of a 3D volume: the 2.5D view of it."""
    if volume.ndim != 3:
        raise ValueError(f"need a 3D volume, got shape {volume.shape}")
    index = [s // 2 for s in volume.shape] if index is None else list(index)
    return [volume[index[0]], volume[:, index[1]], volume[:, :, index[2]]]


def check_3d_batch(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Check that ``images`` is a batch of 3D volumes ``(n, D, H, W)`` (or with one
    channel); a 2D batch raises ``ValueError`` naming ``name`` and its shape."""
    images = np.asarray(images)
    if images.ndim == 5 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 4:
        raise ValueError(
            f"{name}: expected a batch of 3D volumes (n, D, H, W), got shape {images.shape}"
        )
    return images


def central_slices(images: np.ndarray) -> np.ndarray:
    """2.5D inputs: each volume's three central orthogonal slices as three channels
    ``(n, S, S, 3)`` (cubic volumes only, as in MedMNIST)."""
    images = check_3d_batch(images)
    n, d, h, w = images.shape
    if not d == h == w:
        raise ValueError(f"central_slices needs cubic volumes, got {images.shape[1:]}")
    return np.stack([images[:, d // 2], images[:, :, h // 2], images[:, :, :, w // 2]], axis=-1)


def axial_slices(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2D inputs: every slice along axis 1 of every volume, ``(n * D, H, W, 1)``, and the
    index of the volume each slice came from."""
    images = check_3d_batch(images)
    n, d = images.shape[:2]
    return images.reshape(n * d, *images.shape[2:], 1), np.repeat(np.arange(n), d)


# --------------------------------------------------------------------------- metrics
def dice(pred: np.ndarray, true: np.ndarray, label: int = 1) -> float:
    """Dice overlap ``2|P & T| / (|P| + |T|)`` of one label.

    An empty prediction of a non-empty structure scores 0; when both are empty the
    structure is absent and correctly called absent, scored 1 (the convention of the
    Decathlon's and nnU-Net's evaluation; say so when reporting).
    """
    p, t = np.asarray(pred) == label, np.asarray(true) == label
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and truth {t.shape} differ in shape")
    denominator = p.sum() + t.sum()
    return 1.0 if denominator == 0 else float(2 * np.logical_and(p, t).sum() / denominator)


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure, border_value=0)


def surface_distances(
    a: np.ndarray, b: np.ndarray, spacing: Sequence[float] | None = None
) -> np.ndarray:
    """Distances (mm) from every surface voxel of mask ``a`` to the surface of mask ``b``.

    Surface voxels are the mask's voxels with a 6-connected neighbour outside it; distances
    are Euclidean between voxel centres, scaled by ``spacing`` (scipy's exact Euclidean
    distance transform).
    """
    from scipy import ndimage

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    spacing = tuple(spacing) if spacing is not None else (1.0,) * a.ndim
    sa, sb = _surface(a), _surface(b)
    distance_to_b = ndimage.distance_transform_edt(~sb, sampling=spacing)
    return distance_to_b[sa]


def hd95(
    pred: np.ndarray, true: np.ndarray, label: int = 1, spacing: Sequence[float] | None = None
) -> float:
    """95th-percentile symmetric Hausdorff distance (mm) between the surfaces of one label.

    ``max(P95(d(pred -> true)), P95(d(true -> pred)))`` over surface voxels: the definition
    of MONAI's ``compute_hausdorff_distance(percentile=95)`` and DeepMind's
    ``surface-distance`` (which weights by surface area instead of voxel count; the values
    differ slightly). It is undefined (NaN is returned) when either mask is empty: an empty
    prediction has no surface; report such cases separately. Implemented here with
    ``scipy.ndimage`` because the well-kept libraries that compute it (MONAI, MedPy,
    seg-metrics) pull in PyTorch or SimpleITK, and DeepMind's ``surface-distance`` is not
    published on PyPI; the unit tests check it against hand-computed cases.
    """
    p, t = np.asarray(pred) == label, np.asarray(true) == label
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and truth {t.shape} differ in shape")
    if not p.any() or not t.any():
        return float("nan")
    forward = surface_distances(p, t, spacing)
    backward = surface_distances(t, p, spacing)
    return float(max(np.percentile(forward, 95), np.percentile(backward, 95)))


def segmentation_scores(
    pred: np.ndarray,
    true: np.ndarray,
    spacing: Sequence[float] | None = None,
    labels: Mapping[int, str] = HIPPOCAMPUS_LABELS,
) -> dict[str, float]:
    """Dice, HD95 (mm) and predicted / true volumes (mm^3 = microlitres) per structure, plus
    voxel accuracy over all labels (background included)."""
    spacing = tuple(spacing) if spacing is not None else (1.0,) * np.ndim(true)
    voxel = float(np.prod(spacing))
    out: dict[str, float] = {"voxel_accuracy": float(np.mean(np.asarray(pred) == true))}
    for value, name in labels.items():
        out[f"dice_{name}"] = dice(pred, true, value)
        out[f"hd95_{name}"] = hd95(pred, true, value, spacing)
        out[f"volume_pred_{name}"] = float(np.sum(pred == value)) * voxel
        out[f"volume_true_{name}"] = float(np.sum(true == value)) * voxel
    return out


def bland_altman(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Bland-Altman agreement of two measurements of the same cases: the mean difference
    (bias, ``predicted - true``) and the 95 % limits of agreement ``bias +- 1.96 sd``."""
    predicted, true = np.asarray(predicted, float), np.asarray(true, float)
    if predicted.shape != true.shape or predicted.size < 2:
        raise ValueError("need two equally long series of at least two measurements")
    diff = predicted - true
    bias, sd = float(diff.mean()), float(diff.std(ddof=1))
    return {"bias": bias, "sd": sd, "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd}


def prior_correction(scores: np.ndarray, class_weight: Mapping[int, float]) -> np.ndarray:
    """Undo the shift that class weights put into a binary model's probabilities.

    Weighting class 1 by ``w1`` and class 0 by ``w0`` multiplies the odds the model learns
    by ``w1 / w0``; dividing them back out gives probabilities for the real prevalence, so
    the MedMNIST rule ``score > 0.5`` means "more likely than not". Ranking (AUC) is
    unchanged.
    """
    scores = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    odds = scores / (1 - scores) * class_weight[0] / class_weight[1]
    return odds / (1 + odds)


# --------------------------------------------------------------------------- models (Keras)
def flip_augmentation(axes: Sequence[int] = (3,), seed: int | None = None) -> Any:
    """A Keras layer that, in training only, flips each volume along ``axes`` (array axes of
    the batch ``(n, D, H, W, C)``) with probability 1/2.

    Use only flips the anatomy allows: a left-right flip turns a left adrenal gland into a
    plausible right one (AdrenalMNIST3D holds both sides); a head-foot flip makes an
    anatomy that does not exist.
    """
    import keras

    @keras.saving.register_keras_serializable(package="dl4h")
    class RandomFlip3D(keras.layers.Layer):
        def __init__(self, axes: Sequence[int] = (3,), seed: int | None = None, **kwargs: Any):
            super().__init__(**kwargs)
            self.axes = tuple(int(a) for a in axes)
            self.seed = seed
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, inputs: Any, training: bool | None = None) -> Any:
            if not training:
                return inputs
            x = inputs
            for axis in self.axes:
                coin = keras.random.uniform(
                    (keras.ops.shape(x)[0],) + (1,) * (len(x.shape) - 1), seed=self.generator
                )
                x = keras.ops.where(coin < 0.5, keras.ops.flip(x, axis=axis), x)
            return x

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "axes": self.axes, "seed": self.seed}

    return RandomFlip3D(axes, seed, name="flip3d")


def _conv_bn(x: Any, filters: int, dims: int, name: str) -> Any:
    import keras

    conv = keras.layers.Conv3D if dims == 3 else keras.layers.Conv2D
    x = conv(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def _pool_dtype(dims: int) -> str | None:
    """``"float32"`` for 3D max-pooling under mixed precision, else the policy's dtype.

    TensorFlow has no float16 ``MaxPool3D`` kernel on CPUs (GPUs have one), so a 3D model
    built under ``mixed_float16`` could not run on a CPU. Pooling in float32 costs two casts
    per pooling layer and keeps the same model runnable everywhere (the gpu-path tests run
    the ``gpu`` profile's float16 code on a CPU).
    """
    import keras

    mixed = keras.mixed_precision.global_policy().compute_dtype == "float16"
    return "float32" if dims == 3 and mixed else None


def volume_classifier(
    input_shape: Sequence[int],
    *,
    widths: Sequence[int] = (16, 32, 64),
    convs_per_block: Sequence[int] = (1, 2, 2),
    dropout: float = 0.3,
    flip_axes: Sequence[int] = (),
    seed: int | None = None,
) -> keras.Model:
    """A small CNN for one binary label: 3D convolutions for ``(D, H, W, C)`` inputs, 2D
    ones for ``(H, W, C)`` (the slice and 2.5D models of the chapter).

    Each block is ``convs_per_block[i]`` 3x3(x3) convolutions with batch norm and ReLU, then
    a 2x max-pool (not after the last); global average pooling, dropout and a sigmoid
    output named ``probability`` (its input Dense layer is ``logits``). ``flip_axes`` adds
    :func:`flip_augmentation` (3D inputs only).
    """
    import keras

    dims = len(input_shape) - 1
    if dims not in (2, 3):
        raise ValueError(f"input_shape must be (D, H, W, C) or (H, W, C), not {input_shape}")
    if len(convs_per_block) != len(widths):
        raise ValueError("convs_per_block needs one entry per width")
    inputs = keras.Input(tuple(input_shape), name="volume" if dims == 3 else "image")
    x = inputs
    if flip_axes:
        x = flip_augmentation(flip_axes, seed)(x)
    pool = keras.layers.MaxPooling3D if dims == 3 else keras.layers.MaxPooling2D
    pool_dtype = _pool_dtype(dims)
    gap = keras.layers.GlobalAveragePooling3D if dims == 3 else keras.layers.GlobalAveragePooling2D
    for block, (filters, n_conv) in enumerate(zip(widths, convs_per_block, strict=True)):
        for k in range(n_conv):
            x = _conv_bn(x, filters, dims, f"b{block}_{k}")
        if block < len(widths) - 1:
            x = pool(2, name=f"pool{block}", dtype=pool_dtype)(x)
    x = gap(name="gap")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(1, name="logits")(x)
    outputs = keras.layers.Activation("sigmoid", dtype="float32", name="probability")(logits)
    return keras.Model(inputs, outputs, name=f"cnn{dims}d")


def unet(
    input_shape: Sequence[int],
    n_classes: int = 3,
    *,
    base: int = 16,
    depth: int = 3,
    dropout: float = 0.0,
) -> keras.Model:
    """A U-Net (Ronneberger et al. 2015; 3D: Cicek et al. 2016) for ``(H, W, C)`` or
    ``(D, H, W, C)`` inputs whose spatial sizes are divisible by ``2**depth``.

    ``depth`` down-sampling steps, two conv-BN-ReLU layers per level with ``base * 2**level``
    filters, transposed-convolution up-sampling, skip connections by concatenation, and a
    per-voxel softmax over ``n_classes`` (float32 output, layer ``probability``).
    """
    import keras

    dims = len(input_shape) - 1
    if dims not in (2, 3):
        raise ValueError(f"input_shape must be (H, W, C) or (D, H, W, C), not {input_shape}")
    for size in input_shape[:-1]:
        if size % 2**depth:
            raise ValueError(f"spatial size {size} is not divisible by 2**depth = {2**depth}")
    pool = keras.layers.MaxPooling3D if dims == 3 else keras.layers.MaxPooling2D
    pool_dtype = _pool_dtype(dims)
    up = keras.layers.Conv3DTranspose if dims == 3 else keras.layers.Conv2DTranspose
    conv = keras.layers.Conv3D if dims == 3 else keras.layers.Conv2D
    inputs = keras.Input(tuple(input_shape), name="image")
    x, skips = inputs, []
    for level in range(depth):
        x = _conv_bn(x, base * 2**level, dims, f"down{level}a")
        x = _conv_bn(x, base * 2**level, dims, f"down{level}b")
        skips.append(x)
        x = pool(2, name=f"pool{level}", dtype=pool_dtype)(x)
    x = _conv_bn(x, base * 2**depth, dims, "bottom_a")
    x = _conv_bn(x, base * 2**depth, dims, "bottom_b")
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    for level in reversed(range(depth)):
        x = up(base * 2**level, 2, strides=2, name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv_bn(x, base * 2**level, dims, f"dec{level}a")
        x = _conv_bn(x, base * 2**level, dims, f"dec{level}b")
    logits = conv(n_classes, 1, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probability")(logits)
    return keras.Model(inputs, outputs, name=f"unet{dims}d")


def dice_ce_loss(n_classes: int = 3, smooth: float = 1e-5, include_background: bool = False) -> Any:
    """Cross-entropy plus soft Dice loss (``1 - mean soft Dice`` over the foreground classes,
    computed per batch), for integer label maps ``(n, ..., 1)`` or ``(n, ...)`` and softmax
    outputs. Cross-entropy alone lets a model that predicts background everywhere score
    well when 95 % of voxels are background; the Dice term only rewards overlap with the
    structures."""
    import keras
    from keras import ops

    first = 0 if include_background else 1

    @keras.saving.register_keras_serializable(package="dl4h")
    def dice_ce(y_true: Any, y_pred: Any) -> Any:
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == len(y_pred.shape):
            labels = ops.squeeze(labels, -1)
        onehot = ops.one_hot(labels, n_classes, dtype=y_pred.dtype)
        ce = ops.mean(keras.losses.categorical_crossentropy(onehot, y_pred))
        axes = tuple(range(len(y_pred.shape) - 1))
        intersection = ops.sum(onehot * y_pred, axis=axes)
        total = ops.sum(onehot, axis=axes) + ops.sum(y_pred, axis=axes)
        soft_dice = (2 * intersection + smooth) / (total + smooth)
        return ce + 1 - ops.mean(soft_dice[first:])

    return dice_ce


def predict_volumes_2d(model: Any, volumes: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Segment ``(n, X, H, W)`` volumes with a 2D model slice by slice along axis 1 and
    return the per-voxel arg-max labels ``(n, X, H, W)`` (uint8)."""
    n, depth = volumes.shape[:2]
    slices = volumes.reshape(n * depth, *volumes.shape[2:], 1)
    prob = model.predict(slices, batch_size=batch_size, verbose=0)
    return prob.argmax(-1).reshape(n, depth, *volumes.shape[2:]).astype(np.uint8)


# --------------------------------------------------------------------------- training
def cosine_adam(learning_rate: float, total_steps: int) -> Any:
    """Adam whose learning rate decays from ``learning_rate`` to 0 along a half cosine over
    ``total_steps`` optimiser steps (no early stopping: the schedule fixes the length)."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(1, total_steps))
    return keras.optimizers.Adam(schedule)


def predict_with_flips(
    model: Any, x: np.ndarray, flip_axes: Sequence[int] = (), batch_size: int = 128
) -> np.ndarray:
    """Mean probability over the input and its flips along ``flip_axes`` (test-time
    augmentation with the same anatomy-respecting flips as training); shape ``(n,)``."""
    outputs = [model.predict(x, batch_size=batch_size, verbose=0)]
    for axis in flip_axes:
        outputs.append(model.predict(np.flip(x, axis=axis), batch_size=batch_size, verbose=0))
    return np.mean(outputs, axis=0).reshape(len(x))


def train_snapshots(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray | None = None,
    *,
    epochs: int,
    last_k: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    class_weight: Mapping[int, float] | None = None,
    tta_axes: Sequence[int] = (),
    max_shift: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Train a binary classifier for a fixed number of epochs on a cosine schedule and keep
    the predictions of the last ``last_k`` epochs (a snapshot ensemble).

    Validation AUC of a single epoch is noisy on a small validation split (98 volumes in
    AdrenalMNIST3D, 22 of them positive), so picking "the best epoch" partly picks noise.
    Averaging the last epochs' predictions (as the learning rate anneals) needs no choice
    at all. Returns ``val_auc`` and ``val_scores`` per epoch, the averaged ``val_score`` /
    ``test_score`` (``test_scores``: the last ``last_k`` epochs' test predictions), and, for
    comparison, ``best_epoch`` (1-based: the epoch with the best validation AUC) and
    ``best_epoch_test_score``, the usual early-stopping choice; the test predictions never
    choose anything. The model ends with its last epoch's weights. ``max_shift > 0``
    translates each training volume by up to that many voxels per axis in every epoch
    (:func:`random_shift`), as a patient lies a little differently in every scan.
    """
    from sklearn.metrics import roc_auc_score

    from .models import build_optimizer

    if not 1 <= last_k <= epochs:
        raise ValueError(f"last_k must be in 1..epochs ({epochs}), not {last_k}")
    steps = int(np.ceil(len(x_train) / batch_size)) * epochs
    model.compile(
        optimizer=cosine_adam(learning_rate, steps),
        loss="binary_crossentropy",
    )
    build_optimizer(model)  # one trace of the training step, not two
    val_scores: list[np.ndarray] = []
    test_scores: list[np.ndarray] = []
    val_auc: list[float] = []

    rng = np.random.default_rng(seed)
    targets = np.asarray(y_train, dtype=np.float32)
    losses: list[float] = []
    for epoch in range(epochs):
        x_epoch = random_shift(x_train, max_shift, rng) if max_shift else x_train
        history = model.fit(
            x_epoch,
            targets,
            epochs=1,
            batch_size=batch_size,
            class_weight=dict(class_weight) if class_weight else None,
            verbose=0,
        ).history
        losses.append(float(history["loss"][0]))
        score = predict_with_flips(model, x_val, tta_axes)
        val_scores.append(score)
        val_auc.append(float(roc_auc_score(np.ravel(y_val), score)))
        if val_auc[-1] == max(val_auc):  # the usual early-stopping choice, kept for comparison
            best_weights = [w.copy() for w in model.get_weights()]
        if x_test is not None and epoch >= epochs - last_k:
            test_scores.append(predict_with_flips(model, x_test, tta_axes))
    out: dict[str, Any] = {
        "loss": losses,
        "val_auc": val_auc,
        "val_scores": val_scores,
        "val_score": np.mean(val_scores[-last_k:], axis=0),
        "best_epoch": int(np.argmax(val_auc)) + 1,
    }
    if x_test is not None:
        out["test_scores"] = test_scores
        out["test_score"] = np.mean(test_scores, axis=0)
        final_weights = model.get_weights()
        model.set_weights(best_weights)
        out["best_epoch_test_score"] = predict_with_flips(model, x_test, tta_axes)
        model.set_weights(final_weights)
    return out


def random_shift(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate each volume of a batch ``(n, D, H, W[, C])`` by a random whole number of
    voxels in ``[-max_shift, max_shift]`` along each spatial axis (what leaves one edge comes
    back at the other, harmless when the edges are background, as in the shape masks)."""
    out = np.empty_like(x)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(x), 3))
    for k in range(len(x)):
        out[k] = np.roll(x[k], tuple(shifts[k]), axis=(0, 1, 2))
    return out


def _check_slice_axis(axis: int) -> None:
    if axis not in (1, 2, 3):
        raise ValueError(f"axis must be 1, 2 or 3 of (n, X, H, W) volumes, not {axis}")


def slice_stack(volumes: np.ndarray, context: int = 1, axis: int = 1) -> np.ndarray:
    """2D (or 2.5D) segmentation inputs: for every slice along ``axis`` (1, 2 or 3) of
    ``(n, X, H, W)`` volumes, that slice and its ``context`` neighbours on each side as
    channels, e.g. ``(n * X, H, W, 2 * context + 1)`` for ``axis=1``; outside the volume the
    neighbours are zeros."""
    _check_slice_axis(axis)
    volumes = np.moveaxis(volumes, axis, 1)
    n, depth = volumes.shape[:2]
    padded = np.pad(volumes, ((0, 0), (context, context), (0, 0), (0, 0)))
    channels = [padded[:, k : k + depth] for k in range(2 * context + 1)]
    return np.stack(channels, axis=-1).reshape(n * depth, *volumes.shape[2:], 2 * context + 1)


def slice_input_shape(
    shape: Sequence[int], context: int = 1, axis: int = 1
) -> tuple[int, int, int]:
    """Input shape of a 2D segmenter fed by :func:`slice_stack` from volumes of ``shape``
    ``(X, H, W)``: the two in-plane sizes (``axis`` left out) and ``2 * context + 1``
    channels."""
    _check_slice_axis(axis)
    in_plane = [int(n) for k, n in enumerate(shape, start=1) if k != axis]
    return (*in_plane, 2 * context + 1)


def view_axes(views: Sequence[str]) -> list[int]:
    """The :data:`VIEW_AXES` axis of each named slicing direction; an unknown name raises
    ``ValueError`` naming it (before any volume is read or model trained)."""
    unknown = sorted(set(views) - set(VIEW_AXES))
    if unknown:
        raise ValueError(f"unknown slicing view(s) {unknown}; choose from {sorted(VIEW_AXES)}")
    return [VIEW_AXES[view] for view in views]


def segment_probabilities(
    model: Any,
    volumes: np.ndarray,
    context: int | None = None,
    axis: int = 1,
    batch_size: int = 64,
) -> np.ndarray:
    """Per-voxel class probabilities ``(n, X, H, W, classes)`` of ``volumes`` ``(n, X, H,
    W)``: slice by slice along ``axis`` with :func:`slice_stack` for a 2D model (``context``
    neighbours), or whole volumes for a 3D model (``context=None``). Models that read the
    same volumes along different axes can be averaged here (a multi-view ensemble)."""
    if context is None:
        return model.predict(volumes[..., None], batch_size=max(1, batch_size // 16), verbose=0)
    prob = model.predict(slice_stack(volumes, context, axis), batch_size=batch_size, verbose=0)
    moved = np.moveaxis(volumes, axis, 1).shape
    return np.moveaxis(prob.reshape(*moved, prob.shape[-1]), 1, axis)


def segment_volumes(
    model: Any,
    volumes: np.ndarray,
    context: int | None = None,
    batch_size: int = 64,
    axis: int = 1,
) -> np.ndarray:
    """Arg-max label maps ``(n, X, H, W)`` (uint8) of :func:`segment_probabilities`."""
    return (
        segment_probabilities(model, volumes, context, axis, batch_size).argmax(-1).astype(np.uint8)
    )


def prepare_hippocampus(
    cases: Sequence[Mapping[str, Any]], shape: Sequence[int] = HIPPOCAMPUS_SHAPE
) -> dict[str, Any]:
    """Normalise each MRI (:func:`normalize_mri`) and centre it in ``shape``; returns
    ``images`` and ``labels`` ``(n, *shape)`` plus each case's ``boxes`` and original
    ``shapes`` for :func:`restore_shape`."""
    images, labels, boxes, shapes = [], [], [], []
    for case in cases:
        image, box = pad_or_crop(normalize_mri(case["image"]), shape)
        label, _ = pad_or_crop(case["label"], shape)
        images.append(image)
        labels.append(label)
        boxes.append(box)
        shapes.append(case["image"].shape)
    return {
        "images": np.stack(images),
        "labels": np.stack(labels),
        "boxes": boxes,
        "shapes": shapes,
    }


def train_segmenter(
    model: Any,
    train: Mapping[str, Any],
    *,
    epochs: int,
    context: int | None = 1,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    axis: int = 1,
) -> dict[str, Any]:
    """Train a U-Net with :func:`dice_ce_loss` on a cosine schedule for ``epochs``.

    2D (``context`` given): every slice along ``axis`` (1, 2 or 3 of ``(n, X, H, W)``) that
    holds image voxels (padding slices are skipped), with its neighbours as channels. 3D
    (``context=None``): whole volumes, randomly flipped along the first axis (left-right for
    the hippocampus files) in each epoch. Returns the loss history."""
    from .models import build_optimizer

    images, labels = train["images"], train["labels"]
    if context is not None:
        x = slice_stack(images, context, axis)
        moved = np.moveaxis(labels, axis, 1)
        y = moved.reshape(-1, *moved.shape[2:])
        keep = np.abs(x[..., context]).reshape(len(x), -1).max(axis=1) > 0
        x, y = x[keep], y[keep]
    else:
        x, y = images[..., None], labels
    steps = int(np.ceil(len(x) / batch_size)) * epochs
    model.compile(optimizer=cosine_adam(learning_rate, steps), loss=dice_ce_loss(3))
    build_optimizer(model)
    rng = np.random.default_rng(seed)
    losses: list[float] = []
    for _ in range(epochs):
        xe, ye = x, y
        if context is None:  # flip half the volumes left-right
            flip = rng.random(len(x)) < 0.5
            xe, ye = x.copy(), y.copy()
            xe[flip], ye[flip] = xe[flip, ::-1], ye[flip, ::-1]
        history = model.fit(
            xe, ye[..., None], epochs=1, batch_size=batch_size, shuffle=True, verbose=0
        )
        losses.append(float(history.history["loss"][0]))
    return {"loss": losses, "n_train_inputs": int(len(x))}


def evaluate_segmentation(
    pred: np.ndarray,
    prepared: Mapping[str, Any],
    cases: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Scores of every case (:func:`segmentation_scores`) on its ORIGINAL grid: the fixed-
    shape predictions are put back with :func:`restore_shape` first."""
    rows = []
    for k, case in enumerate(cases):
        restored = restore_shape(pred[k], prepared["shapes"][k], prepared["boxes"][k])
        rows.append(
            {"case": case["case"], **segmentation_scores(restored, case["label"], case["spacing"])}
        )
    return rows
