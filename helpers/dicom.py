"""DICOM: reading with named errors, physical units, display, resampling, de-identification.

The functions follow the path of a medical image into a model. :func:`read_dicom` and
:func:`load_pixels` read a file and decode its pixels, raising one of the
:class:`DicomError` subclasses when the input is bad (truncated, not DICOM, no pixels, a
compressed transfer syntax without its decoder, an unsupported photometric
interpretation). :func:`hounsfield_units`, :func:`window`, :func:`apply_voi`,
:func:`invert_monochrome1` and :func:`resample_isotropic` turn stored values into physical
units and displayable or trainable images. :func:`deidentify` and :func:`find_phi` apply
and check a subset of the DICOM basic application-level confidentiality profile
(PS3.15 Annex E). :func:`seed_preprocess` keeps the syllabus article's broken
pre-processing function as written, for demonstration; :func:`preprocess` is the
corrected one.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
)


# --------------------------------------------------------------------------- errors
class DicomError(Exception):
    """Base class of every DICOM problem this module reports."""


class DicomReadError(DicomError):
    """The file is missing, is not DICOM, or is truncated or corrupt."""


class MissingPixelData(DicomError):
    """The dataset has no Pixel Data element (e.g. a structured report or a stripped copy)."""


class MissingDecoder(DicomError):
    """The pixels use a compressed transfer syntax whose decoder is not installed."""


class UnsupportedPhotometric(DicomError):
    """The photometric interpretation is not one this module converts (e.g. PALETTE COLOR)."""


class MissingSpacing(DicomError):
    """The dataset has no usable (present and positive) pixel spacing."""


class BurnedInAnnotation(DicomError):
    """The pixels are flagged as containing burned-in text (BurnedInAnnotation == YES)."""


# --------------------------------------------------------------------------- reading
SUPPORTED_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422",
                         "YBR_ICT", "YBR_RCT")

# Packages that give pydicom a decoder, by family of transfer syntax.
DECODER_PACKAGES = {
    "JPEG-LS": "pylibjpeg pylibjpeg-libjpeg (or pyjpegls, or python-gdcm)",
    "JPEG 2000": "pylibjpeg pylibjpeg-openjpeg (or Pillow built with OpenJPEG, or python-gdcm)",
    "JPEG": "pylibjpeg pylibjpeg-libjpeg (or Pillow for 8-bit baseline, or python-gdcm)",
}


def _decoder_hint(transfer_syntax: str) -> str:
    if transfer_syntax in JPEGLSTransferSyntaxes:
        family = "JPEG-LS"
    elif transfer_syntax in JPEG2000TransferSyntaxes:
        family = "JPEG 2000"
    elif transfer_syntax in JPEGTransferSyntaxes:
        family = "JPEG"
    else:
        return "python-gdcm"
    return DECODER_PACKAGES[family]


def read_dicom(path: str | os.PathLike[str], *, stop_before_pixels: bool = False) -> Dataset:
    """Read a DICOM Part 10 file into a pydicom ``Dataset``.

    A missing file, a file without the DICOM preamble and ``DICM`` prefix, or a header that
    cannot be parsed raises :class:`DicomReadError` naming the file. Pixels are decoded
    later, by :func:`load_pixels`, where the remaining errors are detected.
    """
    path = Path(path)
    if not path.is_file():
        raise DicomReadError(f"{path}: no such file")
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as error:
        raise DicomReadError(f"{path.name} is not a DICOM file (no 'DICM' prefix after the "
                             f"128-byte preamble): {error}") from error
    except (EOFError, OSError, ValueError, KeyError) as error:
        raise DicomReadError(f"{path.name}: the DICOM header is truncated or corrupt "
                             f"({type(error).__name__}: {error})") from error


def load_pixels(source: Dataset | str | os.PathLike[str]) -> np.ndarray:
    """Decode the stored pixel values of a dataset (or of the file at ``source``).

    Returns the raw stored values with their native dtype: ``(rows, cols)`` for one grey
    frame, ``(frames, rows, cols)`` for a multi-frame image, with a last axis of 3 (RGB)
    for colour. No rescale, window or inversion is applied. Raises
    :class:`MissingPixelData`, :class:`UnsupportedPhotometric`, :class:`MissingDecoder`
    (naming the packages to install) or :class:`DicomReadError` (truncated pixel data).
    """
    ds = source if isinstance(source, Dataset) else read_dicom(source)
    name = Path(str(getattr(ds, "filename", None) or "dataset")).name
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise MissingPixelData(f"{name} has no Pixel Data element (7FE0,0010); "
                               f"SOP class: {getattr(ds.get('SOPClassUID'), 'name', 'unknown')}")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in SUPPORTED_PHOTOMETRIC:
        hint = (" Convert it with pydicom.pixels.apply_color_lut first."
                if photometric == "PALETTE COLOR" else "")
        raise UnsupportedPhotometric(
            f"{name}: photometric interpretation {photometric or '(missing)'!r} is not "
            f"supported; expected one of {', '.join(SUPPORTED_PHOTOMETRIC)}.{hint}")
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    try:
        return ds.pixel_array
    except (RuntimeError, NotImplementedError) as error:
        if syntax is not None and syntax.is_compressed:
            raise MissingDecoder(
                f"{name}: cannot decode {syntax.name} pixel data: no decoder is installed. "
                f"Install {_decoder_hint(syntax)}. pydicom said: {error}") from error
        raise DicomReadError(f"{name}: cannot decode the pixel data: {error}") from error
    except (ValueError, EOFError) as error:
        raise DicomReadError(f"{name}: the pixel data is truncated or inconsistent with the "
                             f"header: {error}") from error


# --------------------------------------------------------------------------- physical units
def hounsfield_units(ds: Dataset, pixels: np.ndarray | None = None,
                     padding_hu: float = -1024.0) -> np.ndarray:
    """Convert a CT's stored values to Hounsfield units: ``HU = slope * stored + intercept``.

    ``pixels`` defaults to :func:`load_pixels`. Pixels equal to ``PixelPaddingValue`` (the
    area outside the reconstructed field of view) are set to ``padding_hu`` (air). Raises
    ``ValueError`` for a dataset that is not CT or lacks the rescale attributes.
    """
    if ds.get("Modality") != "CT":
        raise ValueError(f"Hounsfield units are defined for CT, not modality {ds.get('Modality')!r}")
    if "RescaleSlope" not in ds or "RescaleIntercept" not in ds:
        raise ValueError("the CT has no RescaleSlope/RescaleIntercept: stored values cannot "
                         "be converted to Hounsfield units")
    stored = load_pixels(ds) if pixels is None else np.asarray(pixels)
    hu = stored.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    padding = ds.get("PixelPaddingValue")
    if padding is not None:
        hu[stored == padding] = padding_hu
    return hu


# Window (centre, width) in HU: common radiology presets.
WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}


def window(image: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear window: map ``[center - width/2, center + width/2]`` to ``[0, 1]`` and clip.

    Values below the window become 0 (black), above it 1 (white). ``width`` must be
    positive. Returns ``float32``.
    """
    if width <= 0:
        raise ValueError(f"window width must be positive, got {width}")
    low = center - width / 2.0
    return np.clip((np.asarray(image, dtype=np.float32) - low) / width, 0.0, 1.0)


