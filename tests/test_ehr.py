"""Tests of helpers.ehr: stay parsing, grids, archives, outcomes, cache, splits, features,
survival files and metrics (synthetic files in tmp_path; the real data where cached)."""

from __future__ import annotations

import gzip
import io
import tarfile

import h5py
import numpy as np
import pandas as pd
import pytest

from helpers import data, ehr
from tests.conftest import require

STAY = """Time,Parameter,Value
00:00,RecordID,132539
00:00,Age,54
00:00,Gender,0
00:00,Height,-1
00:00,ICUType,4
00:00,Weight,-1
00:07,HR,73
00:07,Urine,900
00:37,HR,77
00:37,Urine,60
01:37,Temp,-17.8
02:10,pH,7.35
02:20,pH,735
03:00,Weight,80
01:50,,1.9
48:00,HR,90
"""


def _archive(path, stays: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in stays.items():
            raw = text.encode()
            info = tarfile.TarInfo(f"set-a/{name}.txt")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def test_parse_stay_static_series_and_dropped_rows():
    stay = ehr.parse_stay(STAY)
    assert stay.record_id == 132539
    assert stay.static["Age"] == 54 and stay.static["Gender"] == 0
    assert np.isnan(stay.static["Height"]) and np.isnan(stay.static["Weight"])  # -1 = missing
    # the later Weight row is a time-series value; Temp -17.8 and pH 735 are impossible
    assert set(stay.series["parameter"]) == {"HR", "Urine", "pH", "Weight"}
    assert stay.dropped["out_of_range"] == 2
    assert stay.dropped["out_of_range:Temp"] == 1 and stay.dropped["out_of_range:pH"] == 1
    assert stay.dropped["empty_parameter"] == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("00:10,HR", "expected 3 fields"),
        ("0x:10,HR,70", "HH:MM"),
        ("00:10,HR,high", "could not convert"),
        ("00:10,Heartrate,70", "unknown parameter 'Heartrate'"),
    ],
)
def test_parse_stay_malformed_lines_name_the_file_and_line(line, message):
    text = STAY.replace("01:50,,1.9\n", "") + line + "\n"
    with pytest.raises(ehr.StayFormatError, match="132539.txt, line 17") as caught:
        ehr.parse_stay(text, "set-a/132539.txt")
    assert message in str(caught.value)


def test_parse_stay_needs_header_and_record_id():
    with pytest.raises(ehr.StayFormatError, match="first line"):
        ehr.parse_stay("HR,70\n", "x.txt")
    with pytest.raises(ehr.StayFormatError, match="no RecordID"):
        ehr.parse_stay("Time,Parameter,Value\n00:00,Age,40\n", "x.txt")
    assert issubclass(ehr.StayFormatError, data.DatasetCorrupt)


def test_to_grid_averages_sums_urine_and_keeps_hour_48():
    values, mask = ehr.to_grid(ehr.parse_stay(STAY.replace("01:50,,1.9\n", "")))
    hr, urine = ehr.VARIABLES.index("HR"), ehr.VARIABLES.index("Urine")
    assert values.shape == (48, 37) and mask.dtype == np.uint8
    assert values[0, hr] == pytest.approx(75.0)  # mean of 73 and 77
    assert values[0, urine] == pytest.approx(960.0)  # a volume: summed
    assert values[47, hr] == 90 and mask[47, hr] == 1  # 48:00 goes to the last hour
    assert np.isnan(values[5, hr]) and mask[5, hr] == 0
    assert mask.sum() == int(np.isfinite(values).sum())


def test_time_since_seen_follows_gru_d_definition():
    mask = np.array([[1], [0], [0], [1], [0]])
    assert ehr.time_since_seen(mask)[:, 0].tolist() == [0, 1, 2, 3, 1]
    batch = ehr.time_since_seen(np.stack([mask, 1 - mask]))
    assert batch.shape == (2, 5, 1) and batch[1, :, 0].tolist() == [0, 1, 1, 1, 2]


def test_read_archive_and_truncated_archive(tmp_path):
    path = tmp_path / "set-a.tar.gz"
    _archive(path, {"1": STAY.replace("132539", "1"), "2": STAY.replace("132539", "2")})
    stays = ehr.read_archive(path)
    assert [s.record_id for s in stays] == [1, 2]
    assert [s.record_id for s in ehr.read_archive(path, limit=1)] == [1]
    raw = path.read_bytes()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ehr.StayFormatError, match="broken.tar.gz.*truncated"):
        ehr.read_archive(broken)
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(ehr.StayFormatError, match="no stay files"):
        ehr.read_archive(empty)
    plain = tmp_path / "plain.tar.gz"
    plain.write_bytes(gzip.compress(b"not a tar file at all" * 100))
    with pytest.raises(ehr.StayFormatError, match="plain.tar.gz"):
        ehr.read_archive(plain)


def test_read_archive_names_the_bad_member(tmp_path):
    path = tmp_path / "set-a.tar.gz"
    _archive(path, {"7": STAY.replace("132539", "7") + "01:00,Foo,1\n"})
    with pytest.raises(ehr.StayFormatError, match=r"set-a.tar.gz:set-a/7.txt.*'Foo'"):
        ehr.read_archive(path)


