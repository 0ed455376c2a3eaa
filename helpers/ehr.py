"""ICU time series and survival cohorts (chapter 08): parsing, caching, splits, features.

The PhysioNet/CinC Challenge 2012 ships one ``Time,Parameter,Value`` file per ICU stay
inside three tarballs. This module reads them straight from the tarballs (no extraction),
turns each stay into an hourly grid of 48 x 37 values, an observation mask and the time
since each variable was last seen, keeps the static descriptors apart, joins the outcome
files, and caches the parsed arrays under :func:`helpers.data.cache_dir`, keyed by the
SHA-256 of the source files. It also reads the fixed Raindrop splits and the DeepSurv
survival cohorts, and builds the summary-feature table of the tree baseline.

Light: NumPy and pandas only (no TensorFlow at import).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers import data

HOURS = 48
# The 37 time-series variables of the challenge (Silva et al. 2012), in a fixed order.
VARIABLES: tuple[str, ...] = (
    "ALP", "ALT", "AST", "Albumin", "BUN", "Bilirubin", "Cholesterol", "Creatinine",
    "DiasABP", "FiO2", "GCS", "Glucose", "HCO3", "HCT", "HR", "K", "Lactate", "MAP",
    "MechVent", "Mg", "NIDiasABP", "NIMAP", "NISysABP", "Na", "PaCO2", "PaO2",
    "Platelets", "RespRate", "SaO2", "SysABP", "Temp", "TroponinI", "TroponinT", "Urine",
    "WBC", "Weight", "pH",
)  # fmt: skip
# Static descriptors recorded at 00:00 (RecordID is kept separately).
STATIC: tuple[str, ...] = ("Age", "Gender", "Height", "ICUType", "Weight")
ICU_TYPES = {1: "coronary care", 2: "cardiac surgery recovery", 3: "medical", 4: "surgical"}
# Plausible ranges (inclusive) in the challenge's units; a value outside is physiologically
# impossible (a typo, a unit slip such as pH 735 for 7.35, or a -1 placeholder) and is
# treated as not measured. Wide on purpose: they remove errors, not sick patients.
VALID_RANGES: dict[str, tuple[float, float]] = {
    "ALP": (1, 5000), "ALT": (1, 15000), "AST": (1, 20000), "Albumin": (0.5, 7),
    "BUN": (0.5, 300), "Bilirubin": (0.05, 80), "Cholesterol": (20, 1000),
    "Creatinine": (0.05, 30), "DiasABP": (5, 250), "FiO2": (0.21, 1.0), "GCS": (3, 15),
    "Glucose": (10, 2000), "HCO3": (2, 60), "HCT": (5, 75), "HR": (10, 300),
    "K": (1, 12), "Lactate": (0.1, 35), "MAP": (10, 300), "MechVent": (0, 1),
    "Mg": (0.3, 10), "NIDiasABP": (5, 250), "NIMAP": (10, 300), "NISysABP": (20, 300),
    "Na": (90, 200), "PaCO2": (5, 150), "PaO2": (10, 700), "Platelets": (1, 2000),
    "RespRate": (1, 100), "SaO2": (20, 100), "SysABP": (20, 300), "Temp": (24, 45),
    "TroponinI": (0.01, 100), "TroponinT": (0.005, 50), "Urine": (0, 5000),
    "WBC": (0.1, 500), "Weight": (20, 350), "pH": (6.5, 8.0),
    "Age": (15, 120), "Gender": (0, 1), "Height": (100, 250), "ICUType": (1, 4),
}  # fmt: skip
OUTCOME_COLUMNS = ("RecordID", "SAPS-I", "SOFA", "Length_of_stay", "Survival", "In-hospital_death")
PARTS = ("a", "b", "c")
CACHE_VERSION = 2
_INDEX = {name: i for i, name in enumerate(VARIABLES)}


class StayFormatError(data.DatasetCorrupt):
    """A stay file (or the archive holding it) does not follow the challenge's format."""


class OutcomeMismatch(data.DatasetCorrupt):
    """The outcome file does not describe exactly the stays of its set."""


class SurvivalFileError(data.DatasetCorrupt):
    """A DeepSurv HDF5 file lacks its ``train``/``test`` groups or has inconsistent arrays."""