def apply_voi(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """Apply the dataset's first VOI transform (VOI LUT Sequence, else Window Center/Width).

    A thin wrapper of ``pydicom.pixels.apply_voi_lut`` that returns ``float32``; when the
    dataset defines no VOI transform the pixels are returned unchanged (as ``float32``).
    """
    from pydicom.pixels import apply_voi_lut

    return np.asarray(apply_voi_lut(np.asarray(pixels), ds), dtype=np.float32)


def invert_monochrome1(image: np.ndarray, photometric: str) -> np.ndarray:
    """Make a ``MONOCHROME1`` image (low values white) read like ``MONOCHROME2``.

    The image is mirrored within its own range (``min + max - image``), so a
    ``[0, 1]`` image becomes ``1 - image``. Other photometric interpretations are returned
    unchanged; every result is ``float32``.
    """
    image = np.asarray(image, dtype=np.float32)
    if str(photometric).strip() != "MONOCHROME1":
        return image
    return image.min() + image.max() - image


# --------------------------------------------------------------------------- geometry
def pixel_spacing(ds: Dataset) -> tuple[float, float]:
    """Physical size of a pixel in mm as ``(row spacing, column spacing)``.

    Looks at ``PixelSpacing``, then at ``ImagerPixelSpacing`` (projection radiographs),
    then at the shared functional groups of enhanced multi-frame objects. Missing, zero or
    negative spacing raises :class:`MissingSpacing`: a size in mm cannot be guessed.
    """
    candidates: list[tuple[str, Any]] = [("PixelSpacing", ds.get("PixelSpacing")),
                                         ("ImagerPixelSpacing", ds.get("ImagerPixelSpacing"))]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and "PixelMeasuresSequence" in shared[0]:
        candidates.append(("PixelMeasuresSequence", shared[0].PixelMeasuresSequence[0].get("PixelSpacing")))
    problems = []
    for keyword, value in candidates:
        if value is None:
            continue
        spacing = tuple(float(v) for v in value)
        if len(spacing) == 2 and min(spacing) > 0:
            return spacing[0], spacing[1]
        problems.append(f"{keyword} = {list(value)}")
    found = "; ".join(problems) if problems else "no PixelSpacing or ImagerPixelSpacing"
    raise MissingSpacing(f"no usable pixel spacing ({found}): the physical pixel size is unknown")


def resample_isotropic(image: np.ndarray, spacing: tuple[float, float],
                       new_spacing: float | None = None) -> tuple[np.ndarray, float]:
    """Resample a 2-D image (or ``(frames, rows, cols)`` stack) to square pixels of ``new_spacing`` mm.

    ``spacing`` is ``(row mm, col mm)`` from :func:`pixel_spacing`; ``new_spacing`` defaults
    to the finer of the two. Shrinking uses area averaging (``cv2.INTER_AREA``, no
    aliasing), enlarging bilinear interpolation. Returns the ``float32`` image and the
    spacing it now has.
    """
    import cv2

    row_mm, col_mm = (float(s) for s in spacing)
    if min(row_mm, col_mm) <= 0:
        raise MissingSpacing(f"pixel spacing must be positive, got {spacing}")
    target = min(row_mm, col_mm) if new_spacing is None else float(new_spacing)
    if target <= 0:
        raise ValueError(f"new_spacing must be positive, got {new_spacing}")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        frames = [resample_isotropic(frame, spacing, target)[0] for frame in image]
        return np.stack(frames), target
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image or a (frames, rows, cols) stack, got {image.shape}")
    rows = max(1, round(image.shape[0] * row_mm / target))
    cols = max(1, round(image.shape[1] * col_mm / target))
    shrink = rows * cols < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (cols, rows), interpolation=interpolation), target


