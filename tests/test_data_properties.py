"""Property-based tests of the loaders: malformed files in, a named error or the right data out.

Hypothesis writes MedMNIST ``.npz`` archives, UCR text and UCI sequence files with wrong
keys, shapes, dtypes, labels, NaN/inf, ragged rows, byte-order marks and truncation, and
checks each loader against an independent statement of what a valid file is: a valid file
must load to exactly what was written; anything else must raise a :class:`DatasetError`
(never another exception, never a silently wrong result, never a hang). The registry's
sizes are shrunk so the examples stay small; the checksums are switched off so that the
parsers themselves are tested (one test covers the checksum on the real files).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from helpers import data
from tests.conftest import REAL_ROOT, require

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Each kind of fault is a test case of its own (so every one is exercised), with a dozen
# examples that vary where and how it strikes, and sometimes a second fault on top.
PER_FAULT = settings(SETTINGS, max_examples=12)
FLOAT32_MAX = float(np.finfo(np.float32).max)
MEDMNIST_FAULTS = [
    "none",
    "image_dtype",
    "image_shape",
    "rows",
    "label_dtype",
    "label_value",
    "label_nan",
    "label_shape",
    "key",
    "file",
]
UCR_FAULTS = ["none", "value", "label", "ragged", "rows", "blank", "bom", "truncate", "encoding"]
UCI_FAULTS = [
    "none",
    "label",
    "name",
    "length",
    "alphabet",
    "fields",
    "rows",
    "bom",
    "bom_inside",
    "truncate",
    "encoding",
    "crlf",
]


def faults(first: str, kinds: list[str]) -> st.SearchStrategy[list[str]]:
    """``[first]`` plus, one time in three, another fault ("none": a valid file)."""
    if first == "none":
        return st.just([])
    return st.one_of(
        st.just([first]),
        st.just([first]),
        st.sampled_from(kinds[1:]).map(lambda second: [first, second]),
    )


@contextmanager
def no_hang(seconds: float = 20.0) -> Iterator[None]:
    """Fail (instead of waiting forever) if the block runs longer than ``seconds``."""

    def stop(signum, frame):
        raise TimeoutError(f"a loader ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def data_root(files: dict[str, bytes], *, unchecked: tuple[str, ...] = ()) -> Iterator[Path]:
    """A fresh offline data root holding ``files``; ``unchecked`` registry entries lose their checksums."""
    entries = {
        name: dataclasses.replace(
            data.REGISTRY[name],
            known_hash=None,
            also_accepted=(),
            unverified_reason="switched off by this test",
        )
        for name in unchecked
    }
    with (
        tempfile.TemporaryDirectory() as folder,
        mock.patch.dict(data.REGISTRY, entries),
        mock.patch.dict(os.environ, {data.DATA_ENV: folder, data.OFFLINE_ENV: "1"}),
    ):
        root = Path(folder)
        for relative, content in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes(content)
        yield root


def outcome(load):
    """``("ok", result)`` or ``("error", exception)``; any other exception fails the test."""
    with no_hang():
        try:
            result = load()
        except (data.DatasetError, ValueError) as error:
            assert str(error), "errors must say what is wrong"
            event(f"error: {type(error).__name__}")
            return "error", error
    event("loaded")
    return "ok", result


# --------------------------------------------------------------------------- MedMNIST
# (flag, classes, label columns, image shape after n) of three kinds of task, n shrunk to 4
MEDMNIST_CASES = {
    "pneumoniamnist": (2, 1, (28, 28)),  # binary, grey
    "retinamnist": (5, 1, (28, 28, 3)),  # ordinal, colour
    "chestmnist": (2, 14, (28, 28)),  # multi-label: 14 columns of 0/1
}
N = 4


@st.composite
def npz_files(draw, fault):
    """A valid archive of one split with ``fault`` (and sometimes one more) broken."""
    flag = draw(st.sampled_from(sorted(MEDMNIST_CASES)))
    n_classes, k, image_shape = MEDMNIST_CASES[flag]
    split = draw(st.sampled_from(data.SPLITS))
    pixels = draw(st.integers(0, 255))
    images = np.full((N, *image_shape), pixels, np.uint8)
    values = draw(st.lists(st.integers(0, n_classes - 1), min_size=N * k, max_size=N * k))
    labels = np.array(values, dtype=draw(st.sampled_from([np.uint8, np.int64]))).reshape(N, k)
    how = "savez"
    breaks = draw(faults(fault, MEDMNIST_FAULTS))
    for fault in breaks:
        if fault == "image_dtype":
            images = images.astype(
                draw(st.sampled_from([np.uint16, np.int16, np.float32, np.float64, np.bool_]))
            )
        elif fault == "image_shape":
            shape = draw(
                st.sampled_from(
                    [
                        (N, 28, 28, 1),
                        (N, 27, 28),
                        (N, 28, 28, 3),
                        (N, 28),
                        (N, 28, 28, 4),
                        (N, 32, 32),
                    ]
                )
            )
            images = np.full(shape, pixels, images.dtype)
        elif fault == "rows":
            images, labels = draw(
                st.sampled_from(
                    [
                        (images[1:], labels),
                        (images, labels[1:]),
                        (images[1:], labels[1:]),
                        (np.concatenate([images, images[:1]]), labels),
                    ]
                )
            )
        elif fault == "label_dtype":
            labels = labels.astype(draw(st.sampled_from([np.float64, np.float32, np.bool_])))
        elif fault == "label_value" and labels.size:
            with np.errstate(all="ignore"):
                labels = labels.copy()
                labels.flat[draw(st.integers(0, labels.size - 1))] = np.array(
                    draw(st.sampled_from([-1, n_classes, 7, 255, 2.5]))
                ).astype(labels.dtype)
        elif fault == "label_nan":
            labels = labels.astype(np.float64)
            labels.flat[0] = math.nan
        elif fault == "label_shape":
            labels = draw(
                st.sampled_from(
                    [labels.reshape(-1), np.concatenate([labels, labels], 1), labels[:, :0]]
                )
            )
        elif fault == "key":
            how_key = draw(st.sampled_from(["images", "labels"]))
            if draw(st.booleans()):
                images, labels = (None, labels) if how_key == "images" else (images, None)
            else:
                split_key = {"train": "val", "val": "test", "test": "train"}[split]
                return (
                    flag,
                    split,
                    {f"{split_key}_images": images, f"{split_key}_labels": labels},
                    how,
                )
        elif fault == "file":
            how = draw(st.sampled_from(["npy", "truncated", "garbage", "empty"]))
    keys = {f"{split}_images": images, f"{split}_labels": labels}
    keys = {key: value for key, value in keys.items() if value is not None}
    how = how if how != "savez" else draw(st.sampled_from(["savez", "compressed"]))
    return flag, split, keys, how


def valid_medmnist(flag, split, keys) -> bool:
    """What the published layout says (MedMNIST v2): an independent restatement."""
    n_classes, k, image_shape = MEDMNIST_CASES[flag]
    images, labels = keys.get(f"{split}_images"), keys.get(f"{split}_labels")
    if images is None or labels is None:
        return False
    return (
        images.dtype == np.uint8
        and images.shape == (N, *image_shape)
        and labels.shape == (N, k)
        and np.issubdtype(labels.dtype, np.integer)
        and bool(((labels >= 0) & (labels < n_classes)).all())
    )


@pytest.mark.parametrize("fault", MEDMNIST_FAULTS)
@PER_FAULT
@given(draw=st.data())
def test_medmnist_loader_returns_the_arrays_or_a_named_error(fault, draw):
    flag, split, keys, how = draw.draw(npz_files(fault), label="archive")
    path = f"medmnist/{flag}.npz"
    with tempfile.TemporaryFile() as buffer:
        if how == "npy":
            np.save(buffer, next(iter(keys.values()), np.zeros(1)))
        elif how == "compressed":
            np.savez_compressed(buffer, **keys)
        else:
            np.savez(buffer, **keys)
        buffer.seek(0)
        blob = buffer.read()
    if how == "truncated":
        blob = blob[: len(blob) * 2 // 3]
    elif how == "garbage":
        blob = bytes(reversed(blob))
    elif how == "empty":
        blob = b""
    sizes = {s: N for s in data.SPLITS}
    with (
        data_root({path: blob}, unchecked=(flag,)),
        mock.patch.dict(data.MEDMNIST_INFO[flag]["n_samples"], sizes),
    ):
        kind, result = outcome(lambda: data.load_medmnist(flag, split))
    if how in {"savez", "compressed"} and valid_medmnist(flag, split, keys):
        assert kind == "ok", result
        assert np.array_equal(result[0], keys[f"{split}_images"])
        assert np.array_equal(result[1], keys[f"{split}_labels"])
    else:
        assert kind == "error" and isinstance(result, data.DatasetCorrupt), result
        assert flag in str(result)  # names the file


# --------------------------------------------------------------------------- UCR
UCR_ROWS, UCR_LENGTH = 3, 4
finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def ucr_files(draw, fault):
    """A valid split as text with ``fault`` (and sometimes one more) broken."""
    rows = [
        [draw(st.sampled_from(["1", "2", "3", "4", "5", "1.0", "5e0", "+3"]))]
        + [repr(draw(finite32)) for _ in range(UCR_LENGTH)]
        for _ in range(UCR_ROWS)
    ]
    separator = draw(st.sampled_from(["  ", ",", "\t", " "]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    breaks = draw(faults(fault, UCR_FAULTS))
    for fault in breaks:
        row = draw(st.integers(0, len(rows) - 1))  # faults may have changed the rows
        if fault == "value" and len(rows[row]) > 1:
            rows[row][draw(st.integers(1, len(rows[row]) - 1))] = draw(
                st.sampled_from(
                    ["nan", "NaN", "inf", "-Infinity", "1e39", "-3.5e38", "abc", "", "0x10", "--1"]
                )
            )
        elif fault == "label":
            rows[row][0] = draw(
                st.sampled_from(["0", "6", "-1", "2.5", "1.5", "4.999", "nan", "inf", "x", "1e9"])
            )
        elif fault == "ragged":
            rows[row] = rows[row][:-1] if draw(st.booleans()) else rows[row] + ["0.5"]
        elif fault == "rows":
            rows = rows[:-1] if draw(st.booleans()) else rows + [list(rows[0])]
    text = newline.join(separator.join(r) for r in rows) + newline
    if "blank" in breaks:  # blank lines are harmless
        text = newline + text + newline + "   " + newline
    blob = text.encode()
    if "bom" in breaks:  # a byte-order mark, as some editors write: harmless
        blob = b"\xef\xbb\xbf" + blob
    if "truncate" in breaks:
        blob = blob[: draw(st.integers(0, len(blob)))]
    if "encoding" in breaks:
        blob = blob.replace(b"1", b"\xb9", 1)  # latin-1 superscript one: not UTF-8
    return blob


def expected_ucr(blob: bytes):
    """The arrays a valid file holds, or ``None`` if it is not a valid ECG5000-like split."""
    try:
        text = blob.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    table = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        numbers = [parse_number(token) for token in line.replace(",", " ").split()]
        if len(numbers) != UCR_LENGTH + 1 or any(x is None for x in numbers):
            return None
        table.append(numbers)
    if len(table) != UCR_ROWS or any(not math.isfinite(x) for row in table for x in row):
        return None
    if any(abs(x) > FLOAT32_MAX for row in table for x in row[1:]):
        return None
    if any(row[0] not in (1, 2, 3, 4, 5) for row in table):
        return None
    return (
        np.array([row[1:] for row in table], dtype=np.float32),
        np.array([row[0] for row in table], dtype=np.int64),
    )


def parse_number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


@pytest.mark.parametrize("fault", UCR_FAULTS)
@PER_FAULT
@given(draw=st.data())
def test_ucr_loader_returns_the_series_or_a_named_error(fault, draw):
    blob = draw.draw(ucr_files(fault), label="file")
    with (
        data_root({"ucr/ECG5000_TRAIN.txt": blob}, unchecked=("ecg5000_train",)),
        mock.patch.dict(data.UCR_SHAPES, {"ecg5000_train": (UCR_ROWS, UCR_LENGTH)}),
    ):
        kind, result = outcome(lambda: data.load_ucr("ecg5000", "train"))
    expected = expected_ucr(blob)
    if expected is None:
        assert kind == "error" and isinstance(result, data.DatasetCorrupt), (blob, result)
        assert "ECG5000_TRAIN.txt" in str(result)
    else:
        assert kind == "ok", (blob, result)
        assert result[0].dtype == np.float32 and result[1].dtype == np.int64
        assert np.array_equal(result[0], expected[0]) and np.array_equal(result[1], expected[1])


# --------------------------------------------------------------------------- UCI
UCI_ROWS, UCI_LENGTH = 3, 6
# No line breaks or control characters inside a field: a line is a line.
field_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=6)
names = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=","),
    min_size=1,
    max_size=8,
)


@st.composite
def uci_files(draw, fault):
    """A valid splice-like file with ``fault`` (and sometimes one more) broken."""

    def sequence():
        bases = draw(
            st.text(st.sampled_from("ACGTacgtNDRS"), min_size=UCI_LENGTH, max_size=UCI_LENGTH)
        )
        return draw(st.sampled_from(["", " ", "\t\t"])) + bases  # as in the UCI files

    lines = [
        [
            draw(st.sampled_from(["EI", "IE", "N", " EI"])),
            draw(st.one_of(st.just("ATRINS-DONOR-521"), names)),
            sequence(),
        ]
        for _ in range(UCI_ROWS)
    ]
    breaks = draw(faults(fault, UCI_FAULTS))
    for fault in breaks:
        row = draw(st.integers(0, len(lines) - 1))  # faults may have changed the lines
        if fault == "bom_inside":  # a byte-order mark inside the file is not harmless
            lines[row][0] = "\ufeff" + lines[row][0]
        elif fault == "label":
            lines[row][0] = draw(st.sampled_from(["ei", "XX", "pos", "+", "", "E I", "\ufeffEI"]))
        elif fault == "name":
            lines[row][1] = draw(st.sampled_from(["", "  "]))
        elif fault == "length" and len(lines[row]) > 2:
            lines[row][2] = (
                lines[row][2][: -draw(st.integers(1, 3))]
                if draw(st.booleans())
                else lines[row][2] + "A"
            )
        elif fault == "alphabet" and len(lines[row]) > 2:
            lines[row][2] = lines[row][2][:-1] + draw(st.sampled_from("XZ0-.U*"))
        elif fault == "fields":
            lines[row] = lines[row][:2] if draw(st.booleans()) else lines[row] + [draw(field_text)]
        elif fault == "rows":
            lines = lines[:-1] if draw(st.booleans()) else lines + [list(lines[0])]
    newline = "\r\n" if "crlf" in breaks else "\n"
    blob = (newline.join(",".join(line) for line in lines) + newline).encode()
    if "bom" in breaks:
        blob = b"\xef\xbb\xbf" + blob
    if "truncate" in breaks:
        blob = blob[: draw(st.integers(0, len(blob)))]
    if "encoding" in breaks:
        blob = blob + "\u00e9".encode("latin-1")
    return blob


def expected_uci(blob: bytes):
    """The records of a valid file, or ``None`` (the published format: 'class, name, sequence')."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.removeprefix("\ufeff")
    records = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3:
            return None
        label, name, sequence = parts
        sequence = "".join(sequence.split()).upper()
        if (
            label not in {"EI", "IE", "N"}
            or not name
            or len(sequence) != UCI_LENGTH
            or not set(sequence) <= set("ACGTRYSWKMBDHVN")
        ):
            return None
        records.append((label, name, sequence))
    return records if len(records) == UCI_ROWS else None