def test_read_outcomes_checks_ids(tmp_path):
    path = tmp_path / "Outcomes-a.txt"
    path.write_text(
        "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"
        "1,10,2,5,-1,0\n2,20,8,3,3,1\n"
    )
    table = ehr.read_outcomes(path, [2, 1])
    assert table["RecordID"].tolist() == [2, 1] and table["In-hospital_death"].tolist() == [1, 0]
    with pytest.raises(ehr.OutcomeMismatch, match=r"Outcomes-a.txt.*1 stays without an outcome"):
        ehr.read_outcomes(path, [1, 2, 3])
    with pytest.raises(ehr.OutcomeMismatch, match="1 outcomes without a stay"):
        ehr.read_outcomes(path, [1])
    bad = tmp_path / "bad.txt"
    bad.write_text("RecordID,SAPS-I\n1,3\n")
    with pytest.raises(ehr.OutcomeMismatch, match="missing columns"):
        ehr.read_outcomes(bad)
    dup = tmp_path / "dup.txt"
    dup.write_text(path.read_text() + "2,20,8,3,3,1\n")
    with pytest.raises(ehr.OutcomeMismatch, match="listed twice"):
        ehr.read_outcomes(dup)


def test_load_physionet2012_offline_without_files(empty_root):
    with pytest.raises(data.DatasetUnavailable):
        ehr.load_physionet2012(limit=5)


def test_load_physionet2012_real_subset_and_cache(tmp_path, monkeypatch):
    require("physionet2012_set_a")
    require("physionet2012_outcomes_a")
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))  # a fresh cache, never a stale one
    icu = ehr.load_physionet2012(parts=("a",), limit=60)
    assert icu.values.shape == (60, 48, 37) and icu.static.shape == (60, 5)
    assert icu.cache_file is not None and icu.cache_file.parent.parent == tmp_path
    assert icu.cache_file.is_file()
    assert np.array_equal(np.isfinite(icu.values), icu.mask > 0)
    again = ehr.load_physionet2012(parts=("a",), limit=60)
    assert again.cache_file == icu.cache_file
    assert np.array_equal(again.mask, icu.mask) and again.outcomes.equals(icu.outcomes)
    outcomes = pd.read_csv(require("physionet2012_outcomes_a")).set_index("RecordID")
    assert icu.y.tolist() == outcomes.loc[icu.record_ids, "In-hospital_death"].tolist()
    with pytest.raises(ValueError, match="parts"):
        ehr.load_physionet2012(parts=("d",))


def test_raindrop_splits_real_and_bad_file(tmp_path):
    require("physionet2012_raindrop_splits")
    table = ehr.raindrop_splits()
    assert len(table) == 11988
    for k in range(1, 6):
        counts = table[f"split{k}"].value_counts()
        assert counts.to_dict() == {"train": 9590, "val": 1199, "test": 1199}
    ids = table.index.to_numpy()[:100]
    pos = ehr.split_positions(ids, 1, table)
    assert sum(len(v) for v in pos.values()) == 100
    assert not set(pos["train"]) & set(pos["test"])
    bad = tmp_path / "splits.csv"
    bad.write_text("RecordID,split1\n1,train\n")
    with pytest.raises(data.DatasetCorrupt, match="columns"):
        ehr.raindrop_splits(bad)
    with pytest.raises(ValueError, match="1..5"):
        ehr.split_positions(ids, 6, table)


