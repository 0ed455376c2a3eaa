"""Datasets: one registry, checked downloads into the data root, loaders, splits, pipelines.

Data flows one way: the **data root** (``DL4H_DATA``, default ``<repo>/data``) holds the
files; :func:`fetch` puts a file there (download with pooch: hash check, cache, progress
bar) or finds it already cached and checks its checksum; the ``load_*`` functions parse and
*validate* it (dtype, shape, value range, label set, finiteness, the registry's row counts)
and return NumPy arrays (or a DataFrame for text sequences) with the official splits.

Nothing here ever reads another path, and nothing invents data: when a file is neither
cached nor downloadable the loaders raise :class:`DatasetUnavailable` within seconds,
naming the file, the data root and the URL to fetch by hand. Every other problem is a
:class:`DatasetError` too (:class:`DatasetCorrupt`, :class:`DatasetUnreadable`, ...) whose
message names the file and says what to do; no message ever advises discarding a file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import stat
import warnings
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
MEDMNIST3D_SIZES = (28, 64)  # the 3D sets are published at 28^3 and 64^3 only
REPO_ROOT = Path(__file__).resolve().parents[1]
# Cached files up to this size have their checksum checked by default (once per process
# and file version); larger ones only with fetch(..., verify=True). See fetch().
VERIFY_MAX_BYTES = 256 * 2**20

logger = logging.getLogger(__name__)


class DatasetError(Exception):
    """Base class of every data problem this module reports."""


class DatasetUnavailable(DatasetError):
    """The file is not in the data root and could not be downloaded (offline?)."""


class DatasetCorrupt(DatasetError):
    """The file exists but is unreadable, has the wrong layout or the wrong checksum."""


class DatasetUnreadable(DatasetError):
    """The data root or a file cannot be read: permissions, or a folder/file in the wrong place."""


class UnknownDataset(DatasetError, KeyError):
    """The name is not in the registry (the message suggests close names)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


class GroupLeakage(DatasetError, ValueError):
    """A group (e.g. a patient) appears in more than one split."""


@dataclass(frozen=True)
class AlternativeHash:
    """A checksum accepted besides the registered one, for a documented ``reason``.

    ``known_hash`` is in pooch's format (``"md5:..."``). Use it only for a copy whose
    difference is understood (e.g. the same rows in another order); the loaders' checks of
    shapes, labels and row counts still apply to it.
    """

    known_hash: str
    reason: str


@dataclass(frozen=True)
class DatasetInfo:
    """One registry entry: where a file comes from and how to credit it.

    ``path`` is relative to the data root. ``known_hash`` is ``"md5:..."`` or
    ``"sha256:..."`` (pooch's format). When ``member`` is set, ``url`` points at a zip
    archive and ``path`` is that member, extracted. ``also_accepted`` lists checksums of
    known, documented variants of the file (:class:`AlternativeHash`).
    """

    name: str
    path: str
    url: str
    known_hash: str | None
    licence: str
    citation: str
    description: str
    member: str | None = None
    also_accepted: tuple[AlternativeHash, ...] = ()
    #: why ``known_hash`` is ``None`` (every entry has a checksum or a stated reason)
    unverified_reason: str | None = None

    def __post_init__(self) -> None:
        if not self.known_hash and not self.unverified_reason:
            raise ValueError(
                f"registry entry {self.name!r} needs a checksum or the reason it has none"
            )


@dataclass(frozen=True)
class ChecksumCheck:
    """What checking a cached file's checksum found.

    ``status`` is ``"official"`` (the registered hash), ``"alternative"`` (a documented
    variant; ``note`` says why it is accepted) or ``"unchecked"`` (``note`` says why: no
    hash in the registry, or a file too large to hash by default).
    """

    name: str
    path: Path
    status: str
    actual: str | None
    note: str


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


