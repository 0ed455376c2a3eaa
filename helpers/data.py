"""Datasets: one registry, checked downloads into the data root, loaders, splits, pipelines.

Data flows one way: the **data root** (``DL4H_DATA``, default ``<repo>/data``) holds the
files; :func:`fetch` puts a file there (download with pooch: hash check, cache, progress
bar) or finds it already cached; the ``load_*`` functions parse and *validate* it and return
NumPy arrays (or a DataFrame for text sequences) with the official splits.

Nothing here ever reads another path, and nothing invents data: when a file is neither
cached nor downloadable the loaders raise :class:`DatasetUnavailable` within seconds,
naming the file, the data root and the URL to fetch by hand.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA_ENV = "DL4H_DATA"
OFFLINE_ENV = "DL4H_OFFLINE"
SPLITS = ("train", "val", "test")
MEDMNIST_SIZES = (28, 64, 128, 224)
REPO_ROOT = Path(__file__).resolve().parents[1]


class DatasetError(Exception):
    """Base class of every data problem this module reports."""


class DatasetUnavailable(DatasetError):
    """The file is not in the data root and could not be downloaded (offline?)."""


class DatasetCorrupt(DatasetError):
    """The file exists but is unreadable, has the wrong layout or the wrong checksum."""


class UnknownDataset(DatasetError, KeyError):
    """The name is not in the registry (the message suggests close names)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


class GroupLeakage(DatasetError, ValueError):
    """A group (e.g. a patient) appears in more than one split."""


@dataclass(frozen=True)
class DatasetInfo:
    """One registry entry: where a file comes from and how to credit it.

    ``path`` is relative to the data root. ``known_hash`` is ``"md5:..."`` or
    ``"sha256:..."`` (pooch's format). When ``member`` is set, ``url`` points at a zip
    archive and ``path`` is that member, extracted.
    """

    name: str
    path: str
    url: str
    known_hash: str | None
    licence: str
    citation: str
    description: str
    member: str | None = None


MEDMNIST_CITATION = (
    "Yang, J. et al. MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D "
    "biomedical image classification. Scientific Data 10, 41 (2023)."
)
_MEDMNIST_SOURCES = {
    "pneumoniamnist": "Kermany, D. S. et al. Identifying medical diagnoses and treatable "
    "diseases by image-based deep learning. Cell 172, 1122-1131 (2018).",
}


def medmnist_name(flag: str, size: int = 28) -> str:
    """Registry name of a MedMNIST file: ``flag`` at 28 px, ``flag_<size>`` otherwise."""
    if size not in MEDMNIST_SIZES:
        raise ValueError(f"MedMNIST size must be one of {MEDMNIST_SIZES}, not {size!r}")
    return flag if size == 28 else f"{flag}_{size}"


def _load_medmnist_info() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("medmnist_info.json").read_text()
    return json.loads(text)


MEDMNIST_INFO: dict[str, Any] = _load_medmnist_info()


def _medmnist_entries() -> dict[str, DatasetInfo]:
    entries = {}
    for flag, info in MEDMNIST_INFO.items():
        citation = MEDMNIST_CITATION + (" " + _MEDMNIST_SOURCES[flag] if flag in _MEDMNIST_SOURCES else "")
        for size in MEDMNIST_SIZES:
            name = medmnist_name(flag, size)
            file = info["files"][str(size)]
            entries[name] = DatasetInfo(
                name=name,
                path=f"medmnist/{name}.npz",
                url=file["url"],
                known_hash="md5:" + file["md5"],
                licence=info["license"],
                citation=citation,
                description=f"MedMNIST {flag} at {size}x{size} px ({info['task']}, "
                f"{len(info['label'])} classes, {info['n_channels']} channel(s)).",
            )
    return entries


_UCR_CITATION = (
    "Dau, H. A. et al. The UCR time series archive. IEEE/CAA Journal of Automatica Sinica "
    "6(6), 1293-1305 (2019); Goldberger, A. L. et al. PhysioBank, PhysioToolkit, and "
    "PhysioNet. Circulation 101(23), e215-e220 (2000)."
)
_UCI_MB = "https://archive.ics.uci.edu/ml/machine-learning-databases/molecular-biology"

