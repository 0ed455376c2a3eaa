"""helpers.data: registry, data root, fetching, loaders, bad input, splits, pipelines."""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import threading
from pathlib import Path

import numpy as np
import pooch
import pytest
import requests

from helpers import data
from tests.conftest import require

MEDMNIST_2D = {
    "pathmnist", "chestmnist", "dermamnist", "octmnist", "pneumoniamnist", "retinamnist",
    "breastmnist", "bloodmnist", "tissuemnist", "organamnist", "organcmnist", "organsmnist",
}


# --------------------------------------------------------------------------- registry
def test_registry_covers_all_medmnist_2d_sizes_and_the_sequence_sets():
    assert set(data.MEDMNIST_INFO) == MEDMNIST_2D
    for flag in MEDMNIST_2D:
        for size in data.MEDMNIST_SIZES:
            info = data.dataset_info(data.medmnist_name(flag, size))
            suffix = "" if size == 28 else f"_{size}"
            assert info.path == f"medmnist/{flag}{suffix}.npz"
            assert re.fullmatch(r"md5:[0-9a-f]{32}", info.known_hash)
            assert info.url.startswith("https://zenodo.org/records/10519652/files/")
    assert {"ecg5000_train", "ecg5000_test", "splice", "promoters"} <= set(data.REGISTRY)
    assert len(data.REGISTRY) == 12 * 4 + 4


def test_every_entry_is_credited_and_hashes_are_unique():
    hashes = [info.known_hash for info in data.REGISTRY.values() if info.known_hash]
    assert len(hashes) == len(set(hashes))
    for info in data.REGISTRY.values():
        assert info.url.startswith("https://")
        assert info.licence and info.citation and info.description


def test_unknown_dataset_suggests_close_names():
    with pytest.raises(data.UnknownDataset, match="Did you mean pneumoniamnist") as caught:
        data.dataset_info("pneumonia_mnist")
    assert isinstance(caught.value, KeyError)  # usable where a KeyError is expected
    with pytest.raises(data.UnknownDataset):
        data.load_medmnist("cifar10")


def test_medmnist_name_rejects_unpublished_sizes():
    assert data.medmnist_name("bloodmnist", 28) == "bloodmnist"
    assert data.medmnist_name("bloodmnist", 224) == "bloodmnist_224"
    with pytest.raises(ValueError, match="size must be one of"):
        data.medmnist_name("bloodmnist", 32)


# --------------------------------------------------------------------------- data root
def test_data_root_default_env_and_relative(monkeypatch, tmp_path):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    assert data.data_root() == data.REPO_ROOT / "data"
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.data_root() == tmp_path.resolve()
    monkeypatch.setenv(data.DATA_ENV, "some/where")
    assert data.data_root() == (data.REPO_ROOT / "some/where").resolve()


def test_local_path_follows_the_data_root(empty_root):
    assert data.local_path("ecg5000_test") == empty_root.resolve() / "ucr" / "ECG5000_TEST.txt"
    assert data.local_path("bloodmnist_64") == empty_root.resolve() / "medmnist" / "bloodmnist_64.npz"
    with pytest.raises(data.UnknownDataset):
        data.local_path("mnist")


def test_cached_datasets_lists_only_present_files(empty_root):
    assert data.cached_datasets() == []
    (empty_root / "uci").mkdir()
    (empty_root / "uci" / "promoters.data").write_text("+,X,acgt\n")
    assert data.cached_datasets() == ["promoters"]