def _load_medmnist_info(file: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(file).read_text()
    return json.loads(text)


# MedMNIST v3 (medmnist 3.0.2) INFO: task, labels, split sizes, official URLs and MD5s.
MEDMNIST_INFO: dict[str, Any] = _load_medmnist_info("medmnist_info.json")
MEDMNIST3D_INFO: dict[str, Any] = _load_medmnist_info("medmnist3d_info.json")


def _medmnist_entries() -> dict[str, DatasetInfo]:
    entries = {}
    for flag, info in {**MEDMNIST_INFO, **MEDMNIST3D_INFO}.items():
        citation = MEDMNIST_CITATION + (
            " " + _MEDMNIST_SOURCES[flag] if flag in _MEDMNIST_SOURCES else ""
        )
        volume = flag in MEDMNIST3D_INFO
        for size in MEDMNIST3D_SIZES if volume else MEDMNIST_SIZES:
            name = medmnist_name(flag, size)
            file = info["files"][str(size)]
            shape = f"{size}x{size}x{size} voxels" if volume else f"{size}x{size} px"
            entries[name] = DatasetInfo(
                name=name,
                path=f"medmnist/{name}.npz",
                url=file["url"],
                known_hash="md5:" + file["md5"],
                licence=info["license"],
                citation=citation,
                description=f"MedMNIST {flag} at {shape} ({info['task']}, "
                f"{len(info['label'])} classes, {info['n_channels']} channel(s)).",
                also_accepted=tuple(
                    AlternativeHash("md5:" + alt["md5"], alt["reason"])
                    for alt in file.get("also_accepted", ())
                ),
            )
    return entries


_UCR_CITATION = (
    "Dau, H. A. et al. The UCR time series archive. IEEE/CAA Journal of Automatica Sinica "
    "6(6), 1293-1305 (2019); Goldberger, A. L. et al. PhysioBank, PhysioToolkit, and "
    "PhysioNet. Circulation 101(23), e215-e220 (2000)."
)
_UCI_MB = "https://archive.ics.uci.edu/ml/machine-learning-databases/molecular-biology"

_PHYSIONET = "https://physionet.org/files/challenge-2012/1.0.0"
PHYSIONET2012_CITATION = (
    "Silva, I., Moody, G., Scott, D. J., Celi, L. A. & Mark, R. G. Predicting in-hospital "
    "mortality of ICU patients: the PhysioNet/Computing in Cardiology Challenge 2012. "
    "Computing in Cardiology 39, 245-248 (2012); Goldberger, A. L. et al. PhysioBank, "
    "PhysioToolkit, and PhysioNet. Circulation 101(23), e215-e220 (2000)."
)
_PHYSIONET_LICENCE = "Open Data Commons Attribution License v1.0 (ODC-By 1.0)"
# SHA-256 of the outcome files checked for this course: their sizes (79,219 / 79,149 /
# 79,191 bytes) equal the official ones and their rows match the challenge's description.
_OUTCOME_HASHES = {
    "a": "2613ea60ccda29f87571a7d6b09ad130858a8ccd66325bd073365925026883c2",
    "b": "1305f29734da374a809483229a99f33a9230aa8d4fa74b1a2d6ad788136423d5",
    "c": "0b32dcb7753c0f18f2f5fde498a28618b8879c5e527ce0dae8ad120dd7e205c9",
}


def _physionet2012_entries() -> dict[str, DatasetInfo]:
    entries = {}
    for part in "abc":
        entries[f"physionet2012_set_{part}"] = DatasetInfo(
            name=f"physionet2012_set_{part}",
            path=f"physionet2012/set-{part}.tar.gz",
            url=f"{_PHYSIONET}/set-{part}.tar.gz",
            known_hash=None,
            unverified_reason="PhysioNet publishes SHA-256 sums in SHA256SUMS.txt next to the "
            "archives, but the course's offline copy is the same per-stay files re-packed (so "
            "its checksum differs) and the official sums could not be read offline; the "
            "loader checks the archive instead: 4000 stay files, each in the challenge's "
            "Time,Parameter,Value format with known parameter names.",
            licence=_PHYSIONET_LICENCE,
            citation=PHYSIONET2012_CITATION,
            description=f"PhysioNet/CinC Challenge 2012 set {part.upper()}: 4000 ICU stays, one "
            "CSV per stay (first 48 h, 37 time-series variables, static descriptors at 00:00).",
        )
        entries[f"physionet2012_outcomes_{part}"] = DatasetInfo(
            name=f"physionet2012_outcomes_{part}",
            path=f"physionet2012/Outcomes-{part}.txt",
            url=f"{_PHYSIONET}/Outcomes-{part}.txt",
            known_hash="sha256:" + _OUTCOME_HASHES[part],
            licence=_PHYSIONET_LICENCE,
            citation=PHYSIONET2012_CITATION,
            description=f"Outcomes of set {part.upper()}: RecordID, SAPS-I, SOFA, "
            "Length_of_stay, Survival, In-hospital_death.",
        )
    entries["physionet2012_raindrop_splits"] = DatasetInfo(
        name="physionet2012_raindrop_splits",
        path="physionet2012/raindrop_splits.csv",
        url="https://github.com/mims-harvard/Raindrop",
        known_hash="sha256:36427755057d0a8335ea5b20fa3f5aa1ded5f0178dc39b6d3f018e7120c98bc1",
        licence="MIT (Raindrop repository); the stays themselves are ODC-By 1.0",
        citation="Zhang, X., Zeman, M., Tsiligkaridis, T. & Zitnik, M. Graph-guided network "
        "for irregularly sampled multivariate time series. ICLR (2022).",
        description="The five fixed 80/10/10 splits of the 11,988 non-empty PhysioNet 2012 "
        "stays used by Raindrop and the papers that compare with it, mapped from the "
        "repository's index files (P12data/splits/phy12_split*.npy) to RecordIDs: "
        "RecordID,In-hospital_death,split1..split5. Not a file on that page: build it from "
        "the split files there, or ask whoever provided the data root.",
    )
    return entries


_DEEPSURV = "https://raw.githubusercontent.com/jaredleekatzman/DeepSurv/master/experiments/data"
DEEPSURV_CITATION = (
    "Katzman, J. L. et al. DeepSurv: personalized treatment recommender system using a Cox "
    "proportional hazards deep neural network. BMC Medical Research Methodology 18, 24 (2018)."
)
# name -> (file in the DeepSurv repository, SHA-256 of the copy checked for this course
# (train/test sizes and covariate counts match the paper's Table 1) or None, source study)
_DEEPSURV_FILES = {
    "support": (
        "support/support_train_test.h5",
        "e398f49930e4efc4ecd675a72ac547f0d1ae25ccf13f6a1024cded12ea88a83e",
        "SUPPORT (Knaus et al., Annals of Internal Medicine 1995; Vanderbilt Biostatistics "
        "public data)",
    ),
    "gbsg": (
        "gbsg/gbsg_cancer_train_test.h5",
        "bd455f4395322a8b23040c15cedbef00ad51a447d02c95f1f1d686a6b196484b",
        "Rotterdam tumour bank (train) and German Breast Cancer Study Group 2 (test); "
        "Foekens et al. 2000, Schumacher et al. 1994 (R packages survival / TH.data)",
    ),
    "whas": (
        "whas/whas_train_test.h5",
        "2ed86f073fdbe34be10f7e485eeaf67b61004521390c46b9a18aa9b82d5e8f9c",
        "Worcester Heart Attack Study (Hosmer, Lemeshow & May, Applied Survival Analysis, "
        "2nd ed., Wiley 2008)",
    ),
    "metabric": (
        "metabric/metabric_IHC4_clinical_train_test.h5",
        None,
        "METABRIC (Curtis et al., Nature 2012)",
    ),
}


def _deepsurv_entries() -> dict[str, DatasetInfo]:
    entries = {}
    for cohort, (file, sha256, source) in _DEEPSURV_FILES.items():
        name = f"deepsurv_{cohort}"
        entries[name] = DatasetInfo(
            name=name,
            path=f"survival/{Path(file).name}",
            url=f"{_DEEPSURV}/{file}",
            known_hash=f"sha256:{sha256}" if sha256 else None,
            unverified_reason=None
            if sha256
            else "The DeepSurv repository publishes no checksums and this cohort is not in the "
            "course's offline data, so no copy could be checked; the loader checks its "
            "train/test groups, shapes, finite times and 0/1 events instead.",
            licence="as the source study's data (public research data; cite the study)",
            citation=f"{DEEPSURV_CITATION} Data: {source}.",
            description=f"DeepSurv's {cohort} cohort: HDF5 groups train and test, each with x "
            "(covariates), t (time) and e (1 event, 0 censored).",
        )
    return entries


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
        known_hash=None,
        unverified_reason="No checksum is published for the UCR archive's files and the test "
        "split is not in the course's offline data, so none could be verified; the loader "
        "checks its shape (4500 x 140), finiteness and classes instead.",
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
    **_physionet2012_entries(),
    **_deepsurv_entries(),
    "msd_hippocampus": DatasetInfo(
        name="msd_hippocampus",
        path="msd/Task04_Hippocampus.tar",
        # The Decathlon's own download page links a Google Drive folder; this is the public
        # mirror MONAI's DecathlonDataset downloads, with MONAI's MD5 of the archive.
        url="https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar",
        known_hash="md5:9d24dba78a72977dbd1d2e110310f31b",
        licence="CC BY-SA 4.0 (Medical Segmentation Decathlon; Vanderbilt University Medical Center)",
        citation="Simpson, A. L. et al. A large annotated medical image dataset for the "
        "development and evaluation of segmentation algorithms. arXiv:1902.09063 (2019); "
        "Antonelli, M. et al. The Medical Segmentation Decathlon. Nature Communications 13, "
        "4128 (2022).",
        description="Medical Segmentation Decathlon Task 04: 260 T1-weighted hippocampus MRI "
        "volumes with labels 0 background, 1 anterior, 2 posterior (NIfTI), extracted under "
        "msd/Task04_Hippocampus/{imagesTr,labelsTr}.",
    ),
}