# SHA-256 of the copies checked for this course (row counts and class counts match the
# published descriptions). No upstream publishes checksums for these files.
REGISTRY: dict[str, DatasetInfo] = {
    **_medmnist_entries(),
    "ecg5000_train": DatasetInfo(
        name="ecg5000_train",
        path="ucr/ECG5000_TRAIN.txt",
        url="https://www.timeseriesclassification.com/Downloads/ECG5000.zip",
        known_hash="sha256:0d96aff193311a6dc6111bf0dbd2f7d2313987fbf7a1da4a383d92563876057b",
        licence="UCR time-series archive terms (free for research and teaching; cite)",
        citation=_UCR_CITATION,
        description="ECG5000 training split: 500 heartbeats x 140 samples, classes 1-5.",
        member="ECG5000_TRAIN.txt",
    ),
    "ecg5000_test": DatasetInfo(
        name="ecg5000_test",
        path="ucr/ECG5000_TEST.txt",
        url="https://www.timeseriesclassification.com/Downloads/ECG5000.zip",
        known_hash=None,  # not checked for this course: the loader validates its shape
        licence="UCR time-series archive terms (free for research and teaching; cite)",
        citation=_UCR_CITATION,
        description="ECG5000 test split: 4500 heartbeats x 140 samples, classes 1-5.",
        member="ECG5000_TEST.txt",
    ),
    "splice": DatasetInfo(
        name="splice",
        path="uci/splice.data",
        url=f"{_UCI_MB}/splice-junction-gene-sequences/splice.data",
        known_hash="sha256:ebbae10c85d3c285e2a2489a37e42bc2ee8d91d15005e391a9962fa3389a114f",
        licence="CC BY 4.0 (UCI Machine Learning Repository)",
        citation="Towell, G. G., Shavlik, J. W. & Noordewier, M. O. Refinement of approximate "
        "domain theories by knowledge-based neural networks. AAAI-90, 861-866 (1990/1992); "
        "UCI Machine Learning Repository, Molecular Biology (Splice-junction Gene Sequences).",
        description="Primate splice junctions: 3190 DNA windows of 60 bp, classes EI/IE/N.",
    ),
    "promoters": DatasetInfo(
        name="promoters",
        path="uci/promoters.data",
        url=f"{_UCI_MB}/promoter-gene-sequences/promoters.data",
        known_hash="sha256:9cba9e8661ab04760d69b857f62259233446f2dce5ec9b515efe0b23c315bb29",
        licence="CC BY 4.0 (UCI Machine Learning Repository)",
        citation="Harley, C. & Reynolds, R.; Towell, G. G. et al. UCI Machine Learning "
        "Repository, Molecular Biology (Promoter Gene Sequences).",
        description="E. coli promoters: 106 DNA windows of 57 bp, classes + / -.",
    ),
}

# What each text dataset must look like; the loaders check it.
UCR_SHAPES = {"ecg5000_train": (500, 140), "ecg5000_test": (4500, 140)}
SEQUENCE_LENGTHS = {"splice": 60, "promoters": 57}


# --------------------------------------------------------------------------- data root
def data_root() -> Path:
    """Return the data root: ``$DL4H_DATA`` if set, else ``<repo>/data``.

    A relative ``DL4H_DATA`` is taken from the repository root (not from the current
    directory, which differs between notebooks, scripts and tests). The folder need not
    exist yet; fetching creates the sub-folders it needs.
    """
    value = os.environ.get(DATA_ENV)
    root = Path(value).expanduser() if value else Path("data")
    if not root.is_absolute():
        root = REPO_ROOT / root
    return root.resolve()


