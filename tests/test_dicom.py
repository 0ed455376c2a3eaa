"""helpers.dicom on the real pydicom / pydicom-data samples: reading, named errors, units,
windowing, resampling, de-identification (tested like a red team would), and the syllabus
article's pre-processing bugs."""

from __future__ import annotations

import ast
import copy
import io
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from helpers import data, dicom

READABLE = [
    "CT_small.dcm",
    "MR_small.dcm",
    "693_UNCR.dcm",
    "RG1_UNCR.dcm",
    "US1_UNCR.dcm",
    "emri_small.dcm",
    "liver.dcm",
]
SALT = "unit-test-salt"


def sample(name: str) -> pydicom.Dataset:
    return dicom.read_dicom(data.dicom_sample(name))


# --------------------------------------------------------------------------- reading
@pytest.mark.parametrize(
    ("name", "shape", "dtype"),
    [
        ("CT_small.dcm", (128, 128), np.int16),
        ("MR_small.dcm", (64, 64), np.int16),
        ("693_UNCR.dcm", (512, 512), np.int16),
        ("RG1_UNCR.dcm", (1955, 1841), np.uint16),
        ("US1_UNCR.dcm", (480, 640, 3), np.uint8),
        ("emri_small.dcm", (10, 64, 64), np.uint16),
        ("liver.dcm", (3, 512, 512), np.uint8),
    ],
)
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


def test_wrong_paths_and_permissions_are_named_errors(tmp_path, monkeypatch):
    with pytest.raises(dicom.DicomFileNotFound, match=r"is a folder, not a file.*glob") as info:
        dicom.read_dicom(tmp_path)
    assert isinstance(info.value, FileNotFoundError) and str(tmp_path) in str(info.value)
    with pytest.raises(FileNotFoundError, match=r"absent\.dcm: no such file.*absolute path"):
        dicom.load_pixels(tmp_path / "absent.dcm")
    locked = tmp_path / "locked.dcm"
    locked.write_bytes(data.dicom_sample("CT_small.dcm").read_bytes())
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: let the read fail as it would

        def refuse(path, **_):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(pydicom, "dcmread", refuse)
    try:
        with pytest.raises(
            dicom.DicomPermissionError, match=r"locked\.dcm: permission denied.*read access"
        ) as info:
            dicom.read_dicom(locked)
        assert isinstance(info.value, PermissionError) and isinstance(info.value, dicom.DicomError)
    finally:
        locked.chmod(0o600)


def nested_sequence_file(path: Path, depth: int, *, undefined_length: bool) -> Path:
    """A small valid file whose ReferencedSeriesSequence nests ``depth`` levels deep."""
    ds = Dataset()
    ds.SOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    ds.SOPInstanceUID = "1.2.3.4"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    sq_tag, item_tag = b"\x08\x00\x15\x11SQ\x00\x00", b"\xfe\xff\x00\xe0"
    if undefined_length:  # open every level, then close them all: no recursion needed here
        undefined = b"\xff\xff\xff\xff"
        close = b"\xfe\xff\x0d\xe0" + bytes(4) + b"\xfe\xff\xdd\xe0" + bytes(4)
        nested = (sq_tag + undefined + item_tag + undefined) * depth + close * depth
    else:  # explicit lengths, built from the inside out
        nested = b""
        for _ in range(depth):
            item = item_tag + len(nested).to_bytes(4, "little") + nested
            nested = sq_tag + len(item).to_bytes(4, "little") + item
    path.write_bytes(buffer.getvalue() + nested)
    return path


@pytest.mark.parametrize("undefined_length", [True, False])
def test_sequences_nested_thousands_deep_are_refused(tmp_path, undefined_length):
    path = nested_sequence_file(tmp_path / "deep.dcm", 3000, undefined_length=undefined_length)
    with pytest.raises(dicom.SequenceTooDeep, match=r"deep\.dcm: sequence nesting too deep"):
        dicom.read_dicom(path)
    shallow = nested_sequence_file(tmp_path / "ok.dcm", 10, undefined_length=undefined_length)
    assert dicom.check_nesting(dicom.read_dicom(shallow)) == 10


def test_deep_nesting_in_memory_is_refused_before_recursing():
    ds = sample("CT_small.dcm")
    item = ds
    for _ in range(dicom.MAX_SEQUENCE_DEPTH + 1):
        child = Dataset()
        item.ReferencedSeriesSequence = Sequence([child])
        item = child
    with pytest.raises(dicom.SequenceTooDeep, match=r"CT_small\.dcm: sequence nesting too deep"):
        dicom.deidentify(ds, SALT)
    with pytest.raises(dicom.SequenceTooDeep):
        dicom.find_phi(ds)