# What each text dataset must look like; the loaders check it (the published descriptions).
UCR_SHAPES = {"ecg5000_train": (500, 140), "ecg5000_test": (4500, 140)}
UCR_CLASSES = {"ecg5000_train": (1, 2, 3, 4, 5), "ecg5000_test": (1, 2, 3, 4, 5)}
SEQUENCE_LENGTHS = {"splice": 60, "promoters": 57}
SEQUENCE_ROWS = {"splice": 3190, "promoters": 106}
SEQUENCE_CLASSES = {"splice": ("EI", "IE", "N"), "promoters": ("+", "-")}
# IUPAC nucleotide codes: the bases and the ambiguity codes (splice uses D, N, R and S).
DNA_CODES = frozenset("ACGTRYSWKMBDHVN")


# --------------------------------------------------------------------------- data root
def data_root(data_home: str | os.PathLike[str] | None = None) -> Path:
    """Return the data root: ``data_home`` if given, else ``$DL4H_DATA``, else ``<repo>/data``.

    The same order as scikit-learn's ``data_home``: the argument, then the environment
    variable, then the default. A relative path is taken from the repository root (not
    from the current directory, which differs between notebooks, scripts and tests). The
    folder need not exist yet; fetching creates the sub-folders it needs.
    """
    value = data_home if data_home is not None else os.environ.get(DATA_ENV)
    root = Path(value).expanduser() if value else Path("data")
    if not root.is_absolute():
        root = REPO_ROOT / root
    return root.resolve()


CACHE_ENV = "DL4H_CACHE"


def cache_dir(kind: str, data_home: str | os.PathLike[str] | None = None) -> Path:
    """Folder for derived caches of one ``kind`` (parsed tables, trained models), created.

    Caches are keyed by their inputs and safe to delete. They live in ``$DL4H_CACHE/<kind>``
    when that variable is set, else in ``<data root>/cache/<kind>``; when the data root is
    read-only (a shared copy, as in CI) they go to ``<repo>/build/cache/<kind>`` instead, so
    a read-only data root never stops a loader.
    """
    if not kind or not isinstance(kind, str) or "/" in kind or kind.startswith("."):
        raise ValueError(f"cache kind must be a plain folder name, not {kind!r}")
    configured = os.environ.get(CACHE_ENV)
    candidates = (
        [Path(configured).expanduser() / kind]
        if configured
        else [data_root(data_home) / "cache" / kind, REPO_ROOT / "build" / "cache" / kind]
    )
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    raise DatasetUnreadable(
        f"no writable cache folder for {kind!r}: tried {', '.join(map(str, candidates))}. "
        f"Set {CACHE_ENV} to a writable folder."
    )


FIXTURE_ENV = "DL4H_TEST_FIXTURES"
FIXTURE_SUFFIX = ".dl4h-test-fixture.json"


def fixture_marker(path: str | os.PathLike[str]) -> Path:
    """The marker file that declares ``path`` a test fixture (it lies beside the file).

    The gpu-path tests stand in for files the ``gpu`` profile would download (e.g. real
    28-pixel films upsampled and saved under the 224-pixel name) and put this JSON marker
    beside each one. :func:`fetch` refuses a marked file unless ``DL4H_TEST_FIXTURES=1``, so
    no loader can mistake a fixture for the real data outside those tests.
    """
    path = Path(path)
    return path.with_name(path.name + FIXTURE_SUFFIX)


def fixtures_allowed() -> bool:
    """True when ``DL4H_TEST_FIXTURES`` lets :func:`fetch` return marked test fixtures."""
    return os.environ.get(FIXTURE_ENV, "").strip().lower() in {"1", "true", "yes"}


def _fixture_description(marker: Path) -> str:
    try:
        return str(json.loads(marker.read_text()).get("description", "no description"))
    except (OSError, ValueError, AttributeError) as error:
        return f"unreadable marker: {type(error).__name__}"