# --------------------------------------------------------------------------- one stay
@dataclass
class Stay:
    """One parsed stay: its ID, static descriptors (NaN = missing) and its tidy time series.

    ``series`` has the columns ``minutes`` (since ICU admission), ``parameter`` and ``value``,
    with impossible values already removed; ``dropped`` counts what was removed and why.
    """

    record_id: int
    static: dict[str, float]
    series: pd.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)


def _minutes(stamp: str) -> int:
    hours, minutes = stamp.split(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"time {stamp!r} is not HH:MM")
    return int(hours) * 60 + int(minutes)


def parse_stay(text: str, source: str = "<stay>") -> Stay:
    """Parse the text of one stay file (``Time,Parameter,Value``) into a :class:`Stay`.

    The first occurrence of each static descriptor at 00:00 is static (``-1`` or an
    impossible value becomes NaN); later ``Weight`` rows are time series. Rows with an empty
    parameter name are dropped and counted (set C has 2,403 of them); time-series values
    outside :data:`VALID_RANGES` are dropped and counted (physiologically impossible: a
    placeholder, a typo or a unit slip), never clipped, since a clipped error would look like
    a real extreme. A missing header, a line without three fields, a bad time, a
    non-numeric value or an unknown parameter raises :class:`StayFormatError` naming
    ``source`` and the line.
    """
    lines = text.splitlines()
    if not lines or lines[0].strip() != "Time,Parameter,Value":
        raise StayFormatError(f"{source}: first line must be 'Time,Parameter,Value'")
    record_id: int | None = None
    static: dict[str, float] = {name: np.nan for name in STATIC}
    seen_static: set[str] = set()
    minutes, params, values = [], [], []
    dropped = {"empty_parameter": 0, "out_of_range": 0}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != 3:
            raise StayFormatError(f"{source}, line {number}: expected 3 fields, got {line!r}")
        stamp, name, raw = (f.strip() for f in fields)
        try:
            when = _minutes(stamp)
            value = float(raw)
        except ValueError as error:
            raise StayFormatError(f"{source}, line {number}: {error} in {line!r}") from None
        if not np.isfinite(value):
            raise StayFormatError(f"{source}, line {number}: value {raw!r} is not finite")
        if not name:
            dropped["empty_parameter"] += 1
            continue
        if name == "RecordID":
            record_id = int(value)
            continue
        if name in STATIC and when == 0 and name not in seen_static:
            seen_static.add(name)
            low, high = VALID_RANGES[name]
            static[name] = value if low <= value <= high else np.nan
            continue
        if name not in _INDEX:
            raise StayFormatError(f"{source}, line {number}: unknown parameter {name!r}")
        low, high = VALID_RANGES[name]
        if not low <= value <= high:
            dropped["out_of_range"] += 1
            dropped[f"out_of_range:{name}"] = dropped.get(f"out_of_range:{name}", 0) + 1
            continue
        minutes.append(when)
        params.append(name)
        values.append(value)
    if record_id is None:
        raise StayFormatError(f"{source}: no RecordID line")
    series = pd.DataFrame({"minutes": minutes, "parameter": params, "value": values})
    return Stay(record_id, static, series, dropped)