@pytest.mark.parametrize("fault", UCI_FAULTS)
@PER_FAULT
@given(draw=st.data())
def test_uci_loader_returns_the_sequences_or_a_named_error(fault, draw):
    blob = draw.draw(uci_files(fault), label="file")
    with (
        data_root({"uci/splice.data": blob}, unchecked=("splice",)),
        mock.patch.dict(data.SEQUENCE_ROWS, {"splice": UCI_ROWS}),
        mock.patch.dict(data.SEQUENCE_LENGTHS, {"splice": UCI_LENGTH}),
    ):
        kind, result = outcome(lambda: data.load_uci_sequences("splice"))
    expected = expected_uci(blob)
    if expected is None:
        assert kind == "error" and isinstance(result, data.DatasetCorrupt), (blob, result)
        assert "splice.data" in str(result)
    else:
        assert kind == "ok", (blob, result)
        assert list(result.itertuples(index=False, name=None)) == expected


# --------------------------------------------------------------------------- checksums, real files
@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(
    name=st.sampled_from(["splice", "promoters", "ecg5000_train"]),
    where=st.floats(0, 1),
    change=st.integers(1, 255),
)
def test_any_changed_byte_of_a_real_file_is_caught_by_default(name, where, change):
    source = REAL_ROOT / data.dataset_info(name).path
    if not source.is_file():
        require(name)  # skips (or fails in CI)
    blob = bytearray(source.read_bytes())
    index = min(int(where * len(blob)), len(blob) - 1)
    blob[index] = (blob[index] + change) % 256
    with data_root({data.dataset_info(name).path: bytes(blob)}):
        with no_hang(), pytest.raises(data.DatasetCorrupt, match="checksum mismatch") as caught:
            data.fetch(name)
    assert "delete" not in str(caught.value).lower()


