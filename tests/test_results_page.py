"""The results page: the `benchmark-report` directive (book/_ext/benchmark_results.py) turns the
committed JSON reports into tables, so the numbers on the page are the reports' numbers."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import benchmark_results as br  # noqa: E402

REPORTS = sorted((ROOT / "benchmarks" / "reports").glob("*.json"))
RESULTS_PAGE = ROOT / "book" / "results.md"


def test_every_committed_report_is_on_the_results_page_and_every_directive_has_a_report():
    named = re.findall(r"```\{benchmark-report\} (\S+)", RESULTS_PAGE.read_text())
    assert sorted(named) == sorted(p.stem for p in REPORTS)
    assert len(named) == len(set(named))


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.stem)
def test_headline_rows_hold_the_reports_numbers(path):
    report = json.loads(path.read_text())
    header, rows = br.headline_rows(report)
    assert rows and all(len(row) == len(header) for row in rows)
    label, key = br.HEADLINES[br.report_kind(report)][0]
    assert rows[0][0] == label
    if "summary" in report:
        stats = report["summary"][key]
        assert rows[0][1] == f"{stats['mean']:.3f} ± {stats['std']:.3f}"
        assert rows[0][2] == f"{stats['min']:.3f} – {stats['max']:.3f}"
        assert rows[0][3:] == [f"{seed[key]:.3f}" for seed in report["per_seed"]]
    else:
        section, field = key.split(".")
        assert rows[0][1] == f"{report[section][field]:.3f}"


def test_cnn_report_gets_the_published_medmnist_table_and_our_mean_last():
    report = json.loads((ROOT / "benchmarks" / "reports" / "cnn_pneumoniamnist_28_cpu.json").read_text())
    header, rows = br.reference_rows(report)
    assert header == ["method", "AUC", "ACC"]
    published = report["reference_medmnist_v2"]
    assert [row[0] for row in rows[:-1]] == list(published)
    assert rows[0][1:] == [f"{published[rows[0][0]]['auc']:.3f}", f"{published[rows[0][0]]['acc']:.3f}"]
    assert rows[-1][0].startswith("this course (cpu profile, mean of 3 seeds)")
    assert rows[-1][1] == f"{report['summary']['test_auc']['mean']:.3f}"


def test_targets_and_verdicts_are_listed_as_recorded():
    report = {"benchmark": "gan_medmnist", "targets": {"ratio_min": 0.9}, "targets_met": {"ratio": False}}
    assert br.target_rows(report) == (["target or verdict", "value"],
                                      [["target: ratio_min", "0.900"], ["met: ratio", "no"]])
    assert br.target_rows({"task": "splice", "target": "accuracy >= 0.96"})[1] == [["target", "accuracy >= 0.96"]]
    assert br.target_rows({"task": "splice"}) is None


def test_formatting_rules():
    assert br.fmt(0.95891) == "0.959"
    assert br.fmt(4708) == "4,708"
    assert br.fmt(207.93, "train_seconds") == "208"
    assert br.fmt(True) == "yes"


def test_bad_reports_raise_errors_that_name_the_problem(tmp_path):
    with pytest.raises(br.ReportError, match="unknown report kind 'cnn_other'"):
        br.headline_rows({"benchmark": "cnn_other"})
    with pytest.raises(br.ReportError, match="neither a 'benchmark' nor a 'task'"):
        br.report_kind({"profile": "cpu"})
    with pytest.raises(br.ReportError, match="no field 'usefulness.trtr_test_auc'"):
        br.headline_rows({"benchmark": "gan_medmnist"})
    with pytest.raises(br.ReportError, match="no benchmark report .*missing.json"):
        br.load_report(tmp_path / "missing.json")
    (tmp_path / "cut.json").write_text('{"benchmark": "gan_')
    with pytest.raises(br.ReportError, match="cut.json is not valid JSON"):
        br.load_report(tmp_path / "cut.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(br.ReportError, match="does not hold a JSON object"):
        br.load_report(tmp_path / "list.json")


def test_reports_folder_is_found_above_the_book_or_named(tmp_path):
    assert br.find_reports_dir(ROOT / "book") == ROOT / "benchmarks" / "reports"
    assert br.find_reports_dir(ROOT / "build" / "test-book") == ROOT / "benchmarks" / "reports"
    (tmp_path / "reports").mkdir()
    assert br.find_reports_dir(tmp_path / "book", "../reports") == (tmp_path / "reports").resolve()
    with pytest.raises(br.ReportError, match="is not a folder"):
        br.find_reports_dir(tmp_path / "book", "../nowhere")
    with pytest.raises(br.ReportError, match="no benchmarks/reports folder above"):
        br.find_reports_dir(tmp_path / "book")