def test_no_error_message_advises_deleting_data():
    tree = ast.parse(Path(dicom.__file__).read_text())
    messages = [
        " ".join(
            node.value
            for node in ast.walk(raise_node)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        )
        for raise_node in ast.walk(tree)
        if isinstance(raise_node, ast.Raise)
    ]
    assert len(messages) > 30
    for message in messages:
        assert not re.search(r"\bdelet|\berase|\brm\b|remove (it|the|this|your)", message, re.I), (
            message
        )


def test_missing_pixel_data(tmp_path):
    ds = sample("CT_small.dcm")
    del ds.PixelData
    path = tmp_path / "no_pixels.dcm"
    ds.save_as(path)
    assert issubclass(dicom.MissingPixelData, dicom.DicomError)
    with pytest.raises(
        dicom.MissingPixelData, match=r"no_pixels\.dcm has no Pixel Data.*CT Image Storage"
    ):
        dicom.load_pixels(path)


def test_compressed_without_decoder_names_the_packages():
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    if get_decoder(JPEGLSLossless).available_plugins:
        pytest.skip("a JPEG-LS decoder is installed here (pylibjpeg, pyjpegls or gdcm)")
    with pytest.raises(
        dicom.MissingDecoder, match=r"JPEG-LS Lossless.*Install pylibjpeg pylibjpeg-libjpeg"
    ):
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
    with pytest.raises(
        ValueError, match="MR_small.dcm: Hounsfield units are defined for CT, not modality 'MR'"
    ):
        dicom.hounsfield_units(sample("MR_small.dcm"))


def test_rescale_slope_zero_is_a_named_error():
    ds = sample("CT_small.dcm")
    ds.RescaleSlope = 0
    with pytest.raises(
        dicom.InvalidRescale,
        match=r"CT_small\.dcm: RescaleSlope is 0.*same value.*fix RescaleSlope",
    ) as info:
        dicom.hounsfield_units(ds)
    assert isinstance(info.value, ValueError) and isinstance(info.value, dicom.DicomError)
    ds.RescaleSlope, ds.RescaleIntercept = 1, "nan"
    with pytest.raises(dicom.InvalidRescale, match="not finite"):
        dicom.hounsfield_units(ds)
    del ds.RescaleIntercept
    with pytest.raises(dicom.InvalidRescale, match="no RescaleSlope/RescaleIntercept"):
        dicom.hounsfield_units(ds)


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
    path = dicom.save_deidentified(clean, tmp_path / "deid.dcm")
    back = dicom.read_dicom(path)
    assert dicom.find_phi(back, original) == []
    assert dicom.find_phi(path, original) == []  # the raw bytes too
    assert back.PatientIdentityRemoved == "YES" and back.PatientName == "ANONYMOUS"
    assert back.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert not any(element.tag.is_private for element in back.iterall())
    raw = path.read_bytes()
    assert raw[:128] == bytes(128) and raw[128:132] == b"DICM"
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SOPInstanceUID", "StudyDate"):
        value = str(original.get(keyword, ""))
        if len(value) >= 4:
            assert value.encode() not in raw, f"{keyword} {value} left in the file"
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert back.SOPClassUID == original.SOPClassUID  # standard UIDs are kept
    np.testing.assert_array_equal(dicom.load_pixels(back), dicom.load_pixels(original))
    assert str(original.PatientName) == str(sample(name).PatientName)  # input not modified


# The red team: a patient whose name and record number were typed into every free-text
# field a hospital system offers, into the preamble, a private tag and a nested sequence.
FAMILY, GIVEN, MRN = "Quist", "Hedwig", "MRN-48213977"
NEEDLES = [FAMILY, GIVEN, MRN, MRN.removeprefix("MRN-")]
INJECTED = {  # keyword: free text, each listed in PS3.15 Table E.1-1
    "RequestedProcedureDescription": f"CT head for {GIVEN} {FAMILY}, {MRN}",
    "ReasonForTheRequestedProcedure": f"fall at home ({FAMILY.upper()}, {GIVEN.upper()})",
    "PatientState": f"{GIVEN} sedated",
    "AdmittingDiagnosesDescription": f"subdural haematoma? pt {FAMILY} {MRN}",
    "DerivationDescription": f"reformatted for {FAMILY}^{GIVEN}",
    "IssuerOfPatientID": f"HOSPITAL-{MRN}",
}


