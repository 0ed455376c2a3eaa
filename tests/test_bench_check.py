"""benchmarks/check.py (`make bench-check`): a re-run passes only when its headline mean lies
within the committed mean ± 2 sd (at least 0.01), a missing or renamed headline key is a clear
error, and --record appends the outcome to the committed report's provenance and nothing else.
Fake reports and a fake benchmark script: no training."""

from __future__ import annotations

import copy
import json
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks import check
from benchmarks.report_format import REPORT_KEYS, to_json

ROOT = Path(__file__).resolve().parents[1]


def _report(values=(0.89, 0.90, 0.91), seeds=(0, 1, 2), metric="auc", command=None) -> dict:
    import statistics

    command = command or f"benchmarks/toy.py --seeds {' '.join(map(str, seeds))} --out toy.json"
    report = {
        "benchmark": "toy",
        "dataset": "toy data",
        "profile": "cpu",
        "seeds": list(seeds),
        "settings": {},
        "metrics": {
            metric: {"label": "test AUC", "unit": ""},
            "seconds": {"label": "time", "unit": "s"},
        },
        "headline": {metric: statistics.fmean(values), "seconds": 3.0},
        "spread": {
            metric: {
                "sd": statistics.stdev(values) if len(values) > 1 else None,
                "min": min(values),
                "max": max(values),
                "n": len(values),
            },
            "seconds": {"sd": None, "min": 3.0, "max": 3.0, "n": len(values)},
        },
        "per_seed": [
            {"seed": s, metric: v, "seconds": 3.0} for s, v in zip(seeds, values, strict=True)
        ],
        "baselines": {},
        "reference": None,
        "targets": [],
        "provenance": {
            "machine": {"platform": "toy", "cpu_count": 2, "gpus": "none"},
            "versions": {"python": "3"},
            "seconds": 6.0,
            "argv": command.split()[1:],
            "command": command,
            "date": "2026-12-01",
            "reproduced": [],
        },
        "model_card": {"intended_use": "t", "data": "t", "not_for": "t", "failure_modes": ["t"]},
        "details": {},
    }
    assert tuple(report) == REPORT_KEYS
    return report


def test_the_rule_passes_inside_and_fails_outside_two_sd():
    committed = _report((0.89, 0.90, 0.91))  # mean 0.90, sd 0.01: tolerance 0.02
    inside = check.compare(committed, _report((0.91, 0.915, 0.92)), ["auc"])[0]
    assert inside["tolerance"] == pytest.approx(0.02)
    assert inside["new_mean"] == pytest.approx(0.915) and inside["within"]
    outside = check.compare(committed, _report((0.92, 0.925, 0.93)), ["auc"])[0]
    assert outside["difference"] == pytest.approx(0.025) and not outside["within"]
    below = check.compare(committed, _report((0.87, 0.875, 0.88)), ["auc"])[0]
    assert not below["within"]  # both directions


def test_a_tiny_sd_or_a_single_run_gets_the_minimum_tolerance():
    tiny = _report((0.9000, 0.9001, 0.9002))
    row = check.compare(tiny, _report((0.905, 0.906, 0.907)), ["auc"])[0]
    assert row["tolerance"] == check.MIN_TOLERANCE == 0.01 and row["within"]
    assert not check.compare(tiny, _report((0.915, 0.915, 0.915)), ["auc"])[0]["within"]
    single = _report((0.9,), seeds=(0,))
    row = check.compare(single, _report((0.905,), seeds=(0,)), ["auc"])[0]
    assert row["committed_sd"] is None and row["tolerance"] == 0.01 and row["within"]


def test_a_missing_or_renamed_headline_key_is_a_clear_error():
    committed, renamed = _report(), _report(metric="test_auc")
    with pytest.raises(check.CheckError, match="headline key 'auc' is not in the re-run's report"):
        check.compare(committed, renamed, ["auc"])
    with pytest.raises(check.CheckError, match="headline key 'accuracy' is not in the committed"):
        check.headline_metrics(committed, ["accuracy"])
    assert check.headline_metrics(committed) == ["auc"]  # default: the first metric


def test_a_re_run_of_other_seeds_or_another_profile_is_no_reproduction():
    with pytest.raises(check.CheckError, match="seeds"):
        check.compare(_report(), _report(seeds=(3, 4, 5)), ["auc"])
    other = _report()
    other["profile"] = "smoke"
    with pytest.raises(check.CheckError, match="profile 'smoke'"):
        check.compare(_report(), other, ["auc"])


def test_the_re_run_command_is_the_committed_one_with_another_out():
    report = _report(command="benchmarks/toy.py --seeds 0 1 2 --out benchmarks/reports/toy.json")
    assert check.rerun_command(report, Path("build/bench-check/toy.json")) == [
        "benchmarks/toy.py",
        "--seeds",
        "0",
        "1",
        "2",
        "--out",
        "build/bench-check/toy.json",
    ]
    no_out = _report(command="benchmarks/toy.py --seeds 0")
    assert check.rerun_command(no_out, Path("x.json"))[-2:] == ["--out", "x.json"]
    broken = _report()
    broken["provenance"]["argv"] = ["--seeds", "9"]
    with pytest.raises(check.CheckError, match="disagree"):
        check.rerun_command(broken, Path("x.json"))