# --------------------------------------------------------------------------- de-identification
# Attributes of the basic profile (PS3.15 Annex E, Table E.1-1) handled here, by action:
# D = replace with a dummy value, Z = empty, X = remove. UIDs (action U) and all person
# names, dates and times are handled by VR, wherever they occur (also inside sequences).
PHI_REPLACE = {"PatientName": "ANONYMOUS"}  # PatientID gets a salted pseudonym
PHI_EMPTY = ("PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
             "ReferringPhysicianName", "StudyDate", "StudyTime", "ContentDate", "ContentTime")
PHI_REMOVE = (
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers", "PatientAge",
    "PatientSize", "PatientWeight", "MilitaryRank", "BranchOfService", "EthnicGroup",
    "Occupation", "PatientComments", "AdditionalPatientHistory", "PatientInsurancePlanCodeSequence",
    "MedicalRecordLocator", "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "StationName", "DeviceSerialNumber", "OperatorsName", "PerformingPhysicianName",
    "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "RequestingPhysician",
    "StudyDescription", "SeriesDescription", "ImageComments", "RequestAttributesSequence",
    "ReferencedPatientSequence", "ReferencedStudySequence", "InstanceCreationDate",
    "InstanceCreationTime", "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime",
    "AcquisitionDateTime", "ProtocolName", "PerformedProcedureStepID",
    "PerformedProcedureStepDescription", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime", "ScheduledProcedureStepID", "TimezoneOffsetFromUTC",
    "ContentCreatorName", "InstanceCreatorUID", "SourceApplicationEntityTitle",
)
# Registered UIDs of the standard itself (SOP classes, transfer syntaxes) are not PHI.
STANDARD_UID_ROOT = "1.2.840.10008."
DEIDENTIFIED_UID_ROOT = "2.25."


def remap_uid(uid: str, salt: str) -> str:
    """A new UID derived from ``uid`` and ``salt`` (``2.25.<hash>``), the same every time.

    The same original UID always maps to the same new one under the same ``salt``, so
    references between files (study, series, frame of reference, referenced instances)
    stay consistent; without the salt the mapping cannot be reversed.
    """
    if not salt:
        raise ValueError("a non-empty salt (kept secret) is required to remap UIDs")
    # pydicom's generate_uid(prefix=None, entropy_srcs=...) ignores the entropy sources and
    # returns a random UUID, so the 128-bit number is derived from a SHA-256 here.
    digest = hashlib.sha256(f"{salt}\x00{uid}".encode()).hexdigest()
    return DEIDENTIFIED_UID_ROOT + str(int(digest[:32], 16))


def burned_in_annotation(ds: Dataset) -> str:
    """``"YES"``, ``"NO"`` or ``"unknown"`` (attribute absent) for Burned In Annotation."""
    value = str(ds.get("BurnedInAnnotation", "")).strip().upper()
    return value if value in ("YES", "NO") else "unknown"


