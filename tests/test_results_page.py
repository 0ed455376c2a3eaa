"""The results page: the `benchmark-report` directive (book/_ext/benchmark_results.py) renders
any report of the common format (benchmarks/report.py), so the numbers on the page are the
reports' numbers and no benchmark needs a special case."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import benchmark_results as br  # noqa: E402

from benchmarks import report as rp  # noqa: E402

REPORTS = sorted((ROOT / "benchmarks" / "reports").glob("*.json"))
RESULTS_PAGE = ROOT / "book" / "results.md"


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_committed_report_is_on_the_results_page_and_every_directive_has_a_report():
    named = re.findall(r"```\{benchmark-report\} (\S+)", RESULTS_PAGE.read_text())
    assert sorted(named) == sorted(p.stem for p in REPORTS)
    assert len(named) == len(set(named))


def test_every_report_has_exactly_the_common_keys_and_passes_validation():
    for path in REPORTS:
        report = _load(path)
        assert tuple(report) == rp.REPORT_KEYS, path.name
        rp.validate(report, path.name)


def test_the_report_keys_are_listed_once_in_a_module_without_heavy_imports():
    from benchmarks import report_format

    assert br.REPORT_KEYS == rp.REPORT_KEYS == report_format.REPORT_KEYS
    assert rp.REPORT_KEYS is report_format.REPORT_KEYS
    holders = [
        path.relative_to(ROOT).as_posix()
        for folder in ("benchmarks", "book/_ext", "helpers")
        for path in (ROOT / folder).glob("*.py")
        if '"model_card",\n    "details",' in path.read_text()
    ]
    assert holders == ["benchmarks/report_format.py"]
    source = (ROOT / "benchmarks" / "report_format.py").read_text()
    assert not re.search(r"^(import|from) (?!__future__|json|collections|typing)", source, re.M)


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.stem)
def test_headline_rows_hold_the_reports_numbers_with_sample_sd(path):
    report = _load(path)
    header, rows = br.headline_rows(report)
    assert rows and all(len(row) == len(header) for row in rows)
    first = next(iter(report["metrics"]))
    values = [run[first] for run in report["per_seed"]]
    assert report["headline"][first] == pytest.approx(sum(values) / len(values))
    if len(values) > 1:
        import statistics

        assert report["spread"][first]["sd"] == pytest.approx(statistics.stdev(values))  # ddof=1
        assert rows[0][1] == f"{report['headline'][first]:.3f} ± {statistics.stdev(values):.3f}"
    assert rows[0][3:] == [f"{v:.3f}" for v in values]


def test_a_target_is_met_only_when_the_mean_meets_it():
    for path in REPORTS:
        for goal in _load(path)["targets"]:
            mean = _load(path)["headline"][goal["metric"]]
            assert goal["mean"] == pytest.approx(mean)
            assert goal["met"] == (
                mean >= goal["value"] if goal["op"] == ">=" else mean <= goal["value"]
            )


def test_cnn_report_gets_the_published_medmnist_table_and_our_mean_last():
    report = _load(ROOT / "benchmarks" / "reports" / "cnn_pneumoniamnist_28_cpu.json")
    header, rows = br.reference_rows(report)
    assert header == ["method", "test AUC", "test accuracy (threshold 0.5)"]
    published = report["reference"]["rows"]
    assert [row[0] for row in rows[:-1]] == list(published)
    first = rows[0][0]
    assert rows[0][1:] == [
        f"{published[first]['test_auc']:.3f}",
        f"{published[first]['test_acc']:.3f}",
    ]
    assert rows[-1][0] == "this course (cpu profile, mean of 3 seeds)"
    assert rows[-1][1] == f"{report['headline']['test_auc']:.3f}"


def _tiny_report(**changes) -> dict:
    report = {
        "benchmark": "toy",
        "dataset": "toy data",
        "profile": "smoke",
        "seeds": [0, 1],
        "settings": {},
        "metrics": {
            "auc": {"label": "test AUC", "unit": ""},
            "seconds": {"label": "time", "unit": "s"},
        },
        "headline": {"auc": 0.8, "seconds": 3.0},
        "spread": {"auc": rp.spread([0.7, 0.9]), "seconds": rp.spread([2.0, 4.0])},
        "per_seed": [
            {"seed": 0, "auc": 0.7, "seconds": 2.0},
            {"seed": 1, "auc": 0.9, "seconds": 4.0},
        ],
        "baselines": {"logistic": {"auc": 0.75}},
        "reference": {
            "citation": "Someone 2020",
            "protocol": "same split",
            "rows": {"paper": {"auc": 0.85}},
        },
        "targets": [{"metric": "auc", "op": ">=", "value": 0.85, "mean": 0.8, "met": False}],
        "provenance": {
            "seconds": 6.0,
            "command": "benchmarks/toy.py --seeds 0 1",
            "argv": ["--seeds", "0", "1"],
        },
        "model_card": {
            "intended_use": "teaching",
            "data": "toy",
            "not_for": "patients",
            "failure_modes": ["fails on Mondays"],
        },
        "details": {},
    }
    report.update(changes)
    return report


def test_an_unknown_benchmark_renders_without_special_cases(tmp_path):
    report = _tiny_report()
    rp.validate(report)
    header, rows = br.headline_rows(report)
    assert rows[0][:3] == ["test AUC", "0.800 ± 0.141", "0.700 – 0.900"]
    assert rows[1][0] == "time (seconds)" and rows[1][1] == "3 ± 1"
    assert br.baseline_rows(report)[1] == [
        ["logistic", "0.750"],
        ["toy (this benchmark, mean)", "0.800"],
    ]
    assert br.target_rows(report)[1] == [["test AUC", ">= 0.850", "0.800", "not met"]]
    card = br.model_card(report).astext()
    assert "Must not be used for" in card and "fails on Mondays" in card
    assert "not yet reproduced" in br.provenance(report)
    image = br.figure(report, tmp_path / "toy.png")
    assert image is not None and image.stat().st_size > 1000


def test_baseline_columns_drop_our_models_name_and_the_last_row_names_it():
    """A label that names this benchmark's model must not head a column of other models."""
    report = _tiny_report(details={"method": "toy CNN"})
    report["metrics"]["auc"] = {"label": "test AUC, toy CNN", "column": "test AUC", "unit": ""}
    rp.validate(report)
    header, rows = br.baseline_rows(report)
    assert header == ["method", "test AUC"]
    assert rows == [["logistic", "0.750"], ["toy CNN (this benchmark, mean)", "0.800"]]
    assert br.headline_rows(report)[1][0][0] == "test AUC, toy CNN"  # the label stays there
    assert br.reference_rows(report)[0] == ["method", "test AUC"]