FAKE_BENCHMARK = """
import json, sys
from pathlib import Path
argv = sys.argv[1:]
out = Path(argv[argv.index("--out") + 1])
report = json.loads(Path({template!r}).read_text())
report["provenance"]["argv"] = argv
report["provenance"]["command"] = " ".join([sys.argv[0], *argv])
out.write_text(json.dumps(report))
"""


@pytest.mark.parametrize(
    ("values", "status", "within"), [((0.90, 0.905, 0.91), 0, True), ((0.95, 0.95, 0.95), 1, False)]
)
def test_bench_check_re_runs_the_recorded_command_and_records_the_outcome(
    tmp_path, capsys, values, status, within
):
    template = tmp_path / "rerun.json"
    template.write_text(json.dumps(_report(values)))
    script = tmp_path / "toy.py"
    script.write_text(textwrap.dedent(FAKE_BENCHMARK.format(template=str(template))))
    reports = tmp_path / "reports"
    reports.mkdir()
    committed = _report(command=f"{script} --seeds 0 1 2 --out {reports / 'toy_cpu.json'}")
    (reports / "toy_cpu.json").write_text(to_json(committed))
    before = copy.deepcopy(committed)

    args = ["toy_cpu", "--reports-dir", str(reports), "--out-dir", str(tmp_path / "out")]
    assert check.main([*args, "--record"]) == status
    printed = capsys.readouterr().out
    assert "0.9000 ± 0.0100 (3) | 0.8800 – 0.9200" in printed  # committed, side by side
    assert ("WITHIN" if within else "OUTSIDE") in printed
    assert (tmp_path / "out" / "toy_cpu.json").is_file()  # the re-run wrote elsewhere

    after = json.loads((reports / "toy_cpu.json").read_text())
    entry = after["provenance"].pop("reproduced")[-1]
    before["provenance"].pop("reproduced")
    assert after == before  # the committed numbers are untouched
    assert entry["within"] is within and entry["new_mean"]["auc"] == pytest.approx(sum(values) / 3)
    assert (
        entry["machine"]["cpu_count"] == 2
        and entry["date"]
        and entry["command"].startswith(str(script))
    )
    assert "--out" in entry["command"] and str(tmp_path / "out") in entry["command"]


def test_unknown_report_and_a_failing_re_run_exit_with_status_2(tmp_path, capsys):
    reports = tmp_path / "reports"
    reports.mkdir()
    assert check.main(["nothing", "--reports-dir", str(reports)]) == 2
    assert "no committed report 'nothing'" in capsys.readouterr().err
    crash = tmp_path / "crash.py"
    crash.write_text("raise SystemExit(3)\n")
    (reports / "toy_cpu.json").write_text(to_json(_report(command=f"{crash} --seeds 0 1 2")))
    assert check.main(["toy_cpu", "--reports-dir", str(reports), "--out-dir", str(tmp_path)]) == 2
    assert "re-run exited with status 3" in capsys.readouterr().err


def test_a_committed_rerun_report_can_be_compared_without_running(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "toy_cpu.json").write_text(to_json(_report()))
    new = tmp_path / "new.json"
    new.write_text(to_json(_report(metric="renamed")))
    argv = ["toy_cpu", "--reports-dir", str(reports), "--new-report", str(new)]
    assert check.main(argv) == 2  # the renamed key is an error, not a silent pass
    new.write_text(to_json(_report((0.9, 0.9, 0.9))))
    assert check.main(argv) == 0


def test_every_committed_report_names_a_command_that_check_can_re_run():
    for path in sorted((ROOT / "benchmarks" / "reports").glob("*.json")):
        report = check.load(path)
        command = check.rerun_command(report, Path("build/bench-check") / path.name)
        assert (ROOT / command[0]).is_file(), path.name
        assert command[-2:] == ["--out", f"build/bench-check/{path.name}"]
        assert check.headline_metrics(report)[0] == next(iter(report["metrics"]))
    assert sys.executable  # the re-run uses this interpreter


def test_make_bench_check_runs_the_script_with_the_named_reports():
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    plan = subprocess.run(
        ["make", "-n", "bench-check", "CHECK=rnn_splice_cpu survival_gbsg_cpu", "RECORD=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "benchmarks/check.py rnn_splice_cpu survival_gbsg_cpu --record" in plan


def test_a_record_written_by_an_earlier_check_is_not_an_uncommitted_change(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    reports = tmp_path / "benchmarks" / "reports"
    reports.mkdir(parents=True)
    (reports / "toy_cpu.json").write_text("{}\n")
    (tmp_path / "toy.py").write_text("print(1)\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "toy")
    assert check._git_state(tmp_path)["uncommitted_changes"] is False
    (reports / "toy_cpu.json").write_text('{"provenance": {"reproduced": [1]}}\n')
    assert check._git_state(tmp_path)["uncommitted_changes"] is False
    (tmp_path / "toy.py").write_text("print(2)\n")  # the code that runs: a change
    state = check._git_state(tmp_path)
    assert state["uncommitted_changes"] is True
    assert len(state["commit"]) == 40
