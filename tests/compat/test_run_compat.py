"""The `make compat` driver (tests/compat/run_compat.py) without building environments."""

from __future__ import annotations

import re

from tests.compat import run_compat


def test_every_dependency_is_pinned_at_its_lower_bound():
    requirements = run_compat.requirements()
    pins = run_compat.lower_bound_constraints()
    assert len(pins) == len(requirements)
    for requirement, pin in zip(requirements, pins, strict=True):
        name, version = pin.split("==")
        assert re.search(rf">=\s*{re.escape(version)}(,|$)", requirement), (requirement, pin)
        assert name.replace("-", "") in requirement.lower().replace("-", "").replace("_", "")


def test_junit_summary_counts_outcomes(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_a" name="test_ok" time="1.5"/>'
        '<testcase classname="tests.test_a" name="test_bad" time="0.1"><failure message="x"/></testcase>'
        '<testcase classname="tests.test_a" name="test_skip" time="0"><skipped message="y"/></testcase>'
        '<testcase classname="tests.test_a" name="test_err" time="0"><error message="z"/></testcase>'
        "</testsuite></testsuites>"
    )
    summary = run_compat.junit_summary(junit)
    assert (summary["passed"], summary["failed"], summary["skipped"], summary["errors"]) == (
        1,
        1,
        1,
        1,
    )
    assert summary["failures"] == ["tests.test_a::test_bad", "tests.test_a::test_err"]


def test_markdown_report_names_versions_and_results():
    report = {
        "machine": "Linux, 2 CPUs",
        "python": "3.11.7",
        "envs": {
            "lower": {
                "date": "2026-12-02",
                "versions": {"tensorflow": "2.16.1", "numpy": "1.26.0"},
                "install": {"ok": True, "seconds": 80.0},
                "tests": {
                    "passed": 5,
                    "failed": 1,
                    "errors": 0,
                    "skipped": 2,
                    "seconds": 120.0,
                    "failures": ["tests.test_a::test_bad"],
                },
            }
        },
    }
    text = run_compat.markdown(report)
    assert "| tensorflow | 2.16.1 |" in text and "| keras | - |" in text
    assert "5 passed, 1 failed, 0 errors, 2 skipped in 2.0 min" in text
    assert "FAILED tests.test_a::test_bad" in text