def dataset_info(name: str) -> DatasetInfo:
    """Return the registry entry for ``name`` or raise :class:`UnknownDataset`.

    The error lists the closest registered names, so a typo is a one-line fix.
    """
    key = name.strip().lower()
    if key in REGISTRY:
        return REGISTRY[key]
    close = difflib.get_close_matches(key, REGISTRY, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownDataset(
        f"unknown dataset {name!r}.{hint} Registered: MedMNIST 2D flags "
        f"({', '.join(MEDMNIST_INFO)}) with optional _64/_128/_224, "
        "ecg5000_train, ecg5000_test, splice, promoters."
    )


def local_path(name: str) -> Path:
    """Where ``name`` lives (or would live) under the data root."""
    return data_root() / dataset_info(name).path


def cached_datasets() -> list[str]:
    """Registry names whose files are present under the data root."""
    root = data_root()
    return [name for name, info in REGISTRY.items() if (root / info.path).is_file()]


# --------------------------------------------------------------------------- fetching
def _hash_matches(path: Path, known_hash: str) -> tuple[bool, str]:
    algorithm, expected = known_hash.split(":", 1)
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    actual = digest.hexdigest()
    return actual == expected.lower(), f"{algorithm}:{actual}"


def _unavailable(info: DatasetInfo, target: Path, cause: str) -> DatasetUnavailable:
    how = (f"download {info.url}, extract {info.member} from it" if info.member
           else f"download {info.url}")
    return DatasetUnavailable(
        f"{info.name}: {target} is not cached and could not be downloaded ({cause}). "
        f"Data root: {data_root()} (set {DATA_ENV} to use another folder). "
        f"To fix it, go online and call helpers.data.fetch({info.name!r}), or {how} by hand "
        f"and save it as {target}."
    )


def fetch(name: str, *, verify: bool = False, offline: bool | None = None) -> Path:
    """Return the local path of dataset file ``name``, downloading it if needed.

    A file already under the data root is used as it is (``verify=True`` also checks its
    hash and raises :class:`DatasetCorrupt` on a mismatch). A missing file is downloaded
    with pooch, its hash checked, into the data root. When ``offline`` is true (default:
    the ``DL4H_OFFLINE`` environment variable) or the network fails, a missing file raises
    :class:`DatasetUnavailable` naming the file, the data root and the URL.
    """
    info = dataset_info(name)
    target = data_root() / info.path
    if target.is_file():
        if verify and info.known_hash:
            ok, actual = _hash_matches(target, info.known_hash)
            if not ok:
                raise DatasetCorrupt(
                    f"{info.name}: checksum mismatch for {target}: expected {info.known_hash}, "
                    f"got {actual}. Delete the file and fetch it again."
                )
        return target
    if offline is None:
        offline = os.environ.get(OFFLINE_ENV, "").lower() in {"1", "true", "yes"}
    if offline:
        raise _unavailable(info, target, f"offline mode: {OFFLINE_ENV} is set")
    return _download(info, target)


def _download(info: DatasetInfo, target: Path) -> Path:
    import pooch
    import requests

    target.parent.mkdir(parents=True, exist_ok=True)
    downloader = pooch.HTTPDownloader(progressbar=True, timeout=(10, 120))
    archive_name = Path(info.url.split("?")[0]).name
    try:
        fetched = pooch.retrieve(
            url=info.url,
            known_hash=None if info.member else info.known_hash,
            fname=archive_name if info.member else target.name,
            path=target.parent,
            downloader=downloader,
        )
    except ValueError as error:  # pooch: hash of the downloaded file does not match
        raise DatasetCorrupt(f"{info.name}: downloaded file failed its checksum: {error}") from error
    except (requests.exceptions.RequestException, OSError) as error:
        raise _unavailable(info, target, f"{type(error).__name__}: {error}") from error
    if info.member:
        try:
            with zipfile.ZipFile(fetched) as archive:
                with archive.open(info.member) as src, open(target, "wb") as dst:
                    dst.write(src.read())
        except (zipfile.BadZipFile, KeyError) as error:
            raise DatasetCorrupt(f"{info.name}: cannot extract {info.member} from {fetched}: {error}") from error
        if info.known_hash:
            ok, actual = _hash_matches(target, info.known_hash)
            if not ok:
                target.unlink()
                raise DatasetCorrupt(
                    f"{info.name}: {info.member} from {info.url} failed its checksum: expected "
                    f"{info.known_hash}, got {actual}."
                )
    return Path(fetched) if not info.member else target


# --------------------------------------------------------------------------- loaders
def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return split


def medmnist_info(flag: str) -> dict[str, Any]:
    """Public facts about a MedMNIST 2D flag: task, labels, channels, split sizes, files."""
    key = flag.strip().lower()
    if key not in MEDMNIST_INFO:
        dataset_info(key)  # raises UnknownDataset with suggestions
        raise UnknownDataset(f"{flag!r} is not a MedMNIST 2D flag")
    return MEDMNIST_INFO[key]


def load_medmnist(flag: str, split: str = "train", size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Load one official split of a MedMNIST 2D dataset as ``(images, labels)``.

    Images are ``uint8`` of shape ``(n, size, size)`` for grey-scale sets and
    ``(n, size, size, 3)`` for colour ones; labels are ``(n, k)`` integers exactly as
    published (``k = 1`` except for the multi-label ChestMNIST). The file's keys, shapes
    and split size are checked against the published facts; anything else raises
    :class:`DatasetCorrupt`.
    """
    info = medmnist_info(flag)
    _check_split(split)
    path = fetch(medmnist_name(flag, size))
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {f"{split}_images", f"{split}_labels"} - set(archive.files)
            if missing:
                raise DatasetCorrupt(f"{path} lacks the arrays {sorted(missing)}; found {archive.files}")
            images = archive[f"{split}_images"]
            labels = archive[f"{split}_labels"]
    except DatasetCorrupt:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise DatasetCorrupt(f"{path} is not a readable MedMNIST .npz file ({error}); "
                             "delete it and fetch it again") from error
    expected_n = info["n_samples"][split]
    grey = info["n_channels"] == 1
    expected_shape = (expected_n, size, size) if grey else (expected_n, size, size, 3)
    if images.shape != expected_shape or labels.shape[0] != expected_n or labels.ndim != 2:
        raise DatasetCorrupt(
            f"{path}: {split} images {images.shape} / labels {labels.shape} do not match the "
            f"published {split} split {expected_shape} / ({expected_n}, k)"
        )
    return images, labels


def load_medmnist_splits(
    flag: str, size: int = 28, n_train: int | None = None, seed: int = 42
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All three official splits of a MedMNIST flag as ``float32`` images in [0, 1].

    Images get a channel axis (see :func:`as_float_images`); labels stay as published.
    ``n_train`` keeps a class-stratified subset of the training split (profiles use it);
    validation and test are always complete, so results stay comparable.
    """
    splits = {}
    for split in SPLITS:
        images, labels = load_medmnist(flag, split, size)
        if split == "train" and n_train is not None:
            keep = stratified_subset(labels, n_train, seed=seed)
            images, labels = images[keep], labels[keep]
        splits[split] = (as_float_images(images), labels)
    return splits


def _read_lines(path: Path) -> list[str]:
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except UnicodeDecodeError as error:
        raise DatasetCorrupt(f"{path} is not a text file ({error})") from error
    if not lines:
        raise DatasetCorrupt(f"{path} is empty")
    return lines


def load_ucr(name: str = "ecg5000", split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load a UCR time-series split as ``(series, labels)``.

    ``series`` is ``float32`` of shape ``(n, length)`` and ``labels`` the integer classes of
    the file's first column. Offline, only the ECG5000 training split (500 beats) is
    usually cached; the test split (4500 beats) needs a download.
    """
    _check_split(split)
    if split == "val":
        raise ValueError("UCR datasets publish only train and test splits; make a validation "
                         "split from train with split_indices()")
    key = f"{name.strip().lower()}_{split}"
    path = fetch(key)
    rows = []
    for number, line in enumerate(_read_lines(path), start=1):
        try:
            rows.append([float(value) for value in line.replace(",", " ").split()])
        except ValueError as error:
            raise DatasetCorrupt(f"{path}, line {number}: not numeric ({error})") from error
    lengths = {len(row) for row in rows}
    if len(lengths) != 1:
        raise DatasetCorrupt(f"{path}: rows have different lengths {sorted(lengths)}")
    table = np.asarray(rows, dtype=np.float64)
    expected = UCR_SHAPES.get(key)
    if expected and (table.shape[0], table.shape[1] - 1) != expected:
        raise DatasetCorrupt(f"{path}: {table.shape[0]} series of length {table.shape[1] - 1}, "
                             f"expected {expected[0]} of length {expected[1]}")
    return table[:, 1:].astype(np.float32), table[:, 0].astype(np.int64)


def load_uci_sequences(name: str) -> pd.DataFrame:
    """Load a UCI molecular-biology sequence set (``splice`` or ``promoters``).

    Returns a DataFrame with columns ``label``, ``name`` and ``sequence`` (upper case,
    spaces removed). Every sequence must have the published length; ambiguity codes
    (e.g. ``N``, ``D``, ``R``, ``S`` in ``splice``) are kept as they are for the encoder to
    handle explicitly.
    """
    key = name.strip().lower()
    if key not in SEQUENCE_LENGTHS:
        dataset_info(key)
        raise UnknownDataset(f"{name!r} is not a UCI sequence set; use one of {sorted(SEQUENCE_LENGTHS)}")
    path = fetch(key)
    records = []
    for number, line in enumerate(_read_lines(path), start=1):
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3:
            raise DatasetCorrupt(f"{path}, line {number}: expected 'class, name, sequence', got {line!r}")
        label, seq_name, sequence = parts
        sequence = "".join(sequence.split()).upper()
        if len(sequence) != SEQUENCE_LENGTHS[key]:
            raise DatasetCorrupt(f"{path}, line {number}: sequence of length {len(sequence)}, "
                                 f"expected {SEQUENCE_LENGTHS[key]}")
        records.append((label, seq_name, sequence))
    return pd.DataFrame(records, columns=["label", "name", "sequence"])


# --------------------------------------------------------------------------- DICOM samples
def dicom_sample(name: str) -> Path:
    """Path of a real sample DICOM file shipped with ``pydicom`` or ``pydicom-data``.

    Never downloads: a name that is not installed raises :class:`DatasetUnavailable`
    saying which package provides the samples.
    """
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        raise DatasetUnavailable(
            f"DICOM sample {name!r} is not installed. The samples come with the packages "
            "pydicom and pydicom-data (pip install pydicom pydicom-data); check the name "
            "with helpers.data.list_dicom_samples()."
        )
    return Path(path)


def list_dicom_samples(pattern: str = "*.dcm") -> list[str]:
    """File names of the installed pydicom/pydicom-data samples matching ``pattern``.

    Only the installed folders are searched (pydicom's own listing would try to download
    its online index, which hangs or warns offline).
    """
    from pydicom.data import data_manager

    roots = [Path(data_manager.DATA_ROOT) / "test_files"]
    roots += [Path(source.data_path) for source in data_manager.external_data_sources().values()]
    return sorted({path.name for root in roots if root.is_dir() for path in root.rglob(pattern)})


# --------------------------------------------------------------------------- splits
def stratified_subset(labels: np.ndarray, n: int | None, seed: int = 42) -> np.ndarray:
    """Indices of a class-stratified random subset of size ``n`` (all indices if ``None``).

    Profiles use it to shrink training sets while keeping the class balance; the indices
    are sorted so the original order is kept.
    """
    labels = np.asarray(labels).reshape(len(labels), -1)[:, 0]
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    if n <= 0:
        raise ValueError(f"subset size must be positive, not {n}")
    from sklearn.model_selection import train_test_split

    index, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels,
                                random_state=seed)
    return np.sort(index)


def split_indices(
    labels: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    val_size: float = 0.15,
    test_size: float = 0.15,
    seed: int = 42,
) -> dict[str, np.ndarray]:
    """Split row indices into ``train``/``val``/``test``, stratified by label.

    With ``groups`` (e.g. patient IDs) every group lands in exactly one split
    (``StratifiedGroupKFold``), so no patient is seen in training and evaluation; the
    sizes are then approximate. The result is checked with :func:`check_no_group_leakage`.
    """
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    labels = np.asarray(labels).reshape(len(labels), -1)[:, 0]
    if not 0 < val_size < 1 or not 0 < test_size < 1 or val_size + test_size >= 1:
        raise ValueError("val_size and test_size must be in (0, 1) and sum to less than 1")
    index = np.arange(len(labels))
    if groups is None:
        rest, test = train_test_split(index, test_size=test_size, stratify=labels, random_state=seed)
        train, val = train_test_split(rest, test_size=val_size / (1 - test_size),
                                      stratify=labels[rest], random_state=seed)
        return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}

    groups = np.asarray(groups)
    if len(groups) != len(labels):
        raise ValueError(f"groups has {len(groups)} entries but labels has {len(labels)}")

    def hold_out(idx: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        folds = max(2, round(1 / fraction))
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        keep, held = next(splitter.split(idx, labels[idx], groups[idx]))
        return idx[keep], idx[held]

    rest, test = hold_out(index, test_size)
    train, val = hold_out(rest, val_size / (1 - test_size))
    splits = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    check_no_group_leakage(splits, groups)
    return splits


def check_no_group_leakage(splits: dict[str, np.ndarray], groups: np.ndarray) -> None:
    """Raise :class:`GroupLeakage` if any group appears in two of the ``splits``.

    ``splits`` maps split names to row indices; ``groups`` gives each row's group. The
    message names the splits and up to five of the shared groups.
    """
    groups = np.asarray(groups)
    names = list(splits)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            shared = np.intersect1d(groups[splits[first]], groups[splits[second]])
            if shared.size:
                raise GroupLeakage(
                    f"{shared.size} group(s) appear in both {first!r} and {second!r}, "
                    f"e.g. {shared[:5].tolist()}: the same patient would be trained on and evaluated on"
                )


# --------------------------------------------------------------------------- tf.data
def make_dataset(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 42,
    augment: Callable[..., Any] | None = None,
    cache: bool = True,
    prefetch: bool = True,
) -> Any:
    """Build a batched ``tf.data.Dataset`` from in-memory arrays.

    ``shuffle`` reshuffles every epoch with a fixed ``seed``. ``augment`` (e.g. a Keras
    ``Sequential`` of preprocessing layers) is applied to each *batch* of images with
    ``training=True``, after caching, so every epoch sees new augmentations. ``prefetch``
    overlaps input work with training.
    """
    import tensorflow as tf

    images = np.asarray(images)
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    tensors: Any = images if labels is None else (images, np.asarray(labels))
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment is not None:
        if labels is None:
            dataset = dataset.map(lambda x: augment(x, training=True),
                                  num_parallel_calls=tf.data.AUTOTUNE)
        else:
            dataset = dataset.map(lambda x, y: (augment(x, training=True), y),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset


def as_float_images(images: np.ndarray, channels: int | None = None) -> np.ndarray:
    """Scale ``uint8`` images to ``float32`` in [0, 1] and add a channel axis.

    Grey-scale ``(n, h, w)`` becomes ``(n, h, w, 1)``; ``channels=3`` repeats a single
    channel three times (for ImageNet backbones). Inputs that are not 3-D or 4-D raise
    ``ValueError``.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (n, h, w) or (n, h, w, c), got {images.shape}")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    out = images.astype(np.float32) / scale
    if channels is not None and channels != out.shape[-1]:
        if out.shape[-1] != 1:
            raise ValueError(f"cannot turn {out.shape[-1]} channels into {channels}")
        out = np.repeat(out, channels, axis=-1)
    return out


__all__: Sequence[str] = [
    "DATA_ENV", "OFFLINE_ENV", "SPLITS", "MEDMNIST_SIZES", "REGISTRY", "MEDMNIST_INFO",
    "DatasetError", "DatasetUnavailable", "DatasetCorrupt", "UnknownDataset", "GroupLeakage",
    "DatasetInfo", "data_root", "medmnist_name", "dataset_info", "local_path", "cached_datasets",
    "fetch", "medmnist_info", "load_medmnist", "load_medmnist_splits", "load_ucr", "load_uci_sequences", "dicom_sample",
    "list_dicom_samples", "stratified_subset", "split_indices", "check_no_group_leakage",
    "make_dataset", "as_float_images",
]