# --------------------------------------------------------------------------- fetching
def test_offline_and_uncached_raises_named_error_without_touching_the_network(empty_root, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("offline fetch must not try to download")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    with pytest.raises(data.DatasetUnavailable) as caught:
        data.load_medmnist("pneumoniamnist", "train")
    message = str(caught.value)
    assert str(empty_root / "medmnist" / "pneumoniamnist.npz") in message  # the file
    assert f"Data root: {empty_root}" in message  # the data root
    assert "https://zenodo.org/records/10519652/files/pneumoniamnist.npz" in message  # the URL
    assert isinstance(caught.value, data.DatasetError)


def test_network_failure_becomes_dataset_unavailable_with_a_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    seen = {}

    def failing_retrieve(**kwargs):
        seen.update(kwargs)
        raise requests.exceptions.ConnectionError("Name or service not known")

    monkeypatch.setattr(pooch, "retrieve", failing_retrieve)
    with pytest.raises(data.DatasetUnavailable, match="ConnectionError: Name or service not known"):
        data.fetch("splice")
    assert seen["downloader"].kwargs["timeout"] == (10, 120)  # never hangs on a dead network
    assert seen["known_hash"] == data.REGISTRY["splice"].known_hash


@pytest.fixture()
def http_dir(tmp_path):
    """Serve a folder over HTTP on the loopback interface (a real download, no internet)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _register(monkeypatch, url, known_hash, member=None):
    info = data.DatasetInfo("toy", "toy/toy.txt", url, known_hash, "CC0", "none", "toy", member)
    monkeypatch.setitem(data.REGISTRY, "toy", info)
    return info


def test_download_checks_hash_and_caches(http_dir, tmp_path, monkeypatch):
    folder, base = http_dir
    payload = b"1 2 3\n"
    (folder / "toy.txt").write_bytes(payload)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "root"))
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    _register(monkeypatch, f"{base}/toy.txt", "sha256:" + hashlib.sha256(payload).hexdigest())
    path = data.fetch("toy")
    assert path == tmp_path / "root" / "toy" / "toy.txt"
    assert path.read_bytes() == payload
    (folder / "toy.txt").unlink()  # the second call must be served from the cache
    assert data.fetch("toy") == path


def test_download_with_wrong_checksum_raises_corrupt(http_dir, tmp_path, monkeypatch):
    folder, base = http_dir
    (folder / "toy.txt").write_bytes(b"tampered\n")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "root"))
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    _register(monkeypatch, f"{base}/toy.txt", "sha256:" + "0" * 64)
    with pytest.raises(data.DatasetCorrupt, match="checksum"):
        data.fetch("toy")
    assert not (tmp_path / "root" / "toy" / "toy.txt").exists()  # nothing bad is cached


def test_download_extracts_member_of_zip_and_checks_it(http_dir, tmp_path, monkeypatch):
    import zipfile

    folder, base = http_dir
    with zipfile.ZipFile(folder / "bundle.zip", "w") as archive:
        archive.writestr("inner.txt", "4 5 6\n")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "root"))
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    good = "sha256:" + hashlib.sha256(b"4 5 6\n").hexdigest()
    _register(monkeypatch, f"{base}/bundle.zip", good, member="inner.txt")
    assert data.fetch("toy").read_text() == "4 5 6\n"
    (tmp_path / "root" / "toy" / "toy.txt").unlink()
    _register(monkeypatch, f"{base}/bundle.zip", "sha256:" + "1" * 64, member="inner.txt")
    with pytest.raises(data.DatasetCorrupt, match="failed its checksum"):
        data.fetch("toy")
    assert not (tmp_path / "root" / "toy" / "toy.txt").exists()


def test_verify_detects_a_cached_file_with_the_wrong_checksum(empty_root):
    target = empty_root / "uci" / "splice.data"
    target.parent.mkdir()
    target.write_text("EI, X, " + "A" * 60 + "\n")
    assert data.fetch("splice") == target  # cached files are used as they are...
    with pytest.raises(data.DatasetCorrupt, match="checksum mismatch.*expected sha256:ebbae10c"):
        data.fetch("splice", verify=True)  # ...unless verification is asked for


# --------------------------------------------------------------------------- MedMNIST
def _write_npz(root: Path, flag: str = "pneumoniamnist", **arrays) -> Path:
    path = root / "medmnist" / f"{flag}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def test_corrupt_npz_raises_dataset_corrupt(empty_root):
    path = empty_root / "medmnist" / "pneumoniamnist.npz"
    path.parent.mkdir()
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(data.DatasetCorrupt, match="not a readable MedMNIST .npz"):
        data.load_medmnist("pneumoniamnist", "train")


def test_truncated_real_npz_raises_dataset_corrupt(empty_root):
    real = require("pneumoniamnist")
    blob = real.read_bytes()
    target = empty_root / "medmnist" / "pneumoniamnist.npz"
    target.parent.mkdir()
    target.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(data.DatasetCorrupt):
        data.load_medmnist("pneumoniamnist", "test")


def test_npz_with_missing_arrays_or_wrong_shapes_is_rejected(empty_root):
    _write_npz(empty_root, train_images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(data.DatasetCorrupt, match="lacks the arrays"):
        data.load_medmnist("pneumoniamnist", "train")
    _write_npz(empty_root, test_images=np.zeros((624, 32, 32), np.uint8),
               test_labels=np.zeros((624, 1), np.uint8))
    with pytest.raises(data.DatasetCorrupt, match="do not match the published test split"):
        data.load_medmnist("pneumoniamnist", "test")


def test_wrong_split_name_is_a_value_error(empty_root):
    with pytest.raises(ValueError, match="unknown split 'validation'; choose one of train, val, test"):
        data.load_medmnist("pneumoniamnist", "validation")


def test_real_pneumoniamnist_has_the_official_splits_and_class_counts():
    require("pneumoniamnist")
    expected = {"train": (4708, 1214, 3494), "val": (524, 135, 389), "test": (624, 234, 390)}
    for split, (n, normal, pneumonia) in expected.items():
        images, labels = data.load_medmnist("pneumoniamnist", split)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n, 1)
        assert np.bincount(labels[:, 0]).tolist() == [normal, pneumonia]
    assert data.medmnist_info("pneumoniamnist")["label"] == {"0": "normal", "1": "pneumonia"}


def test_load_medmnist_splits_subsets_only_the_training_split():
    require("pneumoniamnist")
    splits = data.load_medmnist_splits("pneumoniamnist", n_train=100, seed=1)
    assert list(splits) == list(data.SPLITS)
    train_x, train_y = splits["train"]
    assert train_x.shape == (100, 28, 28, 1) and train_x.dtype == np.float32
    assert 0.0 <= train_x.min() and train_x.max() <= 1.0
    assert np.bincount(train_y[:, 0]).tolist() == [26, 74]  # the 1214:3494 balance, kept
    assert splits["val"][0].shape == (524, 28, 28, 1) and splits["test"][1].shape == (624, 1)


# --------------------------------------------------------------------------- UCR / UCI
def test_real_ecg5000_train_split():
    require("ecg5000_train")
    series, labels = data.load_ucr("ecg5000", "train")
    assert series.shape == (500, 140) and series.dtype == np.float32
    assert np.bincount(labels, minlength=6)[1:].tolist() == [292, 177, 10, 19, 2]


def test_ucr_has_no_validation_split():
    with pytest.raises(ValueError, match="only train and test"):
        data.load_ucr("ecg5000", "val")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("1 0.5 0.25\n2 0.1\n", "rows have different lengths"),
        ("1 0.5 abc\n", "line 1: not numeric"),
        ("1 0.5 0.25\n2 0.1 0.2\n", "2 series of length 2, expected 500 of length 140"),
    ],
)
def test_bad_ucr_files_are_rejected(empty_root, content, message):
    target = empty_root / "ucr" / "ECG5000_TRAIN.txt"
    target.parent.mkdir()
    target.write_text(content)
    with pytest.raises(data.DatasetCorrupt, match=message):
        data.load_ucr("ecg5000", "train")


def test_real_uci_sequences_keep_ambiguity_codes():
    require("splice")
    require("promoters")
    splice = data.load_uci_sequences("splice")
    assert len(splice) == 3190
    assert splice["label"].value_counts().to_dict() == {"N": 1655, "IE": 768, "EI": 767}
    assert set(splice["sequence"].str.len()) == {60}
    assert set("".join(splice["sequence"])) == set("ACGTDNRS")
    promoters = data.load_uci_sequences("promoters")
    assert promoters["label"].value_counts().to_dict() == {"+": 53, "-": 53}
    assert set(promoters["sequence"].str.len()) == {57}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("EI, NAME\n", "expected 'class, name, sequence'"),
        ("EI, NAME, ACGT\n", "sequence of length 4, expected 60"),
    ],
)
def test_bad_uci_files_are_rejected(empty_root, content, message):
    target = empty_root / "uci" / "splice.data"
    target.parent.mkdir()
    target.write_text(content)
    with pytest.raises(data.DatasetCorrupt, match=message):
        data.load_uci_sequences("splice")


def test_uci_loader_rejects_other_names():
    with pytest.raises(data.UnknownDataset, match="not a UCI sequence set"):
        data.load_uci_sequences("pneumoniamnist")


# --------------------------------------------------------------------------- DICOM
def test_dicom_samples_come_from_the_installed_packages():
    import pydicom

    ct = data.dicom_sample("CT_small.dcm")
    assert ct.is_file() and pydicom.dcmread(ct).Modality == "CT"
    assert data.dicom_sample("liver.dcm").is_file()  # from pydicom-data
    names = data.list_dicom_samples()
    assert {"CT_small.dcm", "MR_small.dcm", "RG1_UNCR.dcm", "MR_truncated.dcm"} <= set(names)


def test_unknown_dicom_sample_is_unavailable_without_download():
    with pytest.raises(data.DatasetUnavailable, match="pydicom-data"):
        data.dicom_sample("no_such_file.dcm")


# --------------------------------------------------------------------------- splits
def test_stratified_subset_keeps_class_balance():
    labels = np.array([0] * 300 + [1] * 100)
    index = data.stratified_subset(labels, 40, seed=1)
    assert len(index) == 40 and len(set(index)) == 40
    assert np.bincount(labels[index]).tolist() == [30, 10]
    assert np.array_equal(index, data.stratified_subset(labels, 40, seed=1))
    assert len(data.stratified_subset(labels, None)) == 400
    with pytest.raises(ValueError, match="positive"):
        data.stratified_subset(labels, 0)


def test_split_indices_without_groups_is_a_stratified_partition():
    labels = np.array([0] * 700 + [1] * 300)
    splits = data.split_indices(labels, val_size=0.1, test_size=0.2, seed=0)
    together = np.concatenate(list(splits.values()))
    assert sorted(together.tolist()) == list(range(1000))
    assert [len(splits[s]) for s in data.SPLITS] == [700, 100, 200]
    for index in splits.values():
        assert labels[index].mean() == pytest.approx(0.3, abs=0.01)


def test_split_indices_with_groups_never_shares_a_patient():
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(200), 5)  # 5 images per patient
    labels = np.repeat(rng.integers(0, 2, 200), 5)
    splits = data.split_indices(labels, patients, seed=3)
    assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(1000))
    seen = [set(patients[index]) for index in splits.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert 0.6 < len(splits["train"]) / 1000 < 0.8


def test_check_no_group_leakage_names_the_shared_patients():
    groups = np.array(["p1", "p1", "p2", "p3"])
    data.check_no_group_leakage({"train": np.array([0, 1]), "test": np.array([2, 3])}, groups)
    with pytest.raises(data.GroupLeakage, match=r"1 group\(s\) appear in both 'train' and 'test'.*p1"):
        data.check_no_group_leakage({"train": np.array([0, 2]), "test": np.array([1, 3])}, groups)


def test_split_indices_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sum to less than 1"):
        data.split_indices(np.zeros(10), val_size=0.5, test_size=0.5)
    with pytest.raises(ValueError, match="groups has 3 entries but labels has 10"):
        data.split_indices(np.zeros(10), np.arange(3))


# --------------------------------------------------------------------------- pipelines
def test_make_dataset_batches_shuffles_reproducibly_and_augments():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    labels = np.arange(10)
    plain = data.make_dataset(images, labels, batch_size=4)
    batches = list(plain.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert batches[0][1].tolist() == [0, 1, 2, 3]

    def order(seed):
        dataset = data.make_dataset(images, labels, batch_size=10, shuffle=True, seed=seed)
        return next(dataset.as_numpy_iterator())[1].tolist()

    assert order(7) == order(7) and sorted(order(7)) == list(range(10))
    assert order(7) != list(range(10))

    def negate(x, training=False):
        assert training  # augmentation runs in training mode
        return -x

    augmented = next(data.make_dataset(images, labels, batch_size=10, augment=negate).as_numpy_iterator())
    assert np.array_equal(augmented[0], -images) and augmented[1].tolist() == labels.tolist()
    with pytest.raises(ValueError, match="10 images but 3 labels"):
        data.make_dataset(images, labels[:3])


def test_as_float_images_scales_and_adds_channels():
    grey = np.full((2, 4, 4), 255, np.uint8)
    out = data.as_float_images(grey)
    assert out.shape == (2, 4, 4, 1) and out.dtype == np.float32 and out.max() == 1.0
    assert data.as_float_images(grey, channels=3).shape == (2, 4, 4, 3)
    with pytest.raises(ValueError, match="expected images of shape"):
        data.as_float_images(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="cannot turn 3 channels into 1"):
        data.as_float_images(np.zeros((1, 4, 4, 3), np.uint8), channels=1)