def deidentify(ds: Dataset, salt: str, *, allow_burned_in: bool = False) -> Dataset:
    """Return a de-identified copy of ``ds`` following the basic confidentiality profile.

    Person names are replaced or emptied, dates and times emptied, the attributes of
    :data:`PHI_REMOVE` and all private tags removed, every non-standard UID remapped
    with :func:`remap_uid` (the file meta information too), and ``PatientIdentityRemoved``
    set to ``YES``. A dataset with ``BurnedInAnnotation == "YES"`` raises
    :class:`BurnedInAnnotation` (text in the pixels is not removed by header edits) unless
    ``allow_burned_in=True``.
    """
    if burned_in_annotation(ds) == "YES" and not allow_burned_in:
        raise BurnedInAnnotation(
            "BurnedInAnnotation is YES: identifying text is part of the pixels; header "
            "de-identification is not enough (mask the pixels, then pass allow_burned_in=True)")
    out = copy.deepcopy(ds)
    original_id = str(ds.get("PatientID", ""))
    out.remove_private_tags()

    def scrub(dataset: Dataset, element: Any) -> None:
        keyword = element.keyword
        if keyword in PHI_REMOVE or (element.tag.group & 0xFF00 == 0x6000 and
                                     element.tag.element in (0x3000, 0x4000)):
            del dataset[element.tag]
        elif keyword in PHI_REPLACE:
            element.value = PHI_REPLACE[keyword]
        elif keyword in PHI_EMPTY or element.VR in ("PN", "DA", "DT", "TM"):
            element.value = ""
        elif element.VR == "UI" and element.value:
            values = element.value if element.VM > 1 else [element.value]
            new = [v if str(v).startswith(STANDARD_UID_ROOT) else remap_uid(v, salt) for v in values]
            element.value = new if element.VM > 1 else new[0]

    out.walk(scrub)
    out.PatientID = remap_uid(original_id, salt).removeprefix(DEIDENTIFIED_UID_ROOT)[:16] if original_id else ""
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = "DICOM PS3.15 Annex E basic profile (subset), helpers.dicom"
    if getattr(out, "file_meta", None) is not None:
        if "SOPInstanceUID" in out:
            out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
        out.file_meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
        for keyword in ("SourceApplicationEntityTitle", "ImplementationVersionName"):
            if keyword in out.file_meta:
                del out.file_meta[keyword]
    return out


def find_phi(ds: Dataset, original: Dataset | None = None) -> list[str]:
    """List what still looks like protected health information in ``ds`` (empty = clean).

    Flags private tags, any attribute of :data:`PHI_REMOVE`, non-empty person names
    (other than the dummy), dates and times, UIDs that are neither standard nor remapped
    (``2.25.``), and, when ``original`` is given, any of its string values of names, IDs
    and UIDs that reappears anywhere in ``ds``.
    """
    problems: list[str] = []
    leaked: set[str] = set()
    if original is not None:
        def collect(_: Dataset, element: Any) -> None:
            if element.VR in ("PN", "LO", "SH", "UI", "DA") and element.keyword not in (
                    "SOPClassUID", "ReferencedSOPClassUID") and isinstance(element.value, (str, pydicom.valuerep.PersonName)):
                text = str(element.value).strip()
                if len(text) >= 4 and not text.startswith(STANDARD_UID_ROOT) and (
                        element.VR in ("PN", "UI", "DA") or "ID" in element.keyword):
                    leaked.add(text)
        original.walk(collect)

    def check(_: Dataset, element: Any) -> None:
        label = f"{element.keyword or 'private'} {element.tag}"
        if element.tag.is_private:
            problems.append(f"private tag {element.tag}")
        elif element.keyword in PHI_REMOVE:
            problems.append(f"{label} still present")
        elif element.VR == "PN" and str(element.value) not in ("", PHI_REPLACE["PatientName"]):
            problems.append(f"{label}: person name {element.value!s}")
        elif element.VR in ("DA", "DT", "TM") and element.value not in ("", None):
            problems.append(f"{label}: date/time {element.value}")
        elif element.VR == "UI" and element.value:
            values = element.value if element.VM > 1 else [element.value]
            for value in values:
                if not str(value).startswith((STANDARD_UID_ROOT, DEIDENTIFIED_UID_ROOT)):
                    problems.append(f"{label}: original UID {value}")
        if leaked and element.VR not in ("SQ", "OB", "OW", "OF", "UN") and str(element.value).strip() in leaked:
            problems.append(f"{label}: value {element.value!s} copied from the original")

    ds.walk(check)
    return problems