def test_a_missed_target_never_looks_equal_to_its_mean():
    missed = {"metric": "auc", "op": ">=", "value": 0.618, "mean": 0.61798, "met": False}
    report = _tiny_report(targets=[missed])
    assert br.target_rows(report)[1] == [["test AUC", ">= 0.61800", "0.61798", "not met"]]
    # three decimals wherever they already tell the two apart
    assert br.target_rows(_tiny_report())[1][0][1:3] == [">= 0.850", "0.800"]


def test_failed_runs_and_the_last_re_run_are_shown_with_the_report():
    assert br.failures(_tiny_report()) is None
    report = _tiny_report(
        details={
            "failures": {
                "criterion": "AUC below 0.75",
                "n_runs": 2,
                "n_failed": 1,
                "failed_seeds": [0],
                "reasons": {"0": ["AUC 0.70"]},
                "n_below_target": 2,
                "target": "AUC >= 0.85",
            }
        }
    )
    assert br.failures(report) == (
        "Failed runs: 1 of 2 (seed 0: AUC 0.70). Criterion: AUC below 0.75. "
        "Runs below the target on their own: 2 of 2; target: AUC >= 0.85."
    )
    entry = {
        "date": "2026-12-02T04:40+00:00",
        "machine": {"cpu_count": 2},
        "comparisons": [
            {"metric": "auc", "new_mean": 0.79, "committed_mean": 0.8, "tolerance": 0.283}
        ],
        "within": True,
    }
    report["provenance"]["reproduced"] = [entry]
    assert "last re-run 2026-12-02 on 2 CPU cores: auc 0.790 vs 0.800 ± 0.283 (matched)" in (
        br.provenance(report)
    )
    entry["seconds"] = 750.3  # the re-run's own wall time, beside the report's
    assert "last re-run 2026-12-02 on 2 CPU cores in 750 s: auc 0.790" in br.provenance(report)
    entry["within"] = False
    assert "(did NOT match)" in br.provenance(report)