def to_grid(stay: Stay, hours: int = HOURS) -> tuple[np.ndarray, np.ndarray]:
    """Hourly grid of one stay: ``values`` (hours x 37, NaN where nothing was measured) and
    ``mask`` (1 where at least one value fell into the hour).

    Hour ``h`` holds the measurements taken in ``[h, h+1)`` hours (the last hour also takes
    48:00). Several values in one hour are averaged, except ``Urine``, an output volume,
    which is summed. Measurements after ``hours`` are ignored.
    """
    values = np.full((hours, len(VARIABLES)), np.nan, dtype=np.float32)
    mask = np.zeros((hours, len(VARIABLES)), dtype=np.uint8)
    series = stay.series
    if series.empty:
        return values, mask
    hour = np.minimum(series["minutes"].to_numpy() // 60, hours - 1)
    keep = series["minutes"].to_numpy() <= hours * 60
    col = series["parameter"].map(_INDEX).to_numpy()
    hour, col, val = hour[keep], col[keep], series["value"].to_numpy()[keep]
    sums = np.zeros((hours, len(VARIABLES)))
    counts = np.zeros((hours, len(VARIABLES)))
    np.add.at(sums, (hour, col), val)
    np.add.at(counts, (hour, col), 1)
    seen = counts > 0
    mean = np.divide(sums, counts, out=np.zeros_like(sums), where=seen)
    urine = _INDEX["Urine"]
    mean[:, urine] = sums[:, urine]
    values[seen] = mean[seen]
    mask[seen] = 1
    return values, mask


def time_since_seen(mask: np.ndarray) -> np.ndarray:
    """Hours since each variable was last observed, as defined for GRU-D (Che et al. 2018).

    ``delta[0] = 0``; ``delta[t] = 1 + delta[t-1]`` if the variable was missing at ``t-1``,
    else ``1``. Works on one stay (T x D) or a batch (N x T x D); returns float32.
    """
    mask = np.asarray(mask)
    delta = np.zeros(mask.shape, dtype=np.float32)
    for t in range(1, mask.shape[-2]):
        previous = delta[..., t - 1, :]
        delta[..., t, :] = np.where(mask[..., t - 1, :] > 0, 1.0, 1.0 + previous)
    return delta


# --------------------------------------------------------------------------- archives
def read_archive(path: str | Path, limit: int | None = None) -> list[Stay]:
    """Parse the stay files of one challenge tarball (``set-a.tar.gz`` ...), in file order.

    Read with :mod:`tarfile` directly, nothing is extracted. ``limit`` parses only the first
    ``limit`` stays (the smoke profile). A truncated or unreadable archive, or one without a
    single stay file, raises :class:`StayFormatError` naming it.
    """
    path = Path(path)
    stays: list[Stay] = []
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not (member.isfile() and member.name.endswith(".txt")):
                    continue
                handle = archive.extractfile(member)
                text = handle.read().decode("utf-8") if handle else ""
                stays.append(parse_stay(text, f"{path.name}:{member.name}"))
                if limit is not None and len(stays) >= limit:
                    break
    except (tarfile.TarError, EOFError, OSError, zlib.error, UnicodeDecodeError) as error:
        raise StayFormatError(
            f"{path}: cannot read the archive ({type(error).__name__}: {error}); the file is "
            "truncated or not a tar.gz of stay files"
        ) from None
    if not stays:
        raise StayFormatError(f"{path}: no stay files (*.txt) in the archive")
    return stays


def read_outcomes(path: str | Path, record_ids: Sequence[int] | None = None) -> pd.DataFrame:
    """Read an outcome file; with ``record_ids``, check that it lists exactly those stays.

    Returns the rows in the order of ``record_ids`` (when given). A missing column, a
    duplicated ID, or IDs that differ from the stays' raise :class:`OutcomeMismatch` naming
    the file and a few of the offending IDs. ``Survival == -1`` (not known to have died)
    is kept as is.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise OutcomeMismatch(f"{path}: not a CSV outcome file ({error})") from None
    missing = [c for c in OUTCOME_COLUMNS if c not in table.columns]
    if missing:
        raise OutcomeMismatch(f"{path}: missing columns {missing}")
    if table["RecordID"].duplicated().any():
        dup = table.loc[table["RecordID"].duplicated(), "RecordID"].head(3).tolist()
        raise OutcomeMismatch(f"{path}: RecordIDs listed twice, e.g. {dup}")
    if not set(table["In-hospital_death"].unique()) <= {0, 1}:
        raise OutcomeMismatch(f"{path}: In-hospital_death must be 0 or 1")
    if record_ids is None:
        return table
    wanted = pd.Index(np.asarray(record_ids, dtype=int))
    have = pd.Index(table["RecordID"].astype(int))
    extra, absent = have.difference(wanted), wanted.difference(have)
    if len(extra) or len(absent):
        raise OutcomeMismatch(
            f"{path}: its RecordIDs do not match the stays: {len(absent)} stays without an "
            f"outcome (e.g. {list(absent[:3])}), {len(extra)} outcomes without a stay "
            f"(e.g. {list(extra[:3])})"
        )
    return table.set_index("RecordID").loc[wanted].rename_axis("RecordID").reset_index()


# --------------------------------------------------------------------------- the dataset
@dataclass
class ICUData:
    """The parsed stays with at least one time-series value, aligned row by row.

    ``values``/``mask`` are (n, 48, 37) float32/uint8 (values NaN where not measured),
    ``static`` (n, 5) float32 in the order of :data:`STATIC`, ``outcomes`` a DataFrame with
    the outcome columns plus ``set``; ``empty_ids`` the stays without any time series
    (excluded); ``dropped`` counts removed rows (empty parameter, out of range, and out of
    range per variable as ``out_of_range:<name>``).
    """

    record_ids: np.ndarray
    values: np.ndarray
    mask: np.ndarray
    static: np.ndarray
    outcomes: pd.DataFrame
    empty_ids: list[int]
    dropped: dict[str, int]
    cache_file: Path | None = None

    @property
    def y(self) -> np.ndarray:
        """In-hospital death (0/1) of each stay."""
        return self.outcomes["In-hospital_death"].to_numpy().astype(np.int64)

    def delta(self) -> np.ndarray:
        """Hours since each variable was last seen (:func:`time_since_seen`)."""
        return time_since_seen(self.mask)

    def subset(self, index: np.ndarray) -> ICUData:
        """The stays at ``index`` (positions), as a new :class:`ICUData`."""
        return ICUData(
            self.record_ids[index],
            self.values[index],
            self.mask[index],
            self.static[index],
            self.outcomes.iloc[index].reset_index(drop=True),
            self.empty_ids,
            self.dropped,
            self.cache_file,
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_sets(
    archives: dict[str, Path], outcomes: dict[str, Path], limit: int | None
) -> dict[str, np.ndarray]:
    ids, vals, masks, statics, sets, outs, empty = [], [], [], [], [], [], []
    dropped = {"empty_parameter": 0, "out_of_range": 0}
    per_variable = np.zeros(len(VARIABLES), dtype=np.int64)
    for part, archive in archives.items():
        stays = read_archive(archive, limit)
        got = [s.record_id for s in stays]
        table = read_outcomes(outcomes[part], got if limit is None else None)
        if limit is not None:  # a prefix of the set: its IDs must all have an outcome
            known = set(table["RecordID"])
            absent = [r for r in got if r not in known]
            if absent:
                raise OutcomeMismatch(f"{outcomes[part]}: no outcome for stays {absent[:3]}")
            table = table.set_index("RecordID").loc[got].rename_axis("RecordID").reset_index()
        for stay, row in zip(stays, table.itertuples(index=False), strict=True):
            for key, count in stay.dropped.items():
                if key.startswith("out_of_range:"):
                    per_variable[_INDEX[key.split(":", 1)[1]]] += count
                else:
                    dropped[key] += count
            if stay.series.empty:
                empty.append(stay.record_id)
                continue
            values, mask = to_grid(stay)
            ids.append(stay.record_id)
            vals.append(values)
            masks.append(mask)
            statics.append([stay.static[k] for k in STATIC])
            sets.append(part)
            outs.append(list(row))
    outcome_array = np.asarray(outs, dtype=np.float64)
    return {
        "record_ids": np.asarray(ids, dtype=np.int64),
        "values": np.stack(vals),
        "mask": np.stack(masks),
        "static": np.asarray(statics, dtype=np.float32),
        "sets": np.asarray(sets),
        "outcomes": outcome_array,
        "empty_ids": np.asarray(empty, dtype=np.int64),
        "dropped": np.asarray([dropped["empty_parameter"], dropped["out_of_range"]]),
        "dropped_per_variable": per_variable,
    }


def load_physionet2012(
    parts: Sequence[str] = PARTS,
    limit: int | None = None,
    *,
    use_cache: bool = True,
) -> ICUData:
    """Load the challenge's stays (sets ``parts``) as aligned arrays, from cache if possible.

    The tarballs and outcome files come from the data root (:func:`helpers.data.fetch`, so
    offline and absent raises ``DatasetUnavailable``). ``limit`` keeps the first ``limit``
    stays of each set (smoke runs). The parsed arrays are cached as ``.npz`` in
    ``data.cache_dir("physionet2012")`` under a name built from the SHA-256 of every source
    file, the parts, ``limit`` and a format version, so a changed file is parsed again and
    a stale cache is never read. Stays without any time-series row are dropped and listed in
    ``empty_ids``.
    """
    parts = tuple(parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {parts}")
    archives = {p: data.fetch(f"physionet2012_set_{p}") for p in parts}
    outcomes = {p: data.fetch(f"physionet2012_outcomes_{p}") for p in parts}
    key = hashlib.sha256()
    for path in [*archives.values(), *outcomes.values()]:
        key.update(_sha256(path).encode())
    key.update(f"{parts}|{limit}|{HOURS}|{VARIABLES}|{VALID_RANGES}|{CACHE_VERSION}".encode())
    name = f"p12_{''.join(parts)}_{'all' if limit is None else limit}_{key.hexdigest()[:16]}.npz"
    cache = data.cache_dir("physionet2012") / name
    arrays = None
    if use_cache and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                arrays = {k: stored[k] for k in stored.files}
        except (OSError, ValueError, zlib.error):
            arrays = None  # an unreadable cache is rebuilt, never trusted
    if arrays is None:
        arrays = _parse_sets(archives, outcomes, limit)
        if use_cache:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            # a name of this process's own: two runs parsing at once never share a half file
            temporary = cache.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(buffer.getvalue())
            temporary.replace(cache)
    outcome_frame = pd.DataFrame(arrays["outcomes"], columns=list(OUTCOME_COLUMNS))
    for column in ("RecordID", "SAPS-I", "SOFA", "Length_of_stay", "Survival"):
        outcome_frame[column] = outcome_frame[column].astype(np.int64)
    outcome_frame["In-hospital_death"] = outcome_frame["In-hospital_death"].astype(np.int64)
    outcome_frame["set"] = arrays["sets"]
    dropped = arrays["dropped"]
    return ICUData(
        record_ids=arrays["record_ids"],
        values=arrays["values"],
        mask=arrays["mask"],
        static=arrays["static"],
        outcomes=outcome_frame,
        empty_ids=[int(v) for v in arrays["empty_ids"]],
        dropped={
            "empty_parameter": int(dropped[0]),
            "out_of_range": int(dropped[1]),
            **{
                f"out_of_range:{v}": int(n)
                for v, n in zip(VARIABLES, arrays["dropped_per_variable"], strict=True)
                if n
            },
        },
        cache_file=cache if use_cache else None,
    )


def read_stay(record_id: int) -> Stay:
    """Parse one stay by its RecordID from its set's tarball (for showing a raw file)."""
    for part in PARTS:
        archive = data.fetch(f"physionet2012_set_{part}")
        wanted = f"set-{part}/{record_id}.txt"
        with tarfile.open(archive, "r:*") as tar:
            try:
                handle = tar.extractfile(wanted)
            except KeyError:
                continue
            return parse_stay(handle.read().decode("utf-8"), f"{archive.name}:{wanted}")
    raise KeyError(f"no stay {record_id} in sets {PARTS}")


# --------------------------------------------------------------------------- splits
def raindrop_splits(path: str | Path | None = None) -> pd.DataFrame:
    """The five fixed Raindrop splits: ``RecordID`` (index), ``In-hospital_death``,
    ``split1`` .. ``split5`` with values train/val/test. Read from the data root unless a
    ``path`` is given; a file without those columns or with other values raises
    :class:`helpers.data.DatasetCorrupt`."""
    path = Path(path) if path is not None else data.fetch("physionet2012_raindrop_splits")
    table = pd.read_csv(path)
    columns = ["RecordID", "In-hospital_death", *(f"split{k}" for k in range(1, 6))]
    if list(table.columns) != columns:
        raise data.DatasetCorrupt(f"{path}: columns must be {columns}, got {list(table.columns)}")
    labels = set(np.unique(table[columns[2:]].to_numpy()))
    if not labels <= {"train", "val", "test"}:
        raise data.DatasetCorrupt(f"{path}: split values must be train/val/test, got {labels}")
    return table.set_index("RecordID")


def split_positions(
    record_ids: np.ndarray, split: int, splits: pd.DataFrame | None = None
) -> dict[str, np.ndarray]:
    """Positions in ``record_ids`` of the train/val/test stays of Raindrop split ``split``
    (1-5). Stays not in the split file are left out; with the full data that is none."""
    if split not in range(1, 6):
        raise ValueError(f"split must be 1..5, got {split}")
    table = raindrop_splits() if splits is None else splits
    which = table[f"split{split}"].reindex(np.asarray(record_ids)).to_numpy()
    return {name: np.flatnonzero(which == name) for name in ("train", "val", "test")}


# --------------------------------------------------------------------------- features
def standardize(
    values: np.ndarray, mask: np.ndarray, train: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-score each variable with the mean and sd of its *observed* training cells.

    Returns ``(z, mean, sd)`` with ``z`` = 0 where nothing was measured (the training mean),
    float32. ``train`` are the positions of the training stays (no leakage from val/test).
    """
    observed = mask[train] > 0
    tv = values[train]
    mean = np.array(
        [
            np.nanmean(np.where(observed[..., d], tv[..., d], np.nan))
            for d in range(values.shape[-1])
        ]
    )
    sd = np.array(
        [np.nanstd(np.where(observed[..., d], tv[..., d], np.nan)) for d in range(values.shape[-1])]
    )
    mean, sd = np.nan_to_num(mean), np.where(np.nan_to_num(sd) > 0, np.nan_to_num(sd), 1.0)
    z = np.where(mask > 0, (np.nan_to_num(values) - mean) / sd, 0.0).astype(np.float32)
    return z, mean.astype(np.float32), sd.astype(np.float32)


def impute(z: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
    """Fill the unmeasured cells of standardised values ``z`` (N x T x D).

    ``zero``: 0, which after standardisation is the training mean (so ``mean`` is the same
    here); ``ffill``: the last observed value of the stay, 0 before the first one.
    """
    if how in {"zero", "mean"}:
        return np.where(mask > 0, z, 0.0).astype(np.float32)
    if how != "ffill":
        raise ValueError(f"how must be 'zero', 'mean' or 'ffill', got {how!r}")
    out = np.where(mask > 0, z, 0.0).astype(np.float32)
    for t in range(1, z.shape[1]):
        out[:, t] = np.where(mask[:, t] > 0, out[:, t], out[:, t - 1])
    return out


def summary_features(icu: ICUData, hours: int = HOURS) -> pd.DataFrame:
    """Per-variable summaries of the first ``hours`` hours plus the static descriptors.

    For each variable: last, first, min, max, mean of its hourly values and the count of
    hours with a measurement (NaN where never measured, which gradient-boosted trees handle
    natively); then Age, Gender, Height, ICUType, Weight. One row per stay.
    """
    values = icu.values[:, :hours].astype(np.float64)
    observed = icu.mask[:, :hours] > 0
    count = observed.sum(axis=1)
    t_index = np.arange(hours)[None, :, None]
    last_t = np.where(observed, t_index, -1).max(axis=1)
    first_t = np.where(observed, t_index, hours).min(axis=1)
    n, _, d = values.shape
    rows, cols = np.indices((n, d))
    last = np.where(count > 0, values[rows, np.clip(last_t, 0, hours - 1), cols], np.nan)
    first = np.where(count > 0, values[rows, np.clip(first_t, 0, hours - 1), cols], np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stats = {
                "last": last,
                "first": first,
                "min": np.nanmin(values, axis=1),
                "max": np.nanmax(values, axis=1),
                "mean": np.nanmean(values, axis=1),
                "count": count.astype(np.float64),
            }
    frame = {f"{v}_{s}": stats[s][:, i] for i, v in enumerate(VARIABLES) for s in stats}
    frame.update({name: icu.static[:, i] for i, name in enumerate(STATIC)})
    return pd.DataFrame(frame)


def model_inputs(icu: ICUData, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The recurrent models' inputs: ``series`` (n, 48, 3 x 37) = standardised values (0
    where missing), mask and hours since last seen; ``static`` (n, 10) = the standardised
    static descriptors (0 where missing) and their missing-indicators. All statistics come
    from the training positions ``train`` only."""
    z, _, _ = standardize(icu.values, icu.mask, train)
    series = np.concatenate([z, icu.mask.astype(np.float32), icu.delta()], axis=-1)
    static = icu.static.astype(np.float64)
    mean = np.nanmean(static[train], axis=0)
    sd = np.nanstd(static[train], axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    missing = np.isnan(static)
    scaled = np.where(missing, 0.0, (static - mean) / sd)
    return series.astype(np.float32), np.concatenate([scaled, missing], axis=1).astype(np.float32)


def missing_rates(icu: ICUData) -> pd.Series:
    """Share of hourly cells without a measurement, per variable (sorted, highest first)."""
    rates = 1.0 - icu.mask.mean(axis=(0, 1))
    return pd.Series(rates, index=list(VARIABLES)).sort_values(ascending=False)


# --------------------------------------------------------------------------- survival
SURVIVAL_COHORTS = ("support", "gbsg", "whas", "metabric")


@dataclass
class SurvivalData:
    """One DeepSurv cohort: covariates ``x`` (float32), times ``t`` and events ``e`` (0/1)
    of the fixed ``train`` and ``test`` splits."""

    name: str
    x_train: np.ndarray
    t_train: np.ndarray
    e_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    e_test: np.ndarray


def read_survival_h5(path: str | Path, name: str = "cohort") -> SurvivalData:
    """Read a DeepSurv HDF5 file (groups ``train``/``test`` with ``x``, ``t``, ``e``).

    A file that is not HDF5, lacks a group or an array, has mismatched lengths, non-finite
    or negative times, or events other than 0/1 raises :class:`SurvivalFileError` naming the
    file and the problem.
    """
    import h5py

    path = Path(path)
    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as handle:
            for split in ("train", "test"):
                if split not in handle:
                    raise SurvivalFileError(
                        f"{path}: no group {split!r} (found {sorted(handle.keys())})"
                    )
                group = handle[split]
                for key in ("x", "t", "e"):
                    if key not in group:
                        raise SurvivalFileError(f"{path}: group {split!r} has no array {key!r}")
                    out[f"{key}_{split}"] = np.asarray(group[key])
    except OSError as error:
        raise SurvivalFileError(f"{path}: not a readable HDF5 file ({error})") from None
    for split in ("train", "test"):
        x, t, e = out[f"x_{split}"], out[f"t_{split}"].reshape(-1), out[f"e_{split}"].reshape(-1)
        if x.ndim != 2 or not len(x) == len(t) == len(e):
            raise SurvivalFileError(
                f"{path}: {split} has x {x.shape}, t {t.shape}, e {e.shape}: lengths differ"
            )
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise SurvivalFileError(f"{path}: {split} times must be finite and >= 0")
        if not set(np.unique(e)) <= {0, 1}:
            raise SurvivalFileError(f"{path}: {split} events must be 0 or 1")
        out[f"x_{split}"] = x.astype(np.float32)
        out[f"t_{split}"] = t.astype(np.float64)
        out[f"e_{split}"] = e.astype(np.int64)
    return SurvivalData(name=name, **out)


def load_survival(cohort: str) -> SurvivalData:
    """Load DeepSurv cohort ``cohort`` (support, gbsg, whas, metabric) from the data root."""
    if cohort not in SURVIVAL_COHORTS:
        raise ValueError(f"cohort must be one of {SURVIVAL_COHORTS}, got {cohort!r}")
    return read_survival_h5(data.fetch(f"deepsurv_{cohort}"), cohort)


def breslow_survival(
    risk_train: np.ndarray,
    t_train: np.ndarray,
    e_train: np.ndarray,
    risk_new: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """Survival curves ``S(t | x) = exp(-H0(t) exp(r(x)))`` of a Cox-type model at ``times``.

    ``H0`` is Breslow's estimate of the baseline cumulative hazard from the training data:
    at each event time, the deaths divided by the sum of ``exp(r)`` over those still at
    risk. ``risk_*`` are log-risks (the network's output). Returns (n_new, len(times)).
    """
    r = np.asarray(risk_train, dtype=np.float64).reshape(-1)
    t = np.asarray(t_train, dtype=np.float64).reshape(-1)
    e = np.asarray(e_train).reshape(-1).astype(bool)
    shift = r.max()
    w = np.exp(r - shift)
    event_times = np.unique(t[e])
    order = np.argsort(t)
    t_sorted, w_sorted = t[order], w[order]
    at_risk = np.cumsum(w_sorted[::-1])[::-1]  # sum of w over t_j >= t_sorted[i]
    first = np.searchsorted(t_sorted, event_times, side="left")
    deaths = np.array([np.sum(e & (t == s)) for s in event_times], dtype=np.float64)
    hazard = np.cumsum(deaths / at_risk[first])  # in units of exp(shift)
    cum = np.concatenate([[0.0], hazard])[np.searchsorted(event_times, times, side="right")]
    rn = np.asarray(risk_new, dtype=np.float64).reshape(-1)
    return np.exp(-np.outer(np.exp(rn - shift), cum))


def evaluation_times(t_train: np.ndarray, t_test: np.ndarray, e_test: np.ndarray, n: int = 20):
    """``n`` times between the 10th and 80th percentile of the test event times (and below
    the last training time), where the IPCW metrics are defined and not too noisy."""
    events = np.asarray(t_test)[np.asarray(e_test).astype(bool)]
    low, high = np.percentile(events, [10, 80])
    high = min(high, np.max(t_train) - 1e-6, np.max(t_test) - 1e-6)
    return np.linspace(low, high, n)


def survival_metrics(
    t_train: np.ndarray,
    e_train: np.ndarray,
    t_test: np.ndarray,
    e_test: np.ndarray,
    risk: np.ndarray,
    surv: np.ndarray | None = None,
    times: np.ndarray | None = None,
) -> dict[str, float]:
    """Harrell's C, Uno's C, the mean time-dependent AUC and (with survival curves ``surv``
    at ``times``) the integrated Brier score of one model on a test split.

    ``risk``: higher means earlier death. Uno's C, the time-dependent AUC and the Brier
    score weight cases by the inverse probability of remaining uncensored, estimated on the
    training split (scikit-survival, GPL-3.0); they are computed up to the last of ``times``.
    """
    from sksurv.metrics import (
        concordance_index_censored,
        concordance_index_ipcw,
        cumulative_dynamic_auc,
        integrated_brier_score,
    )
    from sksurv.util import Surv

    train = Surv.from_arrays(np.asarray(e_train).astype(bool), t_train)
    test = Surv.from_arrays(np.asarray(e_test).astype(bool), t_test)
    times = evaluation_times(t_train, t_test, e_test) if times is None else np.asarray(times)
    risk = np.asarray(risk, dtype=np.float64).reshape(-1)
    out = {
        "harrell_c": float(
            concordance_index_censored(np.asarray(e_test).astype(bool), t_test, risk)[0]
        ),
        "uno_c": float(concordance_index_ipcw(train, test, risk, tau=times[-1])[0]),
        "mean_td_auc": float(cumulative_dynamic_auc(train, test, risk, times)[1]),
    }
    if surv is not None:
        out["integrated_brier"] = float(integrated_brier_score(train, test, surv, times))
    return out


def net_benefit(y_true: np.ndarray, prob: np.ndarray, thresholds: np.ndarray) -> pd.DataFrame:
    """Decision-curve analysis (Vickers & Elkin 2006): net benefit of acting on ``prob`` at
    each threshold probability ``pt``, against treating everyone and no one.

    Net benefit = TP/n - FP/n * pt / (1 - pt): true positives gained, minus false positives
    weighted by the odds at which a clinician would just be willing to act. Treat-none is 0;
    treat-all is prevalence - (1 - prevalence) * pt / (1 - pt).
    """
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(prob, dtype=np.float64)
    n = len(y)
    rows = []
    for pt in np.asarray(thresholds, dtype=np.float64):
        if not 0 < pt < 1:
            raise ValueError(f"thresholds must lie strictly between 0 and 1, got {pt}")
        called = p >= pt
        odds = pt / (1 - pt)
        model = np.sum(called & y) / n - np.sum(called & ~y) / n * odds
        treat_all = y.mean() - (1 - y.mean()) * odds
        rows.append({"threshold": pt, "model": model, "treat_all": treat_all, "treat_none": 0.0})
    return pd.DataFrame(rows)