def red_team_original(name: str, tmp_path: Path) -> tuple[Path, pydicom.Dataset]:
    ds = sample(name)
    ds.PatientName = f"{FAMILY}^{GIVEN}"
    ds.PatientID = MRN
    for keyword, text in INJECTED.items():
        setattr(ds, keyword, text)
    ds.preamble = f"{FAMILY} {GIVEN} {MRN}".encode().ljust(128, b"\0")
    ds.private_block(0x0011, "RED TEAM", create=True).add_new(
        0x01, "LO", f"{GIVEN.lower()} {FAMILY.lower()}"
    )
    series = Dataset()  # ReferencedSeriesSequence is not in the table: kept, items cleaned
    series.SeriesInstanceUID = ds.SeriesInstanceUID
    series.PatientName = f"{FAMILY}^{GIVEN}"
    series.PatientID = MRN
    series.RequestedProcedureDescription = f"{FAMILY} follow-up"
    series.TextValue = f"note: {GIVEN} {FAMILY} called"  # unlisted free text
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    inner.ImageComments = f"{GIVEN}'s scan"
    series.ReferencedInstanceSequence = Sequence([inner])
    ds.ReferencedSeriesSequence = Sequence([series])
    path = tmp_path / "identifiable.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, dicom.read_dicom(path)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_red_team_nothing_identifying_reaches_the_written_file(name, tmp_path):
    path, original = red_team_original(name, tmp_path)
    raw = path.read_bytes()
    assert all(needle.lower().encode() in raw.lower() for needle in NEEDLES)  # the bait is there
    assert FAMILY.encode() in raw[:128]
    clean = dicom.deidentify(original, SALT)
    out = dicom.save_deidentified(clean, tmp_path / "deidentified.dcm")
    written = out.read_bytes()
    for needle in NEEDLES:  # independent of find_phi: any case, anywhere, pixels included
        assert needle.lower().encode() not in written.lower(), f"{needle!r} leaked into the file"
    assert written[:128] == bytes(128)
    back = dicom.read_dicom(out)
    assert dicom.find_phi(out, original) == []
    series = back.ReferencedSeriesSequence[0]  # the nested items were cleaned, not dropped
    assert (
        series.SeriesInstanceUID
        == back.SeriesInstanceUID
        == dicom.remap_uid(original.SeriesInstanceUID, SALT)
    )
    assert series.PatientName == "ANONYMOUS" and series.PatientID == back.PatientID != MRN
    assert series.RequestedProcedureDescription == "" and series.TextValue == ""
    inner = series.ReferencedInstanceSequence[0]
    assert "ImageComments" not in inner and inner.ReferencedSOPInstanceUID == back.SOPInstanceUID


def test_red_team_the_checker_finds_every_planted_leak(tmp_path):
    path, original = red_team_original("CT_small.dcm", tmp_path)
    findings = dicom.find_phi(path, original)  # NOT de-identified: every plant must show
    content = [f for f in findings if "from the original" in f]
    for keyword in INJECTED:
        assert any(f.startswith(f"{keyword} ") and "contains" in f for f in content), keyword
    assert any(re.match(r"private \(0011,1\d01\): contains 'Hedwig'", f) for f in content)
    assert any(
        "ReferencedSeriesSequence[0] > TextValue (0040,A160): contains 'Quist'" in f
        for f in content
    )
    assert any(
        "ReferencedInstanceSequence[0] > ImageComments (0020,4000): contains 'Hedwig'" in f
        for f in content
    )
    assert any(
        f.startswith("identifiable.dcm: 'Quist' at byte") and f.endswith("(preamble)")
        for f in findings
    )
    assert dicom.scan_file_for(path, ["mrn-48213977"])[0].endswith("(preamble)")
    assert dicom.scan_file_for(path, ["Absent^Person"]) == []
    # a name left in an attribute the profile keeps: only the comparison with the original
    # can see it, and it does, as a substring, whatever the case
    leaky = dicom.deidentify(original, SALT)
    leaky.Manufacturer = f"ACME for {GIVEN.upper()} {FAMILY.lower()}"
    assert dicom.find_phi(leaky) == []
    assert dicom.find_phi(leaky, original) == [
        "Manufacturer (0008,0070): contains 'Quist' from the original",
        "Manufacturer (0008,0070): contains 'Hedwig' from the original",
    ]
    assert dicom.find_phi(leaky, identifiers=["acme"]) == [
        "Manufacturer (0008,0070): contains 'acme' from the original"
    ]
    with pytest.raises(ValueError, match="too short"):
        dicom.find_phi(leaky, identifiers=["HQ"])