# --------------------------------------------------------------------------- arrays, patterns
@SETTINGS
@given(
    dtype=st.sampled_from(
        [np.uint8, np.uint16, np.int32, np.float16, np.float32, np.float64, np.bool_]
    ),
    values=st.lists(
        st.one_of(
            st.integers(0, 255),
            st.floats(0, 1),
            st.integers(-5, 70000),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
        min_size=4,
        max_size=4,
    ),
)
def test_as_float_images_scales_correctly_or_refuses(dtype, values):
    with np.errstate(all="ignore"):
        images = np.array(values, dtype=np.float64).astype(dtype).reshape(1, 2, 2)
    kind, result = outcome(lambda: data.as_float_images(images))
    if images.dtype == np.uint8:
        assert kind == "ok" and np.allclose(result[..., 0], images / 255.0)
    elif (
        images.dtype.kind == "f"
        and np.isfinite(images).all()
        and 0 <= images.min()
        and images.max() <= 1
    ):
        assert kind == "ok" and np.array_equal(result[..., 0], images.astype(np.float32))
    else:
        assert kind == "error", (images, result)
    if kind == "ok":
        assert result.dtype == np.float32 and result.shape == (1, 2, 2, 1)
        assert 0.0 <= result.min() and result.max() <= 1.0


@functools.cache
def sample_file_names() -> frozenset[str]:
    from pydicom.data import data_manager

    roots = [Path(data_manager.DATA_ROOT) / "test_files"]
    roots += [Path(s.data_path) for s in data_manager.external_data_sources().values()]
    return frozenset(
        p.name for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file()
    )


@settings(SETTINGS, max_examples=15)
@given(
    st.one_of(
        st.text(max_size=12),
        st.sampled_from(
            ["../*", "..", "*/../*", "/*", "**/*.dcm", "*.dcm", "CT_*", "[CM]R_small.dcm"]
        ),
    )
)
def test_dicom_listing_never_leaves_the_sample_folders(pattern):
    kind, result = outcome(lambda: data.list_dicom_samples(pattern))
    if kind == "ok":
        assert set(result) <= sample_file_names(), pattern
    else:
        assert "/" in pattern or "\\" in pattern or ".." in pattern or not pattern.strip()
