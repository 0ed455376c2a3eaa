"""helpers.data: registry, data root, fetching, loaders, bad input, splits, pipelines."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import logging
import os
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pooch
import pytest
import requests

from helpers import data
from tests.conftest import REAL_ROOT, require

MEDMNIST_2D = {
    "pathmnist",
    "chestmnist",
    "dermamnist",
    "octmnist",
    "pneumoniamnist",
    "retinamnist",
    "breastmnist",
    "bloodmnist",
    "tissuemnist",
    "organamnist",
    "organcmnist",
    "organsmnist",
}
OFFICIAL_PNEUMONIA_MD5 = "md5:28209eda62fecd6e6a2d98b1501bb15f"  # medmnist's INFO table
OFFLINE_PNEUMONIA_MD5 = "md5:88f817cb74189d81f6df1930098ff783"  # the course's offline copy


def without_checksum(monkeypatch, *names: str) -> None:
    """Drop the registry checksums of ``names`` so a test reaches the loader's own checks.

    By default a cached file's checksum is checked first, so a hand-written bad file would
    stop there; these tests are about what the loaders find inside the file.
    """
    for name in names:
        info = data.REGISTRY[name]
        monkeypatch.setitem(
            data.REGISTRY,
            name,
            dataclasses.replace(
                info,
                known_hash=None,
                also_accepted=(),
                unverified_reason="switched off by this test",
            ),
        )


def copy_real(name: str, root: Path) -> Path:
    """Copy a real dataset file into the data root ``root`` (for tampering with the copy)."""
    source = require(name)
    target = root / data.dataset_info(name).path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


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
    # 12 2D flags x 4 sizes, 6 3D flags x 2 sizes, 4 sequence files, PhysioNet 2012 (3 sets,
    # 3 outcome files, the Raindrop splits), 4 DeepSurv cohorts, the Decathlon archive
    assert len(data.REGISTRY) == 12 * 4 + 6 * 2 + 4 + 7 + 4 + 1


def test_registry_covers_the_medmnist_3d_sets_at_28_and_64_only():
    assert set(data.MEDMNIST3D_INFO) == {
        "organmnist3d",
        "nodulemnist3d",
        "adrenalmnist3d",
        "fracturemnist3d",
        "vesselmnist3d",
        "synapsemnist3d",
    }
    assert data.dataset_info("adrenalmnist3d").known_hash == "md5:bbd3c5a5576322bc4cdfea780653b1ce"
    assert data.dataset_info("adrenalmnist3d_64").path == "medmnist/adrenalmnist3d_64.npz"
    with pytest.raises(data.UnknownDataset):
        data.dataset_info("adrenalmnist3d_128")
    with pytest.raises(ValueError, match="published at sizes"):
        data.load_medmnist("adrenalmnist3d", "val", size=224)


def test_the_ehr_survival_and_decathlon_entries_point_at_their_official_sources():
    for part in "abc":
        assert data.dataset_info(f"physionet2012_set_{part}").url == (
            f"https://physionet.org/files/challenge-2012/1.0.0/set-{part}.tar.gz"
        )
        assert data.dataset_info(f"physionet2012_outcomes_{part}").known_hash
    for cohort in ("support", "gbsg", "whas", "metabric"):
        info = data.dataset_info(f"deepsurv_{cohort}")
        assert "jaredleekatzman/DeepSurv" in info.url and info.url.endswith(".h5")
        assert info.path.startswith("survival/")
    assert data.dataset_info("msd_hippocampus").known_hash == "md5:9d24dba78a72977dbd1d2e110310f31b"
    assert set(data.unverified_entries()) == {
        "ecg5000_test",
        "physionet2012_set_a",
        "physionet2012_set_b",
        "physionet2012_set_c",
        "deepsurv_metabric",
    }


def test_a_3d_medmnist_file_with_2d_arrays_is_named_as_such(empty_root, monkeypatch):
    without_checksum(monkeypatch, "adrenalmnist3d")
    _write_npz(
        empty_root,
        "adrenalmnist3d",
        val_images=np.zeros((98, 28, 28), np.uint8),
        val_labels=np.zeros((98, 1), np.uint8),
    )
    with pytest.raises(data.DatasetCorrupt, match=r"adrenalmnist3d.npz.*2D samples.*3D set"):
        data.load_medmnist("adrenalmnist3d", "val")


def test_cache_dir_prefers_the_data_root_and_falls_back_when_it_is_read_only(tmp_path, monkeypatch):
    monkeypatch.delenv(data.CACHE_ENV, raising=False)
    assert data.cache_dir("parsed", data_home=tmp_path) == tmp_path / "cache" / "parsed"
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert data.cache_dir("parsed") == tmp_path / "elsewhere" / "parsed"
    with pytest.raises(ValueError, match="plain folder name"):
        data.cache_dir("../escape")


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
    assert (
        data.local_path("bloodmnist_64") == empty_root.resolve() / "medmnist" / "bloodmnist_64.npz"
    )
    with pytest.raises(data.UnknownDataset):
        data.local_path("mnist")


def test_cached_datasets_lists_only_present_files(empty_root):
    assert data.cached_datasets() == []
    (empty_root / "uci").mkdir()
    (empty_root / "uci" / "promoters.data").write_text("+,X,acgt\n")
    assert data.cached_datasets() == ["promoters"]


# --------------------------------------------------------------------------- fetching
def test_offline_and_uncached_raises_named_error_without_touching_the_network(
    empty_root, monkeypatch
):
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
    info = data.DatasetInfo(
        "toy",
        "toy/toy.txt",
        url,
        known_hash,
        "CC0",
        "none",
        "toy",
        member,
        unverified_reason=None if known_hash else "a test file",
    )
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


def test_a_cached_file_with_the_wrong_checksum_is_caught_by_default(empty_root):
    target = empty_root / "uci" / "splice.data"
    target.parent.mkdir()
    target.write_text("EI, X, " + "A" * 60 + "\n")
    with pytest.raises(data.DatasetCorrupt, match="checksum mismatch.*expected sha256:ebbae10c"):
        data.fetch("splice")  # small files are checked by default...
    with pytest.raises(data.DatasetCorrupt, match="checksum mismatch"):
        data.fetch("splice", verify=True)
    assert data.fetch("splice", verify=False) == target  # ...unless switched off


# --------------------------------------------------------------------------- MedMNIST
def _write_npz(root: Path, flag: str = "pneumoniamnist", **arrays) -> Path:
    path = root / "medmnist" / f"{flag}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def test_corrupt_npz_raises_dataset_corrupt(empty_root, monkeypatch):
    without_checksum(monkeypatch, "pneumoniamnist")
    path = empty_root / "medmnist" / "pneumoniamnist.npz"
    path.parent.mkdir()
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(data.DatasetCorrupt, match="not a readable MedMNIST .npz"):
        data.load_medmnist("pneumoniamnist", "train")


def test_truncated_real_npz_raises_dataset_corrupt(empty_root, monkeypatch):
    real = require("pneumoniamnist")
    blob = real.read_bytes()
    target = empty_root / "medmnist" / "pneumoniamnist.npz"
    target.parent.mkdir()
    target.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(data.DatasetCorrupt, match="checksum mismatch"):
        data.load_medmnist("pneumoniamnist", "test")
    without_checksum(monkeypatch, "pneumoniamnist")  # the parser catches it too
    with pytest.raises(data.DatasetCorrupt, match="not a readable MedMNIST .npz"):
        data.load_medmnist("pneumoniamnist", "test")


def test_npz_with_missing_arrays_or_wrong_shapes_is_rejected(empty_root, monkeypatch):
    without_checksum(monkeypatch, "pneumoniamnist")
    _write_npz(empty_root, train_images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(data.DatasetCorrupt, match="lacks the arrays"):
        data.load_medmnist("pneumoniamnist", "train")
    _write_npz(
        empty_root,
        test_images=np.zeros((624, 32, 32), np.uint8),
        test_labels=np.zeros((624, 1), np.uint8),
    )
    with pytest.raises(data.DatasetCorrupt, match="do not match the published test split"):
        data.load_medmnist("pneumoniamnist", "test")


def test_wrong_split_name_is_a_value_error(empty_root):
    with pytest.raises(
        ValueError, match="unknown split 'validation'; choose one of train, val, test"
    ):
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
def test_bad_ucr_files_are_rejected(empty_root, monkeypatch, content, message):
    without_checksum(monkeypatch, "ecg5000_train")
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
def test_bad_uci_files_are_rejected(empty_root, monkeypatch, content, message):
    without_checksum(monkeypatch, "splice")
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
    with pytest.raises(
        data.GroupLeakage, match=r"1 group\(s\) appear in both 'train' and 'test'.*p1"
    ):
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

    augmented = next(
        data.make_dataset(images, labels, batch_size=10, augment=negate).as_numpy_iterator()
    )
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


# --------------------------------------------------------------------------- checksums by default
def test_the_offline_pneumoniamnist_copy_is_a_documented_variant_not_corrupt(caplog):
    require("pneumoniamnist")
    info = data.dataset_info("pneumoniamnist")
    assert info.known_hash == OFFICIAL_PNEUMONIA_MD5
    assert [alt.known_hash for alt in info.also_accepted] == [OFFLINE_PNEUMONIA_MD5]
    assert "different order" in info.also_accepted[0].reason
    with caplog.at_level(logging.INFO, logger="helpers.data"):
        path = data.fetch("pneumoniamnist", verify=True)  # the red team's case: must not raise
    check = data.checksum_status("pneumoniamnist")
    assert check.path == path and check.status == "alternative"
    assert check.actual == OFFLINE_PNEUMONIA_MD5 and "different order" in check.note
    assert "accepted because" in caplog.text and "different order" in caplog.text
    # No other entry accepts that checksum: the variant is tied to this one file.
    others = [
        alt.known_hash
        for name, entry in data.REGISTRY.items()
        if name != "pneumoniamnist"
        for alt in entry.also_accepted
    ]
    assert OFFLINE_PNEUMONIA_MD5 not in others and info.known_hash not in others


def test_genuine_offline_files_pass_the_default_checks():
    for name in ["pneumoniamnist", "retinamnist", "ecg5000_train", "splice", "promoters"]:
        require(name)
        data.fetch(name)
        assert data.checksum_status(name).status in {"official", "alternative"}, name
    assert data.checksum_status("retinamnist").status == "official"


def test_a_checksum_mismatch_names_both_hashes_and_never_advises_deleting(empty_root):
    target = copy_real("pneumoniamnist", empty_root)
    blob = bytearray(target.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte: same size, still a zip
    target.write_bytes(bytes(blob))
    actual = "md5:" + hashlib.md5(bytes(blob)).hexdigest()
    with pytest.raises(data.DatasetCorrupt) as caught:
        data.fetch("pneumoniamnist", verify=True)
    message = str(caught.value)
    assert str(target) in message
    assert OFFICIAL_PNEUMONIA_MD5 in message and OFFLINE_PNEUMONIA_MD5 in message
    assert actual in message
    assert "Keep the file" in message and "move it aside" in message.lower()
    assert "only if you are online" in message
    assert "https://zenodo.org/records/10519652/files/pneumoniamnist.npz" in message
    assert "delete" not in message.lower() and "remove" not in message.lower()
    assert target.read_bytes() == bytes(blob)  # the file is left where it was


def test_no_error_message_advises_deleting_data(empty_root, monkeypatch):
    cases = {
        "uci/splice.data": ("EI, X, " + "A" * 60 + "\n").encode(),  # wrong checksum
        "medmnist/retinamnist.npz": b"not a zip",
        "ucr/ECG5000_TRAIN.txt": b"1 nan 2\n",
    }
    for relative, content in cases.items():
        (empty_root / relative).parent.mkdir(parents=True, exist_ok=True)
        (empty_root / relative).write_bytes(content)
    loads = [
        lambda: data.load_uci_sequences("splice"),
        lambda: data.load_medmnist("retinamnist", "test"),
        lambda: data.load_ucr("ecg5000", "train"),
    ]
    messages = []
    for checked in (True, False):  # the checksum's message, then the parsers' messages
        if not checked:
            without_checksum(monkeypatch, "splice", "retinamnist", "ecg5000_train")
        for load in loads:
            with pytest.raises(data.DatasetCorrupt) as caught:
                load()
            messages.append(str(caught.value))
    assert all("Keep the file" in m and "delete" not in m.lower() for m in messages), messages


def test_a_tampered_cached_file_with_valid_content_is_caught_by_default(empty_root):
    target = copy_real("splice", empty_root)
    before = data.load_uci_sequences("splice")
    blob = target.read_bytes()
    index = blob.index(b"CCAGCTGCATCACAGGAGGCCAGCG")
    target.write_bytes(blob[:index] + b"G" + blob[index + 1 :])  # same size, still valid DNA
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    with pytest.raises(data.DatasetCorrupt, match="checksum mismatch"):
        data.load_uci_sequences("splice")
    assert len(before) == 3190


def test_checksums_are_memoised_per_file_version(empty_root, monkeypatch):
    target = copy_real("promoters", empty_root)
    calls = []
    real_digests = data._digests
    monkeypatch.setattr(data, "_digests", lambda *a: calls.append(a[0]) or real_digests(*a))
    data.fetch("promoters")
    data.load_uci_sequences("promoters")
    assert len(calls) == 1  # paid once per process
    stamp = target.stat()
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))  # a new version
    data.fetch("promoters")
    assert len(calls) == 2
    data.fetch("promoters", verify=True)  # explicit: always hashed
    data.fetch("promoters", verify=False)  # never hashed
    assert len(calls) == 3
    assert not [p for p in target.parent.iterdir() if p != target]  # no marker files


def test_large_files_are_hashed_only_on_request(empty_root, monkeypatch):
    target = empty_root / "uci" / "splice.data"
    target.parent.mkdir()
    target.write_text("EI, X, " + "A" * 60 + "\n")
    monkeypatch.setattr(data, "VERIFY_MAX_BYTES", 10)
    assert data.fetch("splice") == target
    check = data.checksum_status("splice")
    assert check.status == "unchecked" and "verify=True" in check.note
    with pytest.raises(data.DatasetCorrupt, match="checksum mismatch"):
        data.fetch("splice", verify=True)


def test_a_read_only_data_root_is_used_without_writing(tmp_path, monkeypatch):
    for name in ["promoters", "ecg5000_train"]:
        copy_real(name, tmp_path)
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    before = sorted(tmp_path.rglob("*"))
    try:
        assert len(data.load_uci_sequences("promoters")) == 106
        assert data.load_ucr("ecg5000", "train")[0].shape == (500, 140)
        assert sorted(tmp_path.rglob("*")) == before
    finally:
        for path in [tmp_path, *tmp_path.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


# --------------------------------------------------------------------------- wrong paths, permissions
def test_a_data_root_that_is_a_file_is_a_named_error(tmp_path, monkeypatch):
    root = tmp_path / "data.txt"
    root.write_text("not a folder")
    monkeypatch.setenv(data.DATA_ENV, str(root))
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    with pytest.raises(
        data.DatasetUnreadable, match=r"data root .*data.txt is a file, not a folder"
    ):
        data.load_ucr("ecg5000", "train")


def test_a_folder_where_the_file_should_be_is_a_named_error(empty_root):
    (empty_root / "medmnist" / "pneumoniamnist.npz").mkdir(parents=True)
    with pytest.raises(data.DatasetUnreadable, match=r"pneumoniamnist.npz is a folder"):
        data.load_medmnist("pneumoniamnist", "val")
    (empty_root / "uci").write_text("a file where the uci/ folder belongs")
    with pytest.raises(data.DatasetUnreadable, match=r"uci is a file where a folder is expected"):
        data.load_uci_sequences("promoters")


def test_an_unreadable_file_is_a_named_error(empty_root, monkeypatch):
    target = copy_real("promoters", empty_root)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: Path(p) != target and real_access(p, mode, **kw)
    )
    with pytest.raises(data.DatasetUnreadable, match=r"cannot read .*promoters.data.*chmod"):
        data.load_uci_sequences("promoters")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_file_is_a_named_error_for_real(empty_root):
    target = copy_real("promoters", empty_root)
    target.chmod(0)
    try:
        with pytest.raises(data.DatasetUnreadable, match="cannot read"):
            data.load_uci_sequences("promoters")
    finally:
        target.chmod(0o644)


# --------------------------------------------------------------------------- MedMNIST content
def _fake_split(n=524, k=1, image_dtype=np.uint8, label_dtype=np.uint8, labels=None, shape=None):
    images = np.zeros(shape or (n, 28, 28), image_dtype)
    if labels is None:
        labels = np.zeros((n, k), label_dtype)
    return {"val_images": images, "val_labels": np.asarray(labels, dtype=label_dtype)}


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            _fake_split(
                labels=np.r_[[-1], [7], np.zeros(522)].reshape(-1, 1), label_dtype=np.int64
            ),
            r"2 value\(s\) outside class indices 0..1, e.g. \[-1, 7\]",
        ),
        (
            _fake_split(
                labels=np.r_[[np.nan], np.zeros(523)].reshape(-1, 1), label_dtype=np.float64
            ),
            "val_labels are float64, but MedMNIST labels are integers",
        ),
        (
            _fake_split(image_dtype=np.float64),
            "val_images are float64, but MedMNIST stores pixels as uint8",
        ),
        (_fake_split(image_dtype=np.uint16), "val_images are uint16"),
        (
            _fake_split(shape=(524, 28, 28, 3)),
            r"do not match the published val split \(524, 28, 28\)",
        ),
        (_fake_split(k=2), r"labels \(524, 2\) do not match"),
        (_fake_split(n=100), r"val images \(100, 28, 28\)"),
        ({"val_images": np.zeros((524, 28, 28), np.uint8)}, r"lacks the arrays \['val_labels'\]"),
    ],
)
def test_medmnist_content_is_checked(empty_root, monkeypatch, arrays, message):
    without_checksum(monkeypatch, "pneumoniamnist")
    _write_npz(empty_root, **arrays)
    with pytest.raises(data.DatasetCorrupt, match=message) as caught:
        data.load_medmnist("pneumoniamnist", "val")
    assert "pneumoniamnist.npz" in str(caught.value) and "Keep the file" in str(caught.value)


def test_medmnist_labels_follow_the_task(empty_root, monkeypatch):
    without_checksum(monkeypatch, "chestmnist", "retinamnist")
    monkeypatch.setitem(data.MEDMNIST_INFO["chestmnist"]["n_samples"], "test", 3)
    monkeypatch.setitem(data.MEDMNIST_INFO["retinamnist"]["n_samples"], "test", 3)
    labels = np.array([[0] * 14, [1] * 14, [0, 1] * 7], np.uint8)  # 14 labels, each 0/1
    _write_npz(
        empty_root, "chestmnist", test_images=np.zeros((3, 28, 28), np.uint8), test_labels=labels
    )
    assert np.array_equal(data.load_medmnist("chestmnist", "test")[1], labels)
    labels[0, 3] = 2
    _write_npz(
        empty_root, "chestmnist", test_images=np.zeros((3, 28, 28), np.uint8), test_labels=labels
    )
    with pytest.raises(data.DatasetCorrupt, match="outside 0/1 per label"):
        data.load_medmnist("chestmnist", "test")
    colour = np.zeros((3, 28, 28, 3), np.uint8)
    _write_npz(empty_root, "retinamnist", test_images=colour, test_labels=np.array([[0], [4], [2]]))
    assert data.load_medmnist("retinamnist", "test")[1].ravel().tolist() == [0, 4, 2]
    _write_npz(empty_root, "retinamnist", test_images=colour, test_labels=np.array([[0], [5], [2]]))
    with pytest.raises(data.DatasetCorrupt, match=r"outside class indices 0..4, e.g. \[5\]"):
        data.load_medmnist("retinamnist", "test")


def test_a_single_npy_array_is_not_a_medmnist_archive(empty_root, monkeypatch):
    without_checksum(monkeypatch, "pneumoniamnist")
    path = empty_root / "medmnist" / "pneumoniamnist.npz"
    path.parent.mkdir()
    with open(path, "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(data.DatasetCorrupt, match="holds a single array"):
        data.load_medmnist("pneumoniamnist", "val")


# --------------------------------------------------------------------------- UCR content
@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("1 0.5 nan", r"line 2: NaN or infinite"),
        ("1 inf 0.5", r"line 2: NaN or infinite"),
        ("2.5 0.5 0.5", r"line 2: class label 2.5 is not an integer"),
        ("7 0.5 0.5", r"line 2: class 7 is not one of ecg5000_train's classes \[1, 2, 3, 4, 5\]"),
        ("0 0.5 0.5", r"line 2: class 0 is not one of"),
        ("1 0.5 1e39", "too large for float32"),
    ],
)
def test_ucr_values_and_labels_are_checked(empty_root, monkeypatch, row, message):
    without_checksum(monkeypatch, "ecg5000_train")
    monkeypatch.setitem(data.UCR_SHAPES, "ecg5000_train", (2, 2))
    target = empty_root / "ucr" / "ECG5000_TRAIN.txt"
    target.parent.mkdir()
    target.write_text(f"1 0.25 0.5\n{row}\n")
    with pytest.raises(data.DatasetCorrupt, match=message):
        data.load_ucr("ecg5000", "train")
    target.write_text("1 0.25 0.5\n5 -1 2\n")  # the same layout, valid: a correct result
    series, labels = data.load_ucr("ecg5000", "train")
    assert series.tolist() == [[0.25, 0.5], [-1, 2]] and labels.tolist() == [1, 5]


def test_ucr_with_a_byte_order_mark_reads_the_genuine_values(empty_root, monkeypatch):
    target = copy_real("ecg5000_train", empty_root)
    target.write_bytes(b"\xef\xbb\xbf" + target.read_bytes())
    with pytest.raises(data.DatasetCorrupt, match="checksum mismatch"):
        data.load_ucr("ecg5000", "train")  # not the registered file...
    without_checksum(monkeypatch, "ecg5000_train")
    series, labels = data.load_ucr("ecg5000", "train")  # ...but no value is misread
    monkeypatch.setenv(data.DATA_ENV, str(REAL_ROOT))
    genuine = data.load_ucr("ecg5000", "train")
    assert np.array_equal(series, genuine[0]) and np.array_equal(labels, genuine[1])


# --------------------------------------------------------------------------- UCI content
def _splice_with(empty_root, monkeypatch, lines):
    without_checksum(monkeypatch, "splice")
    monkeypatch.setitem(data.SEQUENCE_ROWS, "splice", len(lines))
    target = empty_root / "uci" / "splice.data"
    target.parent.mkdir(exist_ok=True)
    target.write_text("".join(line + "\n" for line in lines))
    return target


@pytest.mark.parametrize("label", ["XX", "ei", "pos", "", "\ufeffEI"])
def test_uci_classes_are_checked(empty_root, monkeypatch, label):
    _splice_with(empty_root, monkeypatch, ["EI, A, " + "ACGT" * 15, f"{label}, B, " + "ACGT" * 15])
    with pytest.raises(
        data.DatasetCorrupt, match=r"line 2: class .* is not one of splice's classes EI, IE, N"
    ):
        data.load_uci_sequences("splice")


def test_promoters_classes_are_checked(empty_root, monkeypatch):
    without_checksum(monkeypatch, "promoters")
    target = empty_root / "uci" / "promoters.data"
    target.parent.mkdir()
    target.write_text("pos,S10,\t" + "acgt" * 14 + "a\n")
    with pytest.raises(
        data.DatasetCorrupt, match=r"class 'pos' is not one of promoters's classes \+, -"
    ):
        data.load_uci_sequences("promoters")


def test_uci_sequences_need_dna_codes_and_a_name(empty_root, monkeypatch):
    _splice_with(empty_root, monkeypatch, ["EI, A, " + "ACGT" * 14 + "ACG1"])
    with pytest.raises(data.DatasetCorrupt, match=r"sequence holds \['1'\]"):
        data.load_uci_sequences("splice")
    _splice_with(empty_root, monkeypatch, ["EI, , " + "ACGT" * 15])
    with pytest.raises(data.DatasetCorrupt, match="instance name is empty"):
        data.load_uci_sequences("splice")


def test_a_byte_order_mark_does_not_create_a_class(empty_root, monkeypatch):
    target = copy_real("splice", empty_root)
    target.write_bytes(b"\xef\xbb\xbf" + target.read_bytes())
    with pytest.raises(data.DatasetCorrupt, match="checksum mismatch"):
        data.load_uci_sequences("splice")
    without_checksum(monkeypatch, "splice")
    frame = data.load_uci_sequences("splice")
    assert frame["label"].value_counts().to_dict() == {"N": 1655, "IE": 768, "EI": 767}


def test_a_truncated_uci_file_is_rejected(empty_root, monkeypatch):
    target = copy_real("splice", empty_root)
    target.write_text("".join(target.read_text().splitlines(keepends=True)[:100]))
    with pytest.raises(data.DatasetCorrupt, match="checksum mismatch"):
        data.load_uci_sequences("splice")
    without_checksum(monkeypatch, "splice")
    with pytest.raises(data.DatasetCorrupt, match="100 rows, but splice has 3190"):
        data.load_uci_sequences("splice")


def test_a_non_utf8_text_file_is_rejected(empty_root, monkeypatch):
    without_checksum(monkeypatch, "splice")
    target = empty_root / "uci" / "splice.data"
    target.parent.mkdir()
    target.write_bytes(b"EI, A, \xff\xfe" + b"A" * 58 + b"\n")
    with pytest.raises(data.DatasetCorrupt, match="not a UTF-8 text file"):
        data.load_uci_sequences("splice")


# --------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "pattern", ["../*.py", "../../**/*.py", "sub/*.dcm", "..", "/etc/*", "", "..\\*"]
)
def test_dicom_listing_stays_in_the_sample_folders(pattern):
    with pytest.raises(ValueError, match="pattern"):
        data.list_dicom_samples(pattern)


@pytest.mark.parametrize(
    "name", ["../__init__.py", "*.dcm", "/etc/passwd", "test_files/CT_small.dcm", ""]
)
def test_dicom_sample_takes_a_bare_file_name(name):
    with pytest.raises(ValueError, match="DICOM sample name"):
        data.dicom_sample(name)


@pytest.mark.parametrize(
    "call",
    [
        lambda: data.load_medmnist(3),
        lambda: data.load_medmnist("pneumoniamnist", ["train"]),
        lambda: data.load_ucr(None),
        lambda: data.load_uci_sequences(5),
        lambda: data.fetch(1.5),
        lambda: data.load_medmnist("pneumoniamnist", "train", size=32),
    ],
)
def test_bad_arguments_are_named_errors(empty_root, call):
    with pytest.raises((data.DatasetError, ValueError)):
        call()


def test_as_float_images_refuses_images_it_cannot_scale():
    assert data.as_float_images(np.full((1, 2, 2), 0.5)).max() == 0.5  # floats in [0, 1] kept
    with pytest.raises(ValueError, match="uint16 have no known scale"):
        data.as_float_images(np.full((1, 2, 2), 4095, np.uint16))
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        data.as_float_images(np.full((1, 2, 2), 255.0))  # float64 0-255, never rescaled
    with pytest.raises(ValueError, match="NaN/inf: 1"):
        data.as_float_images(np.array([[[0.5, np.nan]]]))


# --------------------------------------------------------------------------- data_home
def test_data_home_argument_wins_over_the_environment_like_scikit_learn(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "from_env"))
    assert data.data_root() == (tmp_path / "from_env").resolve()
    assert data.data_root(tmp_path / "given") == (tmp_path / "given").resolve()
    monkeypatch.delenv(data.DATA_ENV)
    assert data.data_root() == data.REPO_ROOT / "data"
    assert data.local_path("splice", tmp_path) == tmp_path.resolve() / "uci" / "splice.data"


def test_every_loader_reads_from_data_home(tmp_path, monkeypatch):
    real = require("splice").parents[1]  # the configured root that holds the real files
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    with pytest.raises(data.DatasetUnavailable, match="empty"):
        data.load_uci_sequences("splice")
    assert len(data.load_uci_sequences("splice", data_home=real)) == 3190
    assert data.load_ucr("ecg5000", "train", data_home=real)[0].shape == (500, 140)
    if (real / "medmnist" / "pneumoniamnist.npz").is_file():
        assert data.load_medmnist("pneumoniamnist", "test", data_home=real)[0].shape == (
            624,
            28,
            28,
        )
        assert (
            len(data.load_medmnist_splits("pneumoniamnist", n_train=10, data_home=real)["train"][0])
            == 10
        )
    assert "splice" in data.cached_datasets(real)


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("true", True), (" YES ", True), ("0", False), ("", False)]
)
def test_one_offline_switch_for_data_and_weights(monkeypatch, value, expected):
    from helpers import models

    monkeypatch.setenv(data.OFFLINE_ENV, value)
    assert data.offline() is expected and models._weights_offline() is expected


def test_registry_entries_without_a_checksum_are_listed_with_a_reason():
    missing = data.unverified_entries()
    assert set(missing) == {name for name, info in data.REGISTRY.items() if not info.known_hash}
    assert "ecg5000_test" in missing and all(len(reason) > 40 for reason in missing.values())
    with pytest.raises(ValueError, match="needs a checksum or the reason"):
        data.DatasetInfo("x", "x.txt", "https://example.org/x", None, "CC0", "me", "x")