def tag(keyword: str) -> int:
    return pydicom.datadict.tag_for_keyword(keyword)


@pytest.mark.parametrize(
    ("keyword", "action", "value", "expected"),
    [
        ("PatientAddress", "X", "1 Main Street", None),
        ("IssuerOfPatientID", "X", "HOSPITAL A", None),
        ("StudyDescription", "X", "CT HEAD", None),
        ("OtherPatientNames", "X", "Doe^John", None),
        ("StudyDate", "Z", "20240102", ""),
        ("AccessionNumber", "Z", "A123456", ""),
        ("ReferringPhysicianName", "Z", "House^Gregory", ""),
        ("PatientName", "Z", "Doe^Jane", "ANONYMOUS"),
        ("ClinicalTrialSponsorName", "D", "ACME PHARMA", "ANONYMIZED"),
        ("SafePositionExitDate", "D", "20240102", "19000101"),
        ("PersonName", "D", "Doe^Jane", "ANONYMOUS"),
        ("ContentDate", "Z/D", "20240102", ""),
        ("RequestedProcedureDescription", "X/Z", "CT head, Jane Doe", ""),
        ("AcquisitionDate", "X/Z", "20240102", ""),
        ("ProtocolName", "X/D", "Head Doe", "ANONYMIZED"),
        ("SeriesDate", "X/D", "20240102", "19000101"),
        ("InstitutionName", "X/Z/D", "St Elsewhere", ""),
        ("StationName", "X/Z/D", "CT01", ""),
        ("Manufacturer", "K", "ACME", "ACME"),  # not in the table, a known-safe technical attribute
        ("ContentDescription", "K", "Jane's scan", ""),  # not in the table, free text: emptied
        ("ReceivingAE", "X", "PACS1", None),
    ],
)
def test_each_action_of_the_table(keyword, action, value, expected):
    assert dicom.profile_action(tag(keyword)) == action
    ds = sample("CT_small.dcm")
    setattr(ds, keyword, value)
    out = dicom.deidentify(ds, SALT)
    if expected is None:
        assert keyword not in out
    else:
        assert str(out[keyword].value) == expected
    assert dicom.find_phi(out, ds) == []


def test_uid_actions_and_sequences():
    ds = sample("CT_small.dcm")
    assert dicom.profile_action(tag("StudyInstanceUID")) == "U"
    assert dicom.profile_action(tag("PatientID")) == "Z/D"
    assert dicom.profile_action(tag("ReferencedImageSequence")) == "X/Z/U*"
    assert dicom.profile_action(tag("RequestAttributesSequence")) == "X"
    assert dicom.profile_action(0x60004000) == "X" and dicom.profile_action(0x60224000) == "X"
    reference = Dataset()
    reference.ReferencedSOPClassUID = ds.SOPClassUID
    reference.ReferencedSOPInstanceUID = "1.2.3.999"
    reference.ImageComments = "Doe"
    ds.ReferencedImageSequence = Sequence([reference])
    request = Dataset()
    request.RequestedProcedureID = "RP-1"
    ds.RequestAttributesSequence = Sequence([request])
    ds.add_new(0x60004000, "LT", "overlay note by Dr Doe")
    out = dicom.deidentify(ds, SALT)
    assert out.StudyInstanceUID == dicom.remap_uid(ds.StudyInstanceUID, SALT)
    assert out.FrameOfReferenceUID == dicom.remap_uid(ds.FrameOfReferenceUID, SALT)
    assert out.PatientID == dicom.deidentify(ds, SALT).PatientID != ds.PatientID
    assert re.fullmatch(r"\d{16}", out.PatientID)
    kept = out.ReferencedImageSequence[0]
    assert kept.ReferencedSOPInstanceUID == dicom.remap_uid("1.2.3.999", SALT)
    assert kept.ReferencedSOPClassUID == ds.SOPClassUID and "ImageComments" not in kept
    assert "RequestAttributesSequence" not in out and 0x60004000 not in out
    assert out.LongitudinalTemporalInformationModified == "REMOVED"