# --------------------------------------------------------------------------- model input
def seed_preprocess(image: np.ndarray) -> np.ndarray:
    """The syllabus article's pre-processing, exactly as written (kept to show its bugs).

    Resizes to 224x224 with OpenCV's default (bilinear, aspect ratio ignored), takes
    channel 0 (``image[::, ::, 0]``, which the article calls cropping) and then converts
    from BGR to grey. On a grey image the indexing raises ``IndexError``; on a colour
    image ``cv2.cvtColor`` raises ``cv2.error`` because one channel is left.
    """
    import cv2

    image = cv2.resize(image, (224, 224))
    image = image[::, ::, 0]
    image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return image


def preprocess(image: np.ndarray, size: int = 224, channels: int = 3, *,
               keep_aspect: bool = True, rescale: bool = True) -> np.ndarray:
    """Turn one grey ``(h, w)``/``(h, w, 1)`` or RGB ``(h, w, 3)`` image into model input.

    Intensities are min-max scaled to ``[0, 1]``; with ``rescale=False`` the image must
    already be in ``[0, 1]`` (e.g. a CT window from :func:`window`, which keeps the same HU
    scale for every patient) and is left as it is. Colour is converted with RGB luminance weights when
    ``channels=1`` and grey is repeated when ``channels=3``; with ``keep_aspect`` the image
    is padded to a square with 0 before resizing, so anatomy is not stretched. Shrinking
    uses ``cv2.INTER_AREA``, enlarging ``cv2.INTER_CUBIC`` (clipped back to ``[0, 1]``).
    Returns ``float32`` of shape ``(size, size, channels)``.
    """
    import cv2

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)) or min(image.shape[:2]) < 1:
        raise ValueError(f"expected a grey (h, w) / (h, w, 1) or RGB (h, w, 3) image, got {image.shape}")
    image = image.astype(np.float32)
    if not np.isfinite(image).all():
        raise ValueError("the image contains NaN or infinite values")
    if image.ndim == 3 and channels == 1:
        image = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    low, high = float(image.min()), float(image.max())
    if not rescale:
        if low < 0 or high > 1:
            raise ValueError(f"rescale=False needs an image in [0, 1], got [{low:g}, {high:g}]")
    elif high > low:
        image = (image - low) / (high - low)
    else:
        image = np.zeros_like(image)
    if keep_aspect and image.shape[0] != image.shape[1]:
        side = max(image.shape[:2])
        top, left = (side - image.shape[0]) // 2, (side - image.shape[1]) // 2
        padded = np.zeros((side, side) + image.shape[2:], dtype=np.float32)
        padded[top:top + image.shape[0], left:left + image.shape[1]] = image
        image = padded
    shrink = size * size < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    image = np.clip(cv2.resize(image, (size, size), interpolation=interpolation), 0.0, 1.0)
    if image.ndim == 2:
        image = image[..., np.newaxis]
    if image.shape[-1] != channels:
        image = np.repeat(image, channels, axis=-1)
    return image.astype(np.float32)


def metadata_table(paths: Iterable[str | os.PathLike[str]]) -> Any:
    """One row per file with the header attributes that matter before pre-processing.

    Columns: file, modality, photometric interpretation, rows, columns, frames, bits
    stored, pixel representation, pixel spacing, rescale slope/intercept, window, burned-in
    annotation, transfer syntax. Reads headers only (no pixels). Returns a DataFrame.
    """
    import pandas as pd

    rows = []
    for path in paths:
        ds = read_dicom(path, stop_before_pixels=True)
        spacing = ds.get("PixelSpacing")
        rows.append({
            "file": Path(path).name,
            "modality": ds.get("Modality"),
            "photometric": ds.get("PhotometricInterpretation"),
            "rows": ds.get("Rows"),
            "columns": ds.get("Columns"),
            "frames": int(ds.get("NumberOfFrames", 1) or 1),
            "bits_stored": ds.get("BitsStored"),
            "signed": bool(ds.get("PixelRepresentation", 0)),
            "pixel_spacing_mm": None if spacing is None else "x".join(f"{float(s):g}" for s in spacing),
            "rescale": None if "RescaleSlope" not in ds else f"{float(ds.RescaleSlope):g}, {float(ds.RescaleIntercept):g}",
            "window": None if "WindowCenter" not in ds else f"{ds.WindowCenter}/{ds.WindowWidth}",
            "burned_in": burned_in_annotation(ds),
            "transfer_syntax": getattr(getattr(ds, "file_meta", {}).get("TransferSyntaxUID"), "name", None),
        })
    return pd.DataFrame(rows)
