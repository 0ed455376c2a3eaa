"""helpers.dicom on the real pydicom / pydicom-data samples: reading, named errors, units,
windowing, resampling, de-identification, and the syllabus article's pre-processing bugs."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pydicom
import pytest

from helpers import data, dicom

READABLE = ["CT_small.dcm", "MR_small.dcm", "693_UNCR.dcm", "RG1_UNCR.dcm", "US1_UNCR.dcm",
            "emri_small.dcm", "liver.dcm"]
SALT = "unit-test-salt"


def sample(name: str) -> pydicom.Dataset:
    return dicom.read_dicom(data.dicom_sample(name))


# --------------------------------------------------------------------------- reading
@pytest.mark.parametrize(("name", "shape", "dtype"), [
    ("CT_small.dcm", (128, 128), np.int16),
    ("MR_small.dcm", (64, 64), np.int16),
    ("693_UNCR.dcm", (512, 512), np.int16),
    ("RG1_UNCR.dcm", (1955, 1841), np.uint16),
    ("US1_UNCR.dcm", (480, 640, 3), np.uint8),
    ("emri_small.dcm", (10, 64, 64), np.uint16),
    ("liver.dcm", (3, 512, 512), np.uint8),
])
def test_load_pixels_shapes_of_real_samples(name, shape, dtype):
    pixels = dicom.load_pixels(data.dicom_sample(name))
    assert pixels.shape == shape and pixels.dtype == dtype


def test_truncated_file_is_a_read_error():
    with pytest.raises(dicom.DicomReadError, match=r"MR_truncated\.dcm.*truncated.*8130 vs 8192"):
        dicom.load_pixels(data.dicom_sample("MR_truncated.dcm"))


def test_non_dicom_and_missing_files(tmp_path):
    text = tmp_path / "notes.dcm"
    text.write_text("this is a radiology report, not an image\n")
    with pytest.raises(dicom.DicomReadError, match=r"notes\.dcm is not a DICOM file.*DICM"):
        dicom.read_dicom(text)
    with pytest.raises(dicom.DicomReadError, match="no such file"):
        dicom.read_dicom(tmp_path / "absent.dcm")


def test_missing_pixel_data(tmp_path):
    ds = sample("CT_small.dcm")
    del ds.PixelData
    path = tmp_path / "no_pixels.dcm"
    ds.save_as(path)
    assert issubclass(dicom.MissingPixelData, dicom.DicomError)
    with pytest.raises(dicom.MissingPixelData, match=r"no_pixels\.dcm has no Pixel Data.*CT Image Storage"):
        dicom.load_pixels(path)


def test_compressed_without_decoder_names_the_packages():
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    if get_decoder(JPEGLSLossless).available_plugins:
        pytest.skip("a JPEG-LS decoder is installed here (pylibjpeg, pyjpegls or gdcm)")
    with pytest.raises(dicom.MissingDecoder, match=r"JPEG-LS Lossless.*Install pylibjpeg pylibjpeg-libjpeg"):
        dicom.load_pixels(data.dicom_sample("MR_small_jpeg_ls_lossless.dcm"))


def test_unsupported_photometric():
    with pytest.raises(dicom.UnsupportedPhotometric, match=r"'PALETTE COLOR'.*apply_color_lut"):
        dicom.load_pixels(data.dicom_sample("examples_palette.dcm"))
    ds = sample("MR_small.dcm")
    ds.PhotometricInterpretation = "HSV"  # retired in the standard
    with pytest.raises(dicom.UnsupportedPhotometric, match="'HSV' is not supported"):
        dicom.load_pixels(ds)


# --------------------------------------------------------------------------- units and display
def test_hounsfield_units_of_ct_small():
    ds = sample("CT_small.dcm")
    stored = dicom.load_pixels(ds)
    hu = dicom.hounsfield_units(ds, stored)
    assert hu.dtype == np.float32
    np.testing.assert_allclose(hu, stored.astype(np.float32) - 1024.0)  # slope 1, intercept -1024
    assert hu.min() == pytest.approx(128 - 1024) and hu.max() == pytest.approx(2191 - 1024)
    with pytest.raises(ValueError, match="defined for CT, not modality 'MR'"):
        dicom.hounsfield_units(sample("MR_small.dcm"))


def test_padding_becomes_air():
    ds = sample("693_UNCR.dcm")
    stored = dicom.load_pixels(ds)
    hu = dicom.hounsfield_units(ds, stored)
    assert (stored == -2000).any()
    assert hu[stored == -2000].max() == -1024.0 and hu.min() == -1024.0


def test_window_maps_the_range_to_unit_interval():
    values = np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0])
    out = dicom.window(values, *dicom.WINDOWS["brain"])  # 40 / 80: 0..80 HU
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(dicom.window(np.array([-200.0, 50.0]), 50, 500), [0.0, 0.5])
    with pytest.raises(ValueError, match="width must be positive"):
        dicom.window(values, 0, 0)


def test_voi_lut_and_monochrome1():
    ds = sample("vlut_04.dcm")  # a VOI LUT Sequence, 8-bit stored values -> 16-bit output
    out = dicom.apply_voi(ds, dicom.load_pixels(ds))
    assert out.dtype == np.float32 and out.min() == 0 and out.max() == 65535
    rg = sample("RG1_UNCR.dcm")
    assert rg.PhotometricInterpretation == "MONOCHROME1"
    image = np.array([[0.0, 0.25], [0.5, 1.0]])
    np.testing.assert_allclose(dicom.invert_monochrome1(image, "MONOCHROME1"), 1 - image)
    np.testing.assert_allclose(dicom.invert_monochrome1(image, "MONOCHROME2"), image)


def test_pixel_spacing_and_resampling():
    ds = sample("CT_small.dcm")
    spacing = dicom.pixel_spacing(ds)
    assert spacing == pytest.approx((0.661468, 0.661468))
    hu = dicom.hounsfield_units(ds)
    resampled, new = dicom.resample_isotropic(hu, spacing, 1.0)
    assert new == 1.0 and resampled.shape == (85, 85)  # 128 px * 0.661 mm = 84.7 mm
    assert abs(resampled.mean() - hu.mean()) < 5  # area averaging keeps the mean HU
    up, _ = dicom.resample_isotropic(np.ones((4, 2), np.float32), (1.0, 2.0))
    assert up.shape == (4, 4)  # anisotropic pixels become square at the finer spacing
    stack, _ = dicom.resample_isotropic(np.zeros((3, 10, 10)), (1.0, 1.0), 2.0)
    assert stack.shape == (3, 5, 5)
    with pytest.raises(dicom.MissingSpacing, match=r"PixelSpacing = \['0.000', '0.000'\]"):
        dicom.pixel_spacing(sample("RG1_UNCR.dcm"))  # a real CR with zero spacing
    with pytest.raises(dicom.MissingSpacing, match="no PixelSpacing"):
        dicom.pixel_spacing(sample("emri_small.dcm"))


def test_metadata_table_reads_headers():
    table = dicom.metadata_table([data.dicom_sample(n) for n in READABLE])
    assert list(table["modality"]) == ["CT", "MR", "CT", "CR", "US", "MR", "SEG"]
    assert table.loc[table.file == "emri_small.dcm", "frames"].item() == 10
    assert table.loc[table.file == "emri_small.dcm", "burned_in"].item() == "NO"


# --------------------------------------------------------------------------- de-identification
@pytest.mark.parametrize("name", READABLE)
def test_deidentify_every_readable_sample(name, tmp_path):
    original = sample(name)
    assert dicom.find_phi(original), "the sample should start with identifying data"
    clean = dicom.deidentify(original, SALT)
    path = tmp_path / "deid.dcm"
    clean.save_as(path, enforce_file_format=True)
    back = dicom.read_dicom(path)
    assert dicom.find_phi(back, original) == []
    assert back.PatientIdentityRemoved == "YES" and back.PatientName == "ANONYMOUS"
    assert not any(element.tag.is_private for element in back.iterall())
    raw = path.read_bytes()
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SOPInstanceUID", "StudyDate"):
        value = str(original.get(keyword, ""))
        if len(value) >= 4:
            assert value.encode() not in raw, f"{keyword} {value} left in the file"
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert back.SOPClassUID == original.SOPClassUID  # standard UIDs are kept
    np.testing.assert_array_equal(dicom.load_pixels(back), dicom.load_pixels(original))
    assert str(original.PatientName) == str(sample(name).PatientName)  # input not modified


def test_uids_are_remapped_consistently():
    ct = sample("CT_small.dcm")
    first, again = dicom.deidentify(ct, SALT), dicom.deidentify(ct, SALT)
    assert first.StudyInstanceUID == again.StudyInstanceUID != ct.StudyInstanceUID
    assert first.StudyInstanceUID.startswith("2.25.")
    assert dicom.deidentify(ct, "another salt").StudyInstanceUID != first.StudyInstanceUID
    seg = sample("liver.dcm")  # references CT instances inside nested sequences
    ref = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    clean = dicom.deidentify(seg, SALT)
    new_ref = clean.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    assert new_ref == dicom.remap_uid(ref, SALT)
    with pytest.raises(ValueError, match="salt"):
        dicom.remap_uid(ref, "")


def test_burned_in_annotation_is_refused():
    ds = sample("US1_UNCR.dcm")
    assert dicom.burned_in_annotation(ds) == "unknown"
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(dicom.BurnedInAnnotation, match="identifying text is part of the pixels"):
        dicom.deidentify(ds, SALT)
    assert dicom.deidentify(ds, SALT, allow_burned_in=True).BurnedInAnnotation == "YES"


def test_find_phi_reports_what_is_left():
    ds = dicom.deidentify(sample("CT_small.dcm"), SALT)
    leaky = copy.deepcopy(ds)
    leaky.InstitutionName = "JFK IMAGING CENTER"
    leaky.OperatorsName = "Doe^Jane"
    leaky.StudyInstanceUID = sample("CT_small.dcm").StudyInstanceUID
    problems = dicom.find_phi(leaky)
    assert any("InstitutionName" in p for p in problems)
    assert any("OperatorsName" in p for p in problems)
    assert any("original UID 1.3.6.1.4.1.5962" in p for p in problems)


# --------------------------------------------------------------------------- the article's bugs
def test_seed_preprocess_fails_on_real_images():
    grey = dicom.load_pixels(data.dicom_sample("CT_small.dcm"))
    with pytest.raises(IndexError, match="too many indices"):
        dicom.seed_preprocess(grey)
    rgb = dicom.load_pixels(data.dicom_sample("US1_UNCR.dcm"))
    with pytest.raises(cv2.error, match="Invalid number of channels"):
        dicom.seed_preprocess(rgb)
    single = rgb[..., :1]  # (h, w, 1): resize drops the axis, then the indexing fails
    with pytest.raises(IndexError):
        dicom.seed_preprocess(single)


@pytest.mark.parametrize(("name", "channels"), [("CT_small.dcm", 3), ("US1_UNCR.dcm", 3),
                                                ("RG1_UNCR.dcm", 3), ("US1_UNCR.dcm", 1),
                                                ("MR_small.dcm", 1)])
def test_preprocess_gives_what_the_model_expects(name, channels):
    image = dicom.load_pixels(data.dicom_sample(name))
    out = dicom.preprocess(image, 224, channels)
    assert out.shape == (224, 224, channels) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and out.max() > 0.5


def test_preprocess_keeps_aspect_and_channels():
    wide = np.zeros((10, 20), np.uint16)
    wide[:, 10:] = 1000
    out = dicom.preprocess(wide, 20, 3)
    assert out[:5, :, 0].max() == 0 and out[5:15, :, 0].max() == 1.0  # padded above and below
    assert np.array_equal(out[..., 0], out[..., 2])  # grey is repeated, not invented
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200
    red[0, 0] = 0
    grey = dicom.preprocess(red, 8, 1)
    assert grey.shape == (8, 8, 1) and grey[1, 1, 0] == pytest.approx(1.0)
    assert np.all(dicom.preprocess(np.full((5, 5), 7.0), 4, 3) == 0)  # constant image
    ct = sample("CT_small.dcm")
    brain = dicom.window(dicom.hounsfield_units(ct), *dicom.WINDOWS["brain"])
    kept = dicom.preprocess(brain, 128, 1, rescale=False)  # 128 -> 128: no interpolation
    np.testing.assert_allclose(kept[..., 0], brain, atol=1e-6)


def test_preprocess_rejects_bad_input():
    with pytest.raises(ValueError, match=r"expected a grey .* got \(4, 4, 2\)"):
        dicom.preprocess(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        dicom.preprocess(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"rescale=False needs an image in \[0, 1\], got \[-1024"):
        dicom.preprocess(np.array([[-1024.0, 0.0], [40.0, 80.0]]), rescale=False)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        dicom.preprocess(np.zeros((4, 4)), channels=2)


def test_keras3_adam_rejects_lr():
    import keras

    with pytest.raises(ValueError, match=r"not recognized: \{'lr': 0.001\}"):
        keras.optimizers.Adam(lr=0.001)
    assert float(keras.optimizers.Adam(learning_rate=0.001).learning_rate) == pytest.approx(0.001)
