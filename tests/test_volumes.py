"""helpers.volumes: NIfTI reading and its named errors, shapes, segmentation metrics, models,
and a smoke run of benchmarks/volumes.py."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest

from helpers import data
from helpers import volumes as vol
from tests.conftest import IN_CI, REAL_ROOT, count_train_step_traces

nib = pytest.importorskip("nibabel")


def _write_nifti(path, array, affine=None):
    affine = np.eye(4) if affine is None else affine
    nib.save(nib.Nifti1Image(np.asarray(array), affine), str(path))
    return path


def _real_hippocampus():
    folder = REAL_ROOT / "msd" / "Task04_Hippocampus"
    if not (folder / "imagesTr").is_dir():
        reason = f"the hippocampus volumes are not at {folder} (set DL4H_DATA)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return folder


# --------------------------------------------------------------------------- reading, bad input
def test_read_nifti_round_trip_with_spacing_and_orientation(tmp_path):
    affine = np.diag([2.0, 1.0, 3.0, 1.0])
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    volume = vol.read_nifti(_write_nifti(tmp_path / "a.nii.gz", array, affine))
    np.testing.assert_array_equal(volume.array, array)
    assert volume.spacing == (2.0, 1.0, 3.0)
    assert volume.orientation == "RAS"
    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    assert vol.read_nifti(_write_nifti(tmp_path / "b.nii", array, flipped)).orientation == "LAS"


def test_truncated_nifti_raises_a_named_error(tmp_path):
    path = _write_nifti(tmp_path / "cut.nii.gz", np.random.rand(20, 20, 20).astype(np.float32))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(vol.VolumeFileError, match="cut.nii.gz"):
        vol.read_nifti(path)


def test_file_that_is_not_nifti_raises_a_named_error(tmp_path):
    path = tmp_path / "notes.nii.gz"
    path.write_bytes(gzip.compress(b"this is a text file, not an image\n" * 20))
    with pytest.raises(vol.VolumeFileError, match="notes.nii.gz"):
        vol.read_nifti(path)
    plain = tmp_path / "plain.nii"
    plain.write_text("hello")
    with pytest.raises(vol.VolumeFileError, match="plain.nii"):
        vol.read_nifti(plain)
    with pytest.raises(vol.VolumeFileError, match="no such"):
        vol.read_nifti(tmp_path / "missing.nii.gz")
    # the named errors are data errors, so callers can catch data.DatasetError
    assert issubclass(vol.VolumeFileError, data.DatasetError)


def test_pair_with_different_shapes_or_affines_raises(tmp_path):
    image = _write_nifti(tmp_path / "img.nii.gz", np.zeros((4, 5, 6), np.float32))
    small = _write_nifti(tmp_path / "small.nii.gz", np.zeros((4, 5, 5), np.uint8))
    with pytest.raises(vol.VolumeMismatchError, match=r"small\.nii\.gz.*\(4, 5, 5\)"):
        vol.read_pair(image, small)
    shifted = np.eye(4)
    shifted[0, 3] = 10.0
    moved = _write_nifti(tmp_path / "moved.nii.gz", np.zeros((4, 5, 6), np.uint8), shifted)
    with pytest.raises(vol.VolumeMismatchError, match="moved.nii.gz.*affine"):
        vol.read_pair(image, moved)


def test_label_values_outside_the_label_set_raise(tmp_path):
    image = _write_nifti(tmp_path / "img.nii.gz", np.zeros((4, 5, 6), np.float32))
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1, 1, 1] = 3
    bad = _write_nifti(tmp_path / "lab.nii.gz", labels)
    with pytest.raises(vol.LabelValueError, match=r"lab\.nii\.gz.*\[3\]"):
        vol.read_pair(image, bad)
    labels[1, 1, 1] = 2
    good = _write_nifti(tmp_path / "ok.nii.gz", labels)
    _, label = vol.read_pair(image, good)
    assert label.array.dtype == np.uint8 and label.array.max() == 2


def test_a_2d_batch_is_refused_where_volumes_are_needed():
    with pytest.raises(ValueError, match="3D volumes"):
        vol.check_3d_batch(np.zeros((5, 28, 28)), "train_images")
    assert vol.check_3d_batch(np.zeros((2, 4, 4, 4, 1))).shape == (2, 4, 4, 4)


def test_hippocampus_offline_without_data_is_unavailable(empty_root):
    with pytest.raises(data.DatasetUnavailable):
        vol.hippocampus_folder()


# --------------------------------------------------------------------------- shapes, intensities
@pytest.mark.parametrize("shape", [(3, 8, 5), (9, 2, 7), (6, 6, 6)])
def test_pad_or_crop_and_restore_round_trip(shape):
    rng = np.random.default_rng(0)
    volume = rng.integers(1, 9, size=shape)
    fitted, box = vol.pad_or_crop(volume, (6, 6, 6))
    assert fitted.shape == (6, 6, 6)
    back = vol.restore_shape(fitted, shape, box)
    kept = tuple(slice((s - min(s, 6)) // 2, (s - min(s, 6)) // 2 + min(s, 6)) for s in shape)
    np.testing.assert_array_equal(back[kept], volume[kept])  # what fitted survives intact
    assert (back == 0).sum() == volume.size - back[kept].size  # cropped-away voxels -> 0


def test_normalize_mri_and_window_ct():
    rng = np.random.default_rng(1)
    volume = np.zeros((10, 10, 10), np.float32)
    volume[2:8, 2:8, 2:8] = rng.normal(300, 50, (6, 6, 6))
    out = vol.normalize_mri(volume)
    inside = volume > 0
    assert abs(out[inside].mean()) < 1e-4 and abs(out[inside].std() - 1) < 1e-3
    np.testing.assert_allclose(vol.window_ct(np.array([-1000, 40, 240, 3000])), [0, 0.5, 1, 1])
    with pytest.raises(ValueError):
        vol.window_ct(np.zeros(2), width=0)


def test_memory_and_slices():
    assert vol.batch_memory_mb((64, 64, 64), batch=32) == pytest.approx(32.0)
    cube = np.arange(4 * 6 * 6 * 6).reshape(4, 6, 6, 6)
    s = vol.central_slices(cube)
    assert s.shape == (4, 6, 6, 3)
    np.testing.assert_array_equal(s[..., 0], cube[:, 3])
    np.testing.assert_array_equal(s[..., 2], cube[:, :, :, 3])
    slices, owner = vol.axial_slices(cube)
    assert slices.shape == (24, 6, 6, 1) and owner[6] == 1
    stack = vol.slice_stack(cube.astype(float), context=1)
    assert stack.shape == (24, 6, 6, 3)
    np.testing.assert_array_equal(stack[0, ..., 0], 0)  # no slice before the first
    np.testing.assert_array_equal(stack[1, ..., 0], cube[0, 0])
    np.testing.assert_array_equal(stack[1, ..., 2], cube[0, 2])
    assert len(vol.orthogonal_slices(cube[0])) == 3


def test_slices_along_another_axis_come_back_to_the_same_voxels():
    cube = np.arange(2 * 4 * 6 * 8, dtype=float).reshape(2, 4, 6, 8)
    stack = vol.slice_stack(cube, context=1, axis=3)  # 8 slices of 4 x 6 per volume
    assert stack.shape == (16, 4, 6, 3)
    np.testing.assert_array_equal(stack[9, ..., 1], cube[1, :, :, 1])
    np.testing.assert_array_equal(stack[9, ..., 2], cube[1, :, :, 2])
    with pytest.raises(ValueError, match="axis must be 1, 2 or 3"):
        vol.slice_stack(cube, axis=0)
    for axis in (1, 2, 3):  # the 2D model's input shape is what slice_stack yields per slice
        for context in (0, 1, 2):
            expected = vol.slice_stack(cube, context=context, axis=axis).shape[1:]
            assert vol.slice_input_shape(cube.shape[1:], context, axis) == expected
    with pytest.raises(ValueError, match="axis must be 1, 2 or 3"):
        vol.slice_input_shape(cube.shape[1:], 1, axis=4)
    assert vol.view_axes(["axial", "sagittal", "coronal"]) == [3, 1, 2]
    with pytest.raises(ValueError, match=r"unknown slicing view\(s\) \['Coronal'\]"):
        vol.view_axes(["axial", "Coronal"])

    class Echo:  # a "model" that returns its centre slice as the only class's probability
        def predict(self, x, batch_size, verbose):
            return x[..., 1:2]

    for axis in (1, 2, 3):
        prob = vol.segment_probabilities(Echo(), cube, context=1, axis=axis)
        assert prob.shape == (*cube.shape, 1)
        np.testing.assert_array_equal(prob[..., 0], cube)  # every voxel back in its place


def test_random_shift_moves_each_volume_by_whole_voxels():
    x = np.zeros((3, 8, 8, 8, 1), np.float32)
    x[:, 4, 4, 4] = 1
    out = vol.random_shift(x, 2, np.random.default_rng(0))
    assert out.shape == x.shape and out.sum() == 3
    for k in range(3):
        where = np.argwhere(out[k, ..., 0] == 1)[0]
        assert np.all(np.abs(where - 4) <= 2)
    np.testing.assert_array_equal(vol.random_shift(x, 0, np.random.default_rng(0)), x)


def test_real_adrenal_volumes_get_a_channel_axis():
    if not (REAL_ROOT / data.dataset_info("adrenalmnist3d").path).is_file():
        pytest.skip("AdrenalMNIST3D is not cached")
    splits = data.load_medmnist_splits("adrenalmnist3d", 28, n_train=40, data_home=REAL_ROOT)
    x, y = splits["train"]
    assert x.shape == (40, 28, 28, 28, 1) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0}  # shape masks, not CT intensities
    assert len(splits["val"][0]) == 98 and len(splits["test"][0]) == 298


def test_subject_split_is_disjoint_and_fixed_by_the_seed():
    cases = [f"c{i:03d}" for i in range(50)]
    split = vol.subject_split(cases, seed=3)
    assert [len(split[k]) for k in ("train", "val", "test")] == [35, 5, 10]
    assert set(split["train"]).isdisjoint(split["test"])
    assert set(split["val"]).isdisjoint(split["test"] + split["train"])
    assert split == vol.subject_split(cases, seed=3) != vol.subject_split(cases, seed=4)


# --------------------------------------------------------------------------- metrics
def test_dice_hand_cases():
    a = np.zeros((4, 4, 4), int)
    b = np.zeros((4, 4, 4), int)
    a[0, 0, :2] = 1  # 2 voxels
    b[0, 0, 1:4] = 1  # 3 voxels, 1 shared
    assert vol.dice(a, b) == pytest.approx(2 * 1 / 5)
    assert vol.dice(np.zeros_like(a), b) == 0.0  # empty prediction of a real structure
    assert vol.dice(np.zeros_like(a), np.zeros_like(b)) == 1.0  # absent and called absent
    with pytest.raises(ValueError):
        vol.dice(a, b[:3])


def test_hd95_hand_cases():
    a = np.zeros((12, 12, 12), int)
    b = np.zeros((12, 12, 12), int)
    a[5, 5, 2] = 1
    b[5, 5, 5] = 1
    assert vol.hd95(a, b) == pytest.approx(3.0)
    assert vol.hd95(a, b, spacing=(1, 1, 2)) == pytest.approx(6.0)  # spacing in mm
    assert np.isnan(vol.hd95(np.zeros_like(a), b))  # undefined, not 0 or infinity
    # one stray voxel 20 mm away: the Hausdorff distance is 20, its 95th percentile is 0
    cube = np.zeros((40, 12, 12), int)
    cube[1:9, 1:9, 1:9] = 1
    stray = cube.copy()
    stray[30, 5, 5] = 1
    assert vol.surface_distances(stray, cube).max() == pytest.approx(22.0)
    assert vol.hd95(stray, cube) == pytest.approx(0.0)
    # two cubes shifted by 2 voxels along x: every x-face voxel is 2 away, side voxels 0-2
    shifted = np.zeros_like(cube)
    shifted[3:11, 1:9, 1:9] = 1
    assert vol.hd95(shifted, cube) == pytest.approx(2.0)


def test_segmentation_scores_bland_altman_and_prior_correction():
    true = np.zeros((6, 6, 6), np.uint8)
    true[1:3, 1:3, 1:3] = 1
    true[3:5, 3:5, 3:5] = 2
    pred = true.copy()
    pred[3:5, 3:5, 3] = 0  # half of the posterior structure missed
    scores = vol.segmentation_scores(pred, true, spacing=(1, 1, 2))
    assert scores["dice_anterior"] == 1.0 and scores["hd95_anterior"] == 0.0
    assert scores["dice_posterior"] == pytest.approx(2 * 4 / 12)
    assert scores["volume_true_posterior"] == 16.0 and scores["volume_pred_posterior"] == 8.0
    assert scores["voxel_accuracy"] == pytest.approx(1 - 4 / 216)
    agreement = vol.bland_altman([10, 12, 14], [9, 12, 13])
    assert agreement["bias"] == pytest.approx(2 / 3)
    assert agreement["loa_high"] - agreement["loa_low"] == pytest.approx(2 * 1.96 * agreement["sd"])
    np.testing.assert_allclose(vol.prior_correction([0.75], {0: 1.0, 1: 3.0}), [0.5])
    np.testing.assert_allclose(vol.prior_correction([0.2, 0.9], {0: 1, 1: 1}), [0.2, 0.9])


# --------------------------------------------------------------------------- models
def test_models_shapes_loss_and_flips():
    import keras

    from helpers import config  # noqa: F401  (quiet TensorFlow import first)

    clf = vol.volume_classifier((8, 8, 8, 1), widths=(4, 8), convs_per_block=(1, 1), flip_axes=(3,))
    assert clf.output_shape == (None, 1)
    assert clf.get_layer("logits") is not None
    x = np.random.default_rng(0).random((2, 8, 8, 8, 1)).astype(np.float32)
    flip = clf.get_layer("flip3d")
    np.testing.assert_array_equal(flip(x, training=False), x)  # no flips at inference
    assert vol.volume_classifier((8, 8, 3), widths=(4, 8), convs_per_block=(1, 1)).output_shape == (
        None,
        1,
    )
    assert vol.unet((16, 8, 3), 3, base=4, depth=2).output_shape == (None, 16, 8, 3)
    assert vol.unet((8, 8, 8, 1), 3, base=2, depth=2).output_shape == (None, 8, 8, 8, 3)
    with pytest.raises(ValueError, match="divisible"):
        vol.unet((12, 8, 1), 3, depth=3)
    loss = vol.dice_ce_loss(3)
    labels = np.zeros((1, 4, 4, 1), np.int32)
    labels[0, :2, :2] = 1
    labels[0, 2:, 2:] = 2
    perfect = keras.ops.one_hot(labels[..., 0], 3) * 0.98 + 0.02 / 3
    uniform = np.full((1, 4, 4, 3), 1 / 3, np.float32)
    assert float(loss(labels, perfect)) < 0.15 < float(loss(labels, uniform))


def test_train_snapshots_averages_the_last_epochs(monkeypatch):
    from helpers import config

    config.set_seed(0)
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 8)[:, None]
    x = (rng.random((16, 8, 8, 8, 1)) * 0.1 + y[:, :, None, None, None] * 0.5).astype(np.float32)
    model = vol.volume_classifier((8, 8, 8, 1), widths=(4, 4), convs_per_block=(1, 1))
    traces = count_train_step_traces(model, monkeypatch)
    run = vol.train_snapshots(model, x, y, x, y, x, epochs=3, last_k=2, batch_size=8, tta_axes=(3,))
    assert traces["n"] == 1  # the optimizer is built before the first step (models.build_optimizer)
    assert len(run["val_auc"]) == 3 and len(run["test_scores"]) == 2
    np.testing.assert_allclose(run["test_score"], np.mean(run["test_scores"], axis=0))
    np.testing.assert_allclose(run["val_score"], np.mean(run["val_scores"][1:], axis=0))
    assert run["best_epoch"] == int(np.argmax(run["val_auc"])) + 1
    if run["best_epoch"] == 3:  # the best epoch is the last: the same weights
        np.testing.assert_allclose(run["best_epoch_test_score"], run["test_scores"][-1], atol=1e-6)
    with pytest.raises(ValueError, match="last_k"):
        vol.train_snapshots(model, x, y, x, y, epochs=2, last_k=3)


# --------------------------------------------------------------------------- real data
def test_train_segmenter_lowers_the_loss_and_traces_its_step_once(monkeypatch):
    from helpers import config

    config.set_seed(0)
    rng = np.random.default_rng(0)
    labels = np.zeros((4, 8, 8, 8), np.int32)
    labels[:, 2:5, 2:5, 2:5] = 1
    labels[:, 5:7, 5:7, 5:7] = 2
    images = (labels + rng.normal(0, 0.1, labels.shape)).astype(np.float32)
    model = vol.unet((8, 8, 8, 1), 3, base=4, depth=2)
    traces = count_train_step_traces(model, monkeypatch)
    run = vol.train_segmenter(
        model, {"images": images, "labels": labels}, epochs=4, context=None, batch_size=2
    )
    assert traces["n"] == 1
    assert run["loss"][-1] < run["loss"][0]


def test_real_hippocampus_pairs_fit_the_fixed_shape():
    folder = _real_hippocampus()
    cases = vol.hippocampus_cases(REAL_ROOT)
    assert len(cases) == 260
    assert vol.hippocampus_folder(REAL_ROOT) == folder
    loaded = vol.load_hippocampus(data_home=REAL_ROOT)
    # the slicing directions' names (VIEW_AXES) hold for every file's affine: fixing the
    # sagittal axis fixes left-right, the coronal one front-back, the axial one head-foot
    normal = {"sagittal": "LR", "coronal": "AP", "axial": "IS"}
    for case in loaded:
        assert case["spacing"] == (1.0, 1.0, 1.0)
        codes = nib.aff2axcodes(case["affine"])
        assert {v: codes[a - 1] in normal[v] for v, a in vol.VIEW_AXES.items()} == dict.fromkeys(
            normal, True
        ), (case["case"], codes)
        fitted, box = vol.pad_or_crop(case["label"], (40, 56, 40))
        # the benchmark's crop loses no labelled voxel, and restoring gives the original back
        assert np.bincount(fitted.ravel(), minlength=3)[1:].tolist() == (
            np.bincount(case["label"].ravel(), minlength=3)[1:].tolist()
        )
        np.testing.assert_array_equal(
            vol.restore_shape(fitted, case["label"].shape, box), case["label"]
        )
    background = np.mean([np.mean(c["label"] == 0) for c in loaded])
    assert background > 0.9  # why voxel accuracy says little


# --------------------------------------------------------------------------- benchmark
@pytest.mark.parametrize("task", ["adrenal", "hippocampus"])
def test_benchmark_smoke_writes_a_valid_report(task, tmp_path, monkeypatch):
    from benchmarks import volumes as bench
    from benchmarks.report import validate

    if task == "hippocampus":
        _real_hippocampus()
    elif not (REAL_ROOT / data.dataset_info("adrenalmnist3d").path).is_file():
        pytest.skip("AdrenalMNIST3D is not cached")
    monkeypatch.setenv("DL4H_PROFILE", "smoke")
    monkeypatch.setenv(data.DATA_ENV, str(REAL_ROOT))
    out = tmp_path / "report.json"
    report = bench.main(["--task", task, "--profile", "smoke", "--seeds", "0", "--out", str(out)])
    validate(json.loads(out.read_text()))
    assert report["profile"] == "smoke"
    assert os.path.getsize(out) > 0
    if task == "adrenal":
        assert 0 <= report["headline"]["test_auc"] <= 1
        assert report["reference"]["rows"]["auto-sklearn"] == {"test_auc": 0.828, "test_acc": 0.802}
    else:
        assert 0 <= report["headline"]["dice_anterior"] <= 1
        run = report["per_seed"][0]
        assert run["all_background_accuracy"] > 0.9


def test_hippocampus_benchmark_names_an_unknown_slicing_view():
    from benchmarks import volumes as bench

    plan = {"context": 1, "views": ("coronal", "saggital"), "split_seed": 0, "shape": (40, 56, 40)}
    cases = [{"case": f"hippocampus_{k:03d}"} for k in range(10)]
    with pytest.raises(ValueError, match=r"unknown slicing view\(s\) \['saggital'\]"):
        bench.run_hippocampus(plan, 0, cases)