def test_one_run_has_no_sd_and_a_report_without_scores_has_no_figure(tmp_path):
    report = _tiny_report(
        seeds=[0],
        per_seed=[{"seed": 0, "auc": 0.7, "seconds": 2.0}],
        spread={"auc": rp.spread([0.7]), "seconds": rp.spread([2.0])},
    )
    assert br.headline_rows(report)[1][0][1] == "0.800 (one run)"
    only_time = _tiny_report(metrics={"seconds": {"label": "time", "unit": "s"}})
    assert br.figure(only_time, tmp_path / "none.png") is None


def test_formatting_rules():
    assert br.fmt(0.95891) == "0.959"
    assert br.fmt(4708) == "4,708"
    assert br.fmt(207.93, "s") == "208"
    assert br.fmt(True) == "yes"
    assert br.fmt(None) == "–"


def test_bad_reports_raise_errors_that_name_the_problem(tmp_path):
    broken = _tiny_report()
    del broken["model_card"]
    with pytest.raises(br.ReportError, match="missing model_card"):
        br.headline_rows(broken)
    with pytest.raises(rp.ReportFormatError, match="missing keys \\['model_card'\\]"):
        rp.validate(broken)
    no_headline = _tiny_report(headline={"auc": 0.8})
    with pytest.raises(br.ReportError, match="metric 'seconds' has no headline"):
        br.headline_rows(no_headline)
    card = copy.deepcopy(_tiny_report())
    card["model_card"]["not_for"] = ""
    with pytest.raises(rp.ReportFormatError, match="model card lacks \\['not_for'\\]"):
        rp.validate(card)
    with pytest.raises(br.ReportError, match="no benchmark report .*missing.json"):
        br.load_report(tmp_path / "missing.json")
    (tmp_path / "cut.json").write_text('{"benchmark": "gan_')
    with pytest.raises(br.ReportError, match="cut.json is not valid JSON"):
        br.load_report(tmp_path / "cut.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(br.ReportError, match="does not hold a JSON object"):
        br.load_report(tmp_path / "list.json")
    (tmp_path / "old.json").write_text(json.dumps({"task": "splice", "summary": {}}))
    with pytest.raises(br.ReportError, match="old.json: not in the common report format"):
        br.load_report(tmp_path / "old.json")


def test_reports_folder_is_found_above_the_book_or_named(tmp_path):
    assert br.find_reports_dir(ROOT / "book") == ROOT / "benchmarks" / "reports"
    assert br.find_reports_dir(ROOT / "build" / "test-book") == ROOT / "benchmarks" / "reports"
    (tmp_path / "reports").mkdir()
    assert br.find_reports_dir(tmp_path / "book", "../reports") == (tmp_path / "reports").resolve()
    with pytest.raises(br.ReportError, match="is not a folder"):
        br.find_reports_dir(tmp_path / "book", "../nowhere")
    with pytest.raises(br.ReportError, match="no benchmarks/reports folder above"):
        br.find_reports_dir(tmp_path / "book")