def test_the_profile_says_what_it_applies():
    assert dicom.PROFILE_EDITION in dicom.DEIDENTIFICATION_METHOD
    table = dicom.profile_table()
    assert len(table) > 600 and set(table.action) <= set(dicom.ACTIONS)
    assert table.loc[table.keyword == "PatientName", "action"].item() == "Z"
    options = dicom.PROFILE_OPTIONS
    assert options["Basic Application Level Confidentiality Profile (113100)"].startswith("applied")
    assert all(
        status.startswith("not applied")
        for option, status in options.items()
        if "113100" not in option
    )
    assert "BurnedInAnnotation" in options["Clean Pixel Data Option (113101)"]


def test_uids_are_remapped_consistently():
    ct = sample("CT_small.dcm")
    first, again = dicom.deidentify(ct, SALT), dicom.deidentify(ct, SALT)
    assert first.StudyInstanceUID == again.StudyInstanceUID != ct.StudyInstanceUID
    assert first.StudyInstanceUID.startswith("2.25.")
    assert dicom.deidentify(ct, "another salt").StudyInstanceUID != first.StudyInstanceUID
    seg = sample("liver.dcm")  # references CT instances inside nested sequences
    ref = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    clean = dicom.deidentify(seg, SALT)
    new_ref = (
        clean.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    )
    assert new_ref == dicom.remap_uid(ref, SALT)
    with pytest.raises(ValueError, match="salt"):
        dicom.remap_uid(ref, "")
    with pytest.raises(ValueError, match="non-empty salt"):
        dicom.deidentify(ct, "")


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
    leaky.preamble = b"Doe".ljust(128, b"\0")
    problems = dicom.find_phi(leaky)
    assert any("InstitutionName" in p for p in problems)
    assert any("OperatorsName" in p for p in problems)
    assert any("original UID 1.3.6.1.4.1.5962" in p for p in problems)
    assert any(p.startswith("preamble: 3 of 128 bytes are not zero") for p in problems)


# --------------------------------------------------------------------------- writing the copy
def test_the_copy_carries_no_path_and_never_replaces_the_original(tmp_path):
    original_path = tmp_path / "original.dcm"
    original_path.write_bytes(data.dicom_sample("CT_small.dcm").read_bytes())
    before = original_path.read_bytes()
    original = dicom.read_dicom(original_path)
    clean = dicom.deidentify(original, SALT)
    assert clean.filename is None and original.filename == str(original_path)
    with pytest.raises(
        dicom.OutputExists, match=r"original\.dcm already exists.*overwrite=True"
    ) as info:
        dicom.save_deidentified(clean, original_path)
    assert isinstance(info.value, FileExistsError) and isinstance(info.value, dicom.DicomError)
    with pytest.raises(dicom.OutputExists, match="not de-identified.*never replaced"):
        dicom.save_deidentified(clean, original_path, overwrite=True)
    assert original_path.read_bytes() == before
    out = dicom.save_deidentified(clean, tmp_path / "copy.dcm")
    with pytest.raises(dicom.OutputExists):
        dicom.save_deidentified(clean, out)
    again = dicom.deidentify(original, "another salt")
    assert dicom.save_deidentified(again, out, overwrite=True) == out  # an earlier copy: replaced
    assert dicom.read_dicom(out).StudyInstanceUID == again.StudyInstanceUID
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.dcm", "original.dcm"]


def test_save_deidentified_refuses_bad_input(tmp_path):
    original = sample("CT_small.dcm")
    with pytest.raises(
        dicom.NotDeidentified, match="not marked PatientIdentityRemoved=YES.*deidentify"
    ):
        dicom.save_deidentified(original, tmp_path / "a.dcm")
    edited = dicom.deidentify(original, SALT)
    edited.OperatorsName = "Doe^Jane"
    with pytest.raises(
        dicom.NotDeidentified, match="find_phi still finds 1 problem.*OperatorsName"
    ):
        dicom.save_deidentified(edited, tmp_path / "a.dcm")
    clean = dicom.deidentify(original, SALT)
    with pytest.raises(dicom.DicomWriteError, match="is a folder"):
        dicom.save_deidentified(clean, tmp_path)
    with pytest.raises(dicom.DicomWriteError, match="does not exist; create it first"):
        dicom.save_deidentified(clean, tmp_path / "missing" / "a.dcm")
    assert list(tmp_path.iterdir()) == []


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


@pytest.mark.parametrize(
    ("name", "channels"),
    [
        ("CT_small.dcm", 3),
        ("US1_UNCR.dcm", 3),
        ("RG1_UNCR.dcm", 3),
        ("US1_UNCR.dcm", 1),
        ("MR_small.dcm", 1),
    ],
)
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