def _toy_icu(n=6):
    rng = np.random.default_rng(0)
    mask = (rng.random((n, 48, 37)) < 0.3).astype(np.uint8)
    values = np.where(mask > 0, rng.normal(10, 2, mask.shape), np.nan).astype(np.float32)
    static = rng.normal(size=(n, 5)).astype(np.float32)
    outcomes = pd.DataFrame({"In-hospital_death": [0, 1] * (n // 2)})
    return ehr.ICUData(np.arange(n), values, mask, static, outcomes, [], {})


def test_standardize_impute_and_summary_features():
    icu = _toy_icu()
    z, mean, sd = ehr.standardize(icu.values, icu.mask, np.arange(4))
    assert z.dtype == np.float32 and np.all(z[icu.mask == 0] == 0)
    observed = icu.values[:4][icu.mask[:4] > 0]
    assert mean.shape == (37,) and np.isclose(np.mean(z[:4][icu.mask[:4] > 0]), 0, atol=0.2)
    assert abs(observed.mean() - mean.mean()) < 0.5
    ff = ehr.impute(z, icu.mask, "ffill")
    s, d = 0, 0
    seen = np.flatnonzero(icu.mask[s, :, d])
    t = seen[0] + 1
    if icu.mask[s, t, d] == 0:
        assert ff[s, t, d] == z[s, seen[0], d]
    assert np.all(ff[s, : seen[0], d] == 0)
    with pytest.raises(ValueError, match="how"):
        ehr.impute(z, icu.mask, "median")
    features = ehr.summary_features(icu)
    assert features.shape == (6, 37 * 6 + 5)
    hr = ehr.VARIABLES.index("HR")
    column = icu.values[0, :, hr]
    assert features.loc[0, "HR_max"] == pytest.approx(np.nanmax(column))
    assert features.loc[0, "HR_last"] == pytest.approx(column[np.isfinite(column)][-1])
    assert features.loc[0, "HR_count"] == icu.mask[0, :, hr].sum()
    early = ehr.summary_features(icu, hours=6)
    assert early.loc[0, "HR_count"] == icu.mask[0, :6, hr].sum()
    rates = ehr.missing_rates(icu)
    assert rates.is_monotonic_decreasing and 0.6 < rates.mean() < 0.8
    sub = icu.subset(np.array([1, 3]))
    assert sub.y.tolist() == [1, 1] and sub.delta().shape == (2, 48, 37)


def _h5(path, groups=("train", "test"), e=None):
    with h5py.File(path, "w") as handle:
        for g in groups:
            grp = handle.create_group(g)
            grp["x"] = np.ones((4, 3), dtype=np.float32)
            grp["t"] = np.array([1.0, 2, 3, 4])
            grp["e"] = np.array([1, 0, 1, 1] if e is None else e)


def test_read_survival_h5_good_and_bad(tmp_path):
    _h5(tmp_path / "ok.h5")
    cohort = ehr.read_survival_h5(tmp_path / "ok.h5")
    assert cohort.x_train.shape == (4, 3) and cohort.e_test.dtype == np.int64
    _h5(tmp_path / "no_test.h5", groups=("train",))
    with pytest.raises(ehr.SurvivalFileError, match=r"no_test.h5: no group 'test'"):
        ehr.read_survival_h5(tmp_path / "no_test.h5")
    _h5(tmp_path / "events.h5", e=[0, 2, 1, 1])
    with pytest.raises(ehr.SurvivalFileError, match="events must be 0 or 1"):
        ehr.read_survival_h5(tmp_path / "events.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ehr.SurvivalFileError, match="text.h5: not a readable HDF5"):
        ehr.read_survival_h5(tmp_path / "text.h5")


def test_load_survival_real_cohorts_and_metabric_offline(empty_root):
    with pytest.raises(data.DatasetUnavailable, match="metabric"):
        ehr.load_survival("metabric")
    with pytest.raises(ValueError, match="cohort"):
        ehr.load_survival("flchain")


@pytest.mark.parametrize(
    ("cohort", "n_train", "n_test", "p"), [("gbsg", 1546, 686, 7), ("whas", 1310, 328, 6)]
)
def test_load_survival_real(cohort, n_train, n_test, p):
    require(f"deepsurv_{cohort}")
    d = ehr.load_survival(cohort)
    assert d.x_train.shape == (n_train, p) and d.x_test.shape == (n_test, p)
    assert 0 < d.e_train.mean() < 1


def test_breslow_survival_matches_kaplan_meier_without_covariates():
    rng = np.random.default_rng(1)
    t = rng.exponential(5, 200).round(1)
    e = (rng.random(200) < 0.7).astype(int)
    times = np.array([1.0, 3.0, 6.0])
    surv = ehr.breslow_survival(np.zeros(200), t, e, np.zeros(2), times)
    # with zero risk Breslow's estimator is the Nelson-Aalen estimator: S = exp(-H)
    hazard = [
        sum(np.sum((t == s) & (e == 1)) / np.sum(t >= s) for s in np.unique(t[e == 1]) if s <= u)
        for u in times
    ]
    assert np.allclose(surv[0], np.exp(-np.array(hazard)))
    assert np.all(np.diff(surv[0]) <= 0)
    higher = ehr.breslow_survival(np.zeros(200), t, e, np.array([0.0, 1.0]), times)
    assert np.all(higher[1] < higher[0])  # higher risk, lower survival


def test_survival_metrics_perfect_and_reversed_risk():
    rng = np.random.default_rng(2)
    t = rng.exponential(5, 300)
    e = (rng.random(300) < 0.8).astype(int)
    good = ehr.survival_metrics(t, e, t, e, -t)
    bad = ehr.survival_metrics(t, e, t, e, t)
    assert good["harrell_c"] > 0.99 and bad["harrell_c"] < 0.01
    assert good["uno_c"] > 0.95 and good["mean_td_auc"] > 0.95
    times = ehr.evaluation_times(t, t, e)
    surv = ehr.breslow_survival(np.zeros(300), t, e, np.zeros(300), times)
    out = ehr.survival_metrics(t, e, t, e, np.zeros(300), surv, times)
    assert 0 < out["integrated_brier"] < 0.25


def test_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    table = ehr.net_benefit(y, p, np.array([0.2, 0.5]))
    # pt 0.2: 2 TP, 1 FP -> 0.2 - 0.1 * 0.25; pt 0.5: 1 TP, 1 FP -> 0.1 - 0.1
    assert table["model"].tolist() == pytest.approx([0.175, 0.0])
    assert table["treat_all"].tolist() == pytest.approx([0.2 - 0.8 * 0.25, 0.2 - 0.8])
    with pytest.raises(ValueError, match="strictly between"):
        ehr.net_benefit(y, p, np.array([0.0]))