def is_test_fixture(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has a test-fixture marker beside it (see :func:`fixture_marker`)."""
    return fixture_marker(path).is_file()


def offline() -> bool:
    """True when ``DL4H_OFFLINE`` forbids downloads (datasets and model weights alike)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes"}


_offline_from_env = offline  # fetch() has an argument of the same name


def unverified_entries() -> dict[str, str]:
    """Registry entries without a checksum, with the reason each has none."""
    return {
        name: info.unverified_reason or "" for name, info in REGISTRY.items() if not info.known_hash
    }


def dataset_info(name: str) -> DatasetInfo:
    """Return the registry entry for ``name`` or raise :class:`UnknownDataset`.

    The error lists the closest registered names, so a typo is a one-line fix.
    """
    if not isinstance(name, str):
        raise UnknownDataset(f"dataset names are strings such as 'pneumoniamnist', not {name!r}")
    key = name.strip().lower()
    if key in REGISTRY:
        return REGISTRY[key]
    close = difflib.get_close_matches(key, REGISTRY, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownDataset(
        f"unknown dataset {name!r}.{hint} Registered: MedMNIST 2D flags "
        f"({', '.join(MEDMNIST_INFO)}) with optional _64/_128/_224, MedMNIST 3D flags "
        f"({', '.join(MEDMNIST3D_INFO)}) with optional _64, ecg5000_train, ecg5000_test, "
        "splice, promoters, physionet2012_set_a/b/c, physionet2012_outcomes_a/b/c, "
        "physionet2012_raindrop_splits, "
        f"{', '.join('deepsurv_' + c for c in _DEEPSURV_FILES)}, msd_hippocampus."
    )


def local_path(name: str, data_home: str | os.PathLike[str] | None = None) -> Path:
    """Where ``name`` lives (or would live) under the data root."""
    return data_root(data_home) / dataset_info(name).path


def cached_datasets(data_home: str | os.PathLike[str] | None = None) -> list[str]:
    """Registry names whose files are present under the data root."""
    root = data_root(data_home)
    return [name for name, info in REGISTRY.items() if (root / info.path).is_file()]


# --------------------------------------------------------------------------- fetching
_CHECKED: dict[tuple[Any, ...], ChecksumCheck] = {}  # file version -> verdict, this process
_LAST_CHECK: dict[str, ChecksumCheck] = {}  # path -> the latest verdict


def _keep_and_refetch(info: DatasetInfo, target: Path) -> str:
    """The advice for a bad cached file: keep it, and download a fresh copy only if online."""
    return (
        f"Keep the file: it may be the only copy. Move it aside (e.g. rename it to "
        f"{target.name}.suspect) or keep a backup; then, only if you are online, download a "
        f"fresh copy from {info.url} (helpers.data.fetch({info.name!r}) does it once the file "
        "is moved aside). Offline, ask whoever provided the data root for a good copy."
    )


def _digests(path: Path, algorithms: set[str], info: DatasetInfo) -> dict[str, str]:
    digests = {algorithm: hashlib.new(algorithm) for algorithm in algorithms}
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                for digest in digests.values():
                    digest.update(chunk)
    except PermissionError as error:
        raise _unreadable(info, path, error) from error
    except OSError as error:
        raise DatasetCorrupt(
            f"{info.name}: reading {path} failed ({error}). " + _keep_and_refetch(info, path)
        ) from error
    return {algorithm: digest.hexdigest() for algorithm, digest in digests.items()}


def _split_hash(known_hash: str) -> tuple[str, str]:
    algorithm, _, value = known_hash.rpartition(":")
    return (algorithm or "sha256").lower(), value.lower()  # pooch: no prefix means SHA-256


def _hash_matches(path: Path, known_hash: str, info: DatasetInfo) -> tuple[bool, str]:
    algorithm, expected = _split_hash(known_hash)
    actual = _digests(path, {algorithm}, info)[algorithm]
    return actual == expected, f"{algorithm}:{actual}"


def _unreadable(info: DatasetInfo, path: Path, error: BaseException) -> DatasetUnreadable:
    return DatasetUnreadable(
        f"{info.name}: cannot read {path} ({type(error).__name__}: {error}). Give your user "
        f"read permission on it (e.g. chmod u+r), or copy the data root somewhere readable "
        f"and set {DATA_ENV} to that folder."
    )


def _check_root(root: Path) -> None:
    try:
        is_folder = root.is_dir()
        exists = is_folder or root.exists()
    except OSError as error:
        raise DatasetUnreadable(
            f"cannot look at the data root {root} ({error}); set {DATA_ENV} "
            "to a folder you can read"
        ) from error
    if exists and not is_folder:
        raise DatasetUnreadable(
            f"the data root {root} is a file, not a folder. Set {DATA_ENV} to the folder that "
            "holds medmnist/, ucr/, uci/ (or unset it to use <repo>/data)."
        )


def _stat_target(info: DatasetInfo, target: Path) -> os.stat_result | None:
    """``os.stat`` of a cached file, ``None`` when absent; a folder or no access raises."""
    try:
        result = target.stat()
    except FileNotFoundError:
        return None
    except NotADirectoryError as error:
        blocker = next(
            (p for p in reversed(target.parents) if p.exists() and not p.is_dir()), target.parent
        )
        raise DatasetUnreadable(
            f"{info.name}: cannot look for {target}: {blocker} is a file where a folder is "
            "expected. Move that file aside (keep it) or set "
            f"{DATA_ENV} to another data root."
        ) from error
    except OSError as error:  # permission denied, a symlink loop, a name too long, ...
        raise _unreadable(info, target, error) from error
    if stat.S_ISDIR(result.st_mode):
        raise DatasetUnreadable(
            f"{info.name}: {target} is a folder, but the registry expects the file there. "
            "Move the folder aside (keep what it holds) and put the file at that path, or call "
            f"helpers.data.fetch({info.name!r}) online."
        )
    if not stat.S_ISREG(result.st_mode):
        raise DatasetUnreadable(
            f"{info.name}: {target} is not a regular file; put the downloaded file at that path."
        )
    if not os.access(target, os.R_OK):
        raise _unreadable(info, target, PermissionError("permission denied"))
    return result


def _version_key(
    path: Path, found: os.stat_result, hashes: tuple[str | None, ...]
) -> tuple[Any, ...]:
    """What identifies one version of a file for the checksum memo (no marker files needed)."""
    return (
        str(path),
        found.st_size,
        found.st_mtime_ns,
        found.st_ctime_ns,
        found.st_ino,
        found.st_dev,
        hashes,
    )


def _record(check: ChecksumCheck, key: tuple[Any, ...] | None = None) -> ChecksumCheck:
    if key is not None:
        _CHECKED[key] = check
    _LAST_CHECK[str(check.path)] = check
    return check


def _verify(info: DatasetInfo, target: Path, found: os.stat_result, force: bool) -> ChecksumCheck:
    """Check a cached file's checksum (see :func:`fetch`); raise on a real mismatch."""
    accepted = [(info.known_hash, "official", "the registered checksum")] if info.known_hash else []
    accepted += [(alt.known_hash, "alternative", alt.reason) for alt in info.also_accepted]
    if not accepted:
        return _record(
            ChecksumCheck(
                info.name,
                target,
                "unchecked",
                None,
                "the registry holds no checksum for this file; the "
                "loader's checks of shape, labels and row count apply",
            )
        )
    key = _version_key(target, found, tuple(h for h, _, _ in accepted))
    if not force and key in _CHECKED:
        return _record(_CHECKED[key])
    if not force and found.st_size > VERIFY_MAX_BYTES:
        note = (
            f"{found.st_size / 2**20:.0f} MiB is more than VERIFY_MAX_BYTES "
            f"({VERIFY_MAX_BYTES / 2**20:.0f} MiB), so the checksum is not checked by "
            f"default; call helpers.data.fetch({info.name!r}, verify=True) to check it"
        )
        logger.info("%s: %s", info.name, note)
        return _record(ChecksumCheck(info.name, target, "unchecked", None, note), key)
    wanted = [(*_split_hash(h), status, reason) for h, status, reason in accepted]
    actual = _digests(target, {algorithm for algorithm, *_ in wanted}, info)
    for algorithm, value, status, reason in wanted:
        if actual[algorithm] == value:
            if status == "alternative":
                logger.info(
                    "%s: %s has checksum %s:%s, not the registered %s; accepted because it is %s",
                    info.name,
                    target,
                    algorithm,
                    value,
                    info.known_hash,
                    reason,
                )
            return _record(
                ChecksumCheck(info.name, target, status, f"{algorithm}:{value}", reason), key
            )
    expected = info.known_hash or accepted[0][0]
    also = "".join(
        f"; also accepted: {h} ({reason})"
        for h, status, reason in accepted
        if status == "alternative"
    )
    got = ", ".join(f"{algorithm}:{digest}" for algorithm, digest in sorted(actual.items()))
    raise DatasetCorrupt(
        f"{info.name}: checksum mismatch for {target}: expected {expected}{also}; got {got}. "
        "The file is not the registered one (changed, truncated or another version). "
        + _keep_and_refetch(info, target)
    )


def checksum_status(name: str) -> ChecksumCheck | None:
    """What the latest checksum check of ``name``'s cached file found (``None``: not yet).

    ``fetch`` (and so every loader) records it: ``status`` ``"official"``, ``"alternative"``
    (``note`` gives the documented reason the variant is accepted) or ``"unchecked"``.
    """
    return _LAST_CHECK.get(str(local_path(name)))


def _unavailable(info: DatasetInfo, target: Path, cause: str, root: Path) -> DatasetUnavailable:
    how = (
        f"download {info.url}, extract {info.member} from it"
        if info.member
        else f"download {info.url}"
    )
    return DatasetUnavailable(
        f"{info.name}: {target} is not cached and could not be downloaded ({cause}). "
        f"Data root: {root} (set {DATA_ENV} or pass data_home= to use another folder). "
        f"To fix it, go online and call helpers.data.fetch({info.name!r}), or {how} by hand "
        f"and save it as {target}."
    )


def fetch(
    name: str,
    *,
    verify: bool | None = None,
    offline: bool | None = None,
    data_home: str | os.PathLike[str] | None = None,
) -> Path:
    """Return the local path of dataset file ``name``, downloading it if needed.

    A file already under the data root has its checksum checked against the registry:
    by default (``verify=None``) when it is at most :data:`VERIFY_MAX_BYTES`, once per
    process and file version (path, size, modification time); ``verify=True`` always
    hashes it, ``verify=False`` never. A documented variant (``also_accepted`` in the
    registry) is accepted and its reason logged and kept (:func:`checksum_status`); any
    other mismatch raises :class:`DatasetCorrupt` naming the file and both hashes. A
    missing file is downloaded with pooch, its hash checked, into the data root. When
    ``offline`` is true (default: the ``DL4H_OFFLINE`` environment variable) or the
    network fails, a missing file raises :class:`DatasetUnavailable` naming the file, the
    data root and the URL. A data root or file that cannot be read raises
    :class:`DatasetUnreadable`. ``data_home`` overrides the data root (:func:`data_root`).
    """
    info = dataset_info(name)
    root = data_root(data_home)
    _check_root(root)
    target = root / info.path
    found = _stat_target(info, target)
    if found is not None and is_test_fixture(target):
        what = _fixture_description(fixture_marker(target))
        if not fixtures_allowed():
            raise DatasetCorrupt(
                f"{info.name}: {target} is a TEST FIXTURE, not the real data "
                f"({fixture_marker(target).name} beside it says: {what}). Fixtures are read "
                f"only by the gpu-path tests, with {FIXTURE_ENV}=1. Move the file and its marker "
                f"out of the data root (keep them if a test needs them) and call "
                f"helpers.data.fetch({info.name!r}) online for the real file."
            )
        warnings.warn(
            f"{info.name}: using the test fixture {target} ({what}); no result computed "
            "from it means anything about the real data",
            stacklevel=2,
        )
        return target
    if found is not None:
        if verify is not False:
            _verify(info, target, found, force=bool(verify))
        return target
    if offline is None:
        offline = _offline_from_env()
    if offline:
        raise _unavailable(info, target, f"offline mode: {OFFLINE_ENV} is set", root)
    path = _download(info, target)
    if info.known_hash:
        hashes = (info.known_hash, *(alt.known_hash for alt in info.also_accepted))
        _record(
            ChecksumCheck(info.name, path, "official", info.known_hash, "checked when downloaded"),
            _version_key(path, path.stat(), hashes),
        )
    return path


def _download(info: DatasetInfo, target: Path) -> Path:
    import pooch
    import requests

    downloader = pooch.HTTPDownloader(progressbar=True, timeout=(10, 120))
    archive_name = Path(info.url.split("?")[0]).name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fetched = pooch.retrieve(
            url=info.url,
            known_hash=None if info.member else info.known_hash,
            fname=archive_name if info.member else target.name,
            path=target.parent,
            downloader=downloader,
        )
    except ValueError as error:  # pooch: hash of the downloaded file does not match
        raise DatasetCorrupt(
            f"{info.name}: downloaded file failed its checksum: {error}"
        ) from error
    except (requests.exceptions.RequestException, OSError) as error:
        raise _unavailable(
            info,
            target,
            f"{type(error).__name__}: {error}",
            target.parents[len(Path(info.path).parts) - 1],
        ) from error
    if info.member:
        try:
            with zipfile.ZipFile(fetched) as archive:
                with archive.open(info.member) as src, open(target, "wb") as dst:
                    dst.write(src.read())
        except (zipfile.BadZipFile, KeyError) as error:
            raise DatasetCorrupt(
                f"{info.name}: cannot extract {info.member} from {fetched}: {error}"
            ) from error
        if info.known_hash:
            ok, actual = _hash_matches(target, info.known_hash, info)
            if not ok:
                target.unlink()  # just extracted from the archive, which is kept
                raise DatasetCorrupt(
                    f"{info.name}: {info.member} from {info.url} failed its checksum: expected "
                    f"{info.known_hash}, got {actual}. The archive is kept at {fetched}."
                )
    return Path(fetched) if not info.member else target


# --------------------------------------------------------------------------- loaders
def _check_split(split: str) -> str:
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return split


def medmnist_info(flag: str) -> dict[str, Any]:
    """Public facts about a MedMNIST flag (2D or 3D): task, labels, channels, split sizes, files."""
    if not isinstance(flag, str):
        raise UnknownDataset(f"MedMNIST flags are strings such as 'pneumoniamnist', not {flag!r}")
    key = flag.strip().lower()
    if key in MEDMNIST3D_INFO:
        return MEDMNIST3D_INFO[key]
    if key not in MEDMNIST_INFO:
        dataset_info(key)  # raises UnknownDataset with suggestions
        raise UnknownDataset(f"{flag!r} is not a MedMNIST flag")
    return MEDMNIST_INFO[key]


def _sample(values: np.ndarray, n: int = 5) -> list[Any]:
    return np.unique(values)[:n].tolist()


def _check_medmnist_arrays(
    path: Path,
    flag: str,
    split: str,
    size: int,
    images: np.ndarray,
    labels: np.ndarray,
    advice: str,
    fixture: bool = False,
) -> None:
    """Raise :class:`DatasetCorrupt` unless the arrays match MedMNIST's published layout.

    A test fixture (``fixture=True``, see :func:`fixture_marker`) may hold a subset of the
    split: at least one and at most the published number of samples; all else is checked.
    """
    info = medmnist_info(flag)
    n = info["n_samples"][split]
    if fixture and images.ndim >= 1 and 0 < images.shape[0] <= n:
        n = images.shape[0]
    n_classes = len(info["label"])
    multi_label = info["task"].startswith("multi-label")
    grey = info["n_channels"] == 1
    volume = flag in MEDMNIST3D_INFO
    if volume:
        expected_shape: tuple[int, ...] = (n, size, size, size)
    else:
        expected_shape = (n, size, size) if grey else (n, size, size, 3)
    k = n_classes if multi_label else 1

    def corrupt(problem: str) -> DatasetCorrupt:
        return DatasetCorrupt(f"{path}: {problem}. This is not the official {flag} file. {advice}")

    if volume and images.ndim != 4:
        raise corrupt(
            f"{split}_images have shape {images.shape} ({images.ndim - 1}D samples), but "
            f"{flag} is a 3D set whose samples are volumes: expected {expected_shape} "
            "(n, depth, height, width)"
        )

    if images.dtype != np.uint8:
        raise corrupt(
            f"{split}_images are {images.dtype}, but MedMNIST stores pixels as uint8 "
            "0-255 (other types would not be rescaled to [0, 1] correctly)"
        )
    if images.shape != expected_shape or labels.ndim != 2 or labels.shape != (n, k):
        raise corrupt(
            f"{split} images {images.shape} / labels {labels.shape} do not match the "
            f"published {split} split {expected_shape} / {(n, k)}"
        )
    if labels.dtype.kind not in "iu":
        raise corrupt(
            f"{split}_labels are {labels.dtype}, but MedMNIST labels are integers "
            "(uint8 class indices)"
        )
    allowed = 1 if multi_label else n_classes - 1
    bad = labels[(labels < 0) | (labels > allowed)]
    if bad.size:
        what = "0/1 per label" if multi_label else f"class indices 0..{allowed}"
        raise corrupt(
            f"{split}_labels hold {bad.size} value(s) outside {what}, e.g. "
            f"{_sample(bad)} ({flag} classes: {info['label']})"
        )


def load_medmnist(
    flag: str,
    split: str = "train",
    size: int = 28,
    *,
    data_home: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one official split of a MedMNIST dataset (2D or 3D) as ``(images, labels)``.

    Images are ``uint8`` of shape ``(n, size, size)`` for grey-scale 2D sets,
    ``(n, size, size, 3)`` for colour ones and ``(n, size, size, size)`` (depth, height,
    width) for the 3D sets (sizes 28 and 64 only); labels are ``(n, k)`` integers exactly as
    published (``k = 1`` except for the multi-label ChestMNIST). The file's checksum (see
    :func:`fetch`), keys, dtypes, shapes, split size and label values (the flag's classes)
    are checked against the published facts; anything else raises :class:`DatasetCorrupt`.
    """
    medmnist_info(flag)  # an unknown flag raises UnknownDataset with suggestions
    key = flag.strip().lower()
    _check_split(split)
    if key in MEDMNIST3D_INFO and size not in MEDMNIST3D_SIZES:
        raise ValueError(
            f"{key} is a 3D set, published at sizes {MEDMNIST3D_SIZES} only, not {size!r}"
        )
    entry = dataset_info(medmnist_name(key, size))
    path = fetch(entry.name, data_home=data_home)
    advice = _keep_and_refetch(entry, path)
    try:
        archive = np.load(path, allow_pickle=False)
    except PermissionError as error:
        raise _unreadable(entry, path, error) from error
    except Exception as error:  # zip, pickle, header or I/O problems: all mean a bad file
        raise DatasetCorrupt(
            f"{path} is not a readable MedMNIST .npz file "
            f"({type(error).__name__}: {error}). {advice}"
        ) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetCorrupt(
            f"{path} holds a single array, not a MedMNIST .npz archive with "
            f"{split}_images and {split}_labels. {advice}"
        )
    with archive:
        missing = {f"{split}_images", f"{split}_labels"} - set(archive.files)
        if missing:
            raise DatasetCorrupt(
                f"{path} lacks the arrays {sorted(missing)}; found {archive.files}. {advice}"
            )
        try:
            images = archive[f"{split}_images"]
            labels = archive[f"{split}_labels"]
        except Exception as error:  # truncated/garbled member, object arrays, bad header
            raise DatasetCorrupt(
                f"{path} is not a readable MedMNIST .npz file "
                f"({type(error).__name__}: {error}). {advice}"
            ) from error
    _check_medmnist_arrays(
        path, key, split, size, images, labels, advice, fixture=is_test_fixture(path)
    )
    return images, labels


def load_medmnist_splits(
    flag: str,
    size: int = 28,
    n_train: int | None = None,
    seed: int = 42,
    *,
    data_home: str | os.PathLike[str] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All three official splits of a MedMNIST flag as ``float32`` images in [0, 1].

    Images get a channel axis: ``(n, h, w, c)`` for the 2D sets (see :func:`as_float_images`)
    and ``(n, d, h, w, 1)`` for the 3D sets; labels stay as published. ``n_train`` keeps a
    class-stratified subset of the training split (profiles use it); validation and test are
    always complete, so results stay comparable.
    """
    volume = flag.strip().lower() in MEDMNIST3D_INFO if isinstance(flag, str) else False
    splits = {}
    for split in SPLITS:
        images, labels = load_medmnist(flag, split, size, data_home=data_home)
        if split == "train" and n_train is not None:
            keep = stratified_subset(labels, n_train, seed=seed)
            images, labels = images[keep], labels[keep]
        if volume:  # (n, d, h, w) must not be read as 2D images with w channels
            splits[split] = ((images.astype(np.float32) / 255.0)[..., np.newaxis], labels)
        else:
            splits[split] = (as_float_images(images), labels)
    return splits


def _read_lines(path: Path, info: DatasetInfo) -> list[tuple[int, str]]:
    """Non-blank lines of a UTF-8 text file with their 1-based line numbers.

    A UTF-8 byte-order mark at the very start is dropped (it is not part of the first
    value); anything that is not UTF-8 text raises :class:`DatasetCorrupt`.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except PermissionError as error:
        raise _unreadable(info, path, error) from error
    except UnicodeDecodeError as error:
        raise DatasetCorrupt(
            f"{path} is not a UTF-8 text file ({error}). " + _keep_and_refetch(info, path)
        ) from error
    lines = [
        (number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]
    if not lines:
        raise DatasetCorrupt(f"{path} is empty. " + _keep_and_refetch(info, path))
    return lines


def load_ucr(
    name: str = "ecg5000", split: str = "train", *, data_home: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load a UCR time-series split as ``(series, labels)``.

    ``series`` is ``float32`` of shape ``(n, length)`` and ``labels`` the integer classes of
    the file's first column. Every value must be a finite number (no NaN or inf), every
    row the same length, every label an integer of the dataset's classes, and the shape
    the registry's (ECG5000: 500 or 4500 beats of 140 samples, classes 1-5); anything else
    raises :class:`DatasetCorrupt`. Offline, only the ECG5000 training split is usually
    cached; the test split (4500 beats) needs a download.
    """
    _check_split(split)
    if split == "val":
        raise ValueError(
            "UCR datasets publish only train and test splits; make a validation "
            "split from train with split_indices()"
        )
    if not isinstance(name, str):
        raise UnknownDataset(f"UCR dataset names are strings such as 'ecg5000', not {name!r}")
    key = f"{name.strip().lower()}_{split}"
    info = dataset_info(key)
    path = fetch(key, data_home=data_home)
    advice = _keep_and_refetch(info, path)
    rows, numbers = [], []
    for number, line in _read_lines(path, info):
        try:
            rows.append([float(value) for value in line.replace(",", " ").split()])
        except ValueError as error:
            raise DatasetCorrupt(
                f"{path}, line {number}: not numeric ({error}). {advice}"
            ) from error
        numbers.append(number)
        if len(rows[-1]) != len(rows[0]):
            raise DatasetCorrupt(
                f"{path}: rows have different lengths: line {number} has "
                f"{len(rows[-1])} values, line {numbers[0]} has {len(rows[0])}. "
                f"{advice}"
            )
    table = np.asarray(rows, dtype=np.float64)
    if table.shape[1] < 2:
        raise DatasetCorrupt(f"{path}: each row needs a class and at least one value. {advice}")
    bad_rows = np.flatnonzero(~np.isfinite(table).all(axis=1))
    if bad_rows.size:
        first = bad_rows[0]
        raise DatasetCorrupt(
            f"{path}, line {numbers[first]}: NaN or infinite value(s) "
            f"({bad_rows.size} row(s) in all); {info.name} has no missing "
            f"values. {advice}"
        )
    labels = table[:, 0]
    fractional = np.flatnonzero(labels != np.round(labels))
    if fractional.size:
        first = fractional[0]
        raise DatasetCorrupt(
            f"{path}, line {numbers[first]}: class label {labels[first]:g} is "
            f"not an integer. {advice}"
        )
    classes = UCR_CLASSES.get(key)
    if classes is not None:
        unknown = np.flatnonzero(~np.isin(labels, classes))
        if unknown.size:
            first = unknown[0]
            raise DatasetCorrupt(
                f"{path}, line {numbers[first]}: class {labels[first]:g} is "
                f"not one of {info.name}'s classes {list(classes)} "
                f"({unknown.size} row(s) in all). {advice}"
            )
    expected = UCR_SHAPES.get(key)
    if expected and is_test_fixture(path) and 0 < table.shape[0] <= expected[0]:
        expected = (table.shape[0], expected[1])  # a test fixture may hold fewer series
    if expected and (table.shape[0], table.shape[1] - 1) != expected:
        raise DatasetCorrupt(
            f"{path}: {table.shape[0]} series of length {table.shape[1] - 1}, "
            f"expected {expected[0]} of length {expected[1]}. {advice}"
        )
    huge = np.flatnonzero((np.abs(table[:, 1:]) > np.finfo(np.float32).max).any(axis=1))
    if huge.size:
        raise DatasetCorrupt(
            f"{path}, line {numbers[huge[0]]}: values too large for float32 "
            f"(|x| > 3.4e38). {advice}"
        )
    return table[:, 1:].astype(np.float32), labels.astype(np.int64)


def load_uci_sequences(
    name: str, *, data_home: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Load a UCI molecular-biology sequence set (``splice`` or ``promoters``).

    Returns a DataFrame with columns ``label``, ``name`` and ``sequence`` (upper case,
    spaces removed). Every row must be ``class, name, sequence`` with a class of the
    dataset (splice: EI/IE/N; promoters: +/-, exactly as published), a name, a sequence of
    the published length made of IUPAC nucleotide codes, and the file must have the
    published number of rows (3190 / 106); anything else raises :class:`DatasetCorrupt`.
    Ambiguity codes (e.g. ``N``, ``D``, ``R``, ``S`` in ``splice``) are kept as they are
    for the encoder to handle explicitly.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in SEQUENCE_LENGTHS:
        dataset_info(key)
        raise UnknownDataset(
            f"{name!r} is not a UCI sequence set; use one of {sorted(SEQUENCE_LENGTHS)}"
        )
    info = dataset_info(key)
    path = fetch(key, data_home=data_home)
    advice = _keep_and_refetch(info, path)
    length, classes = SEQUENCE_LENGTHS[key], SEQUENCE_CLASSES.get(key)
    records = []
    for number, line in _read_lines(path, info):
        where = f"{path}, line {number}"
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3:
            raise DatasetCorrupt(
                f"{where}: expected 'class, name, sequence', got {line!r}. {advice}"
            )
        label, seq_name, sequence = parts
        if classes is not None and label not in classes:
            raise DatasetCorrupt(
                f"{where}: class {label!r} is not one of {key}'s classes "
                f"{', '.join(classes)}. {advice}"
            )
        if not seq_name:
            raise DatasetCorrupt(f"{where}: the instance name is empty. {advice}")
        sequence = "".join(sequence.split()).upper()
        if len(sequence) != length:
            raise DatasetCorrupt(
                f"{where}: sequence of length {len(sequence)}, expected {length}. {advice}"
            )
        odd = sorted(set(sequence) - DNA_CODES)
        if odd:
            raise DatasetCorrupt(
                f"{where}: sequence holds {odd}, which are not IUPAC nucleotide "
                f"codes ({''.join(sorted(DNA_CODES))}). {advice}"
            )
        records.append((label, seq_name, sequence))
    expected_rows = SEQUENCE_ROWS.get(key)
    if expected_rows is not None and len(records) != expected_rows:
        raise DatasetCorrupt(
            f"{path}: {len(records)} rows, but {key} has {expected_rows} "
            f"(the file is truncated or not the published one). {advice}"
        )
    return pd.DataFrame(records, columns=["label", "name", "sequence"])


# --------------------------------------------------------------------------- DICOM samples
def _check_bare_name(value: str, argument: str, *, glob: bool) -> str:
    """Reject anything but a bare file name (or file-name pattern): no folders, no ``..``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"{argument} must be a non-empty file name such as 'CT_small.dcm', not {value!r}"
        )
    if "/" in value or "\\" in value or ".." in value or os.path.isabs(value):
        raise ValueError(
            f"{argument} {value!r} must be a bare file name"
            f"{' pattern' if glob else ''} (no folders, no '..'): the samples "
            "are looked up only inside the installed sample folders"
        )
    if not glob and any(char in value for char in "*?["):
        raise ValueError(
            f"{argument} {value!r} is a pattern; give one file name, or list "
            "names with helpers.data.list_dicom_samples(pattern)"
        )
    return value


def dicom_sample(name: str) -> Path:
    """Path of a real sample DICOM file shipped with ``pydicom`` or ``pydicom-data``.

    Never downloads: a name that is not installed raises :class:`DatasetUnavailable`
    saying which package provides the samples. ``name`` must be a bare file name
    (``ValueError`` otherwise), so no path outside the sample folders is returned.
    """
    from pydicom.data import get_testdata_file

    _check_bare_name(name, "DICOM sample name", glob=False)
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
    its online index, which hangs or warns offline). ``pattern`` is a file-name pattern
    (``*``, ``?``, ``[...]``); folders and ``..`` raise ``ValueError``.
    """
    from pydicom.data import data_manager

    _check_bare_name(pattern, "pattern", glob=True)
    roots = [Path(data_manager.DATA_ROOT) / "test_files"]
    roots += [Path(source.data_path) for source in data_manager.external_data_sources().values()]
    names = set()
    for root in roots:
        if not root.is_dir():
            continue
        inside = root.resolve()
        for path in root.rglob(pattern):
            if path.is_file() and path.resolve().is_relative_to(inside):
                names.add(path.name)
    return sorted(names)


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

    index, _ = train_test_split(
        np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed
    )
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
        rest, test = train_test_split(
            index, test_size=test_size, stratify=labels, random_state=seed
        )
        train, val = train_test_split(
            rest, test_size=val_size / (1 - test_size), stratify=labels[rest], random_state=seed
        )
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
        for second in names[i + 1 :]:
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
            dataset = dataset.map(
                lambda x: augment(x, training=True), num_parallel_calls=tf.data.AUTOTUNE
            )
        else:
            dataset = dataset.map(
                lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
            )
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset


def as_float_images(images: np.ndarray, channels: int | None = None) -> np.ndarray:
    """Scale ``uint8`` images to ``float32`` in [0, 1] and add a channel axis.

    Grey-scale ``(n, h, w)`` becomes ``(n, h, w, 1)``; ``channels=3`` repeats a single
    channel three times (for ImageNet backbones). Float images must already lie in [0, 1]
    and be finite; other types (``uint16``, ``int``, ``bool``) have no known scale and, like
    inputs that are not 3-D or 4-D, raise ``ValueError``.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (n, h, w) or (n, h, w, c), got {images.shape}")
    if images.dtype == np.uint8:
        out = images.astype(np.float32) / 255.0
    elif images.dtype.kind == "f":
        if images.size and not (
            np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0
        ):
            finite = images[np.isfinite(images)]
            seen = f"[{finite.min()}, {finite.max()}]" if finite.size else "none finite"
            raise ValueError(
                f"float images must be finite and lie in [0, 1], got values in {seen} "
                f"(NaN/inf: {images.size - finite.size}); rescale them first (e.g. "
                "helpers.dicom.window for CT, or divide by the known maximum)"
            )
        out = images.astype(np.float32)
    else:
        raise ValueError(
            f"images of type {images.dtype} have no known scale: as_float_images divides "
            "uint8 by 255 and keeps float images in [0, 1]. Rescale them first (e.g. uint16 "
            "DICOM pixels with helpers.dicom.window, or divide by the known maximum)"
        )
    if channels is not None and channels != out.shape[-1]:
        if out.shape[-1] != 1:
            raise ValueError(f"cannot turn {out.shape[-1]} channels into {channels}")
        out = np.repeat(out, channels, axis=-1)
    return out


__all__: Sequence[str] = [
    "DATA_ENV",
    "OFFLINE_ENV",
    "offline",
    "unverified_entries",
    "SPLITS",
    "MEDMNIST_SIZES",
    "REGISTRY",
    "MEDMNIST_INFO",
    "MEDMNIST3D_INFO",
    "MEDMNIST3D_SIZES",
    "CACHE_ENV",
    "cache_dir",
    "FIXTURE_ENV",
    "fixture_marker",
    "fixtures_allowed",
    "is_test_fixture",
    "PHYSIONET2012_CITATION",
    "DEEPSURV_CITATION",
    "VERIFY_MAX_BYTES",
    "DatasetError",
    "DatasetUnavailable",
    "DatasetCorrupt",
    "DatasetUnreadable",
    "UnknownDataset",
    "GroupLeakage",
    "AlternativeHash",
    "DatasetInfo",
    "ChecksumCheck",
    "data_root",
    "medmnist_name",
    "dataset_info",
    "local_path",
    "cached_datasets",
    "fetch",
    "checksum_status",
    "medmnist_info",
    "load_medmnist",
    "load_medmnist_splits",
    "load_ucr",
    "load_uci_sequences",
    "dicom_sample",
    "list_dicom_samples",
    "stratified_subset",
    "split_indices",
    "check_no_group_leakage",
    "make_dataset",
    "as_float_images",
]
