"""`--set KEY=VALUE` on the benchmarks (benchmarks/report.py): how tiny runs are injected."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.report import add_set_argument, apply_overrides

PLAN = {"epochs": 30, "n_train": None, "widths": (16, 32), "recipe": "cosine"}


def test_values_are_python_literals_and_recorded_as_overrides():
    plan = apply_overrides(PLAN, ["epochs=1", "n_train=64", "widths=(4, 8)", "recipe=step"])
    assert plan["epochs"] == 1 and plan["n_train"] == 64 and plan["widths"] == (4, 8)
    assert plan["recipe"] == "step"  # not a literal: kept as a string
    assert plan["overrides"] == {"epochs": 1, "n_train": 64, "widths": (4, 8), "recipe": "step"}
    assert PLAN["epochs"] == 30  # the profile's plan is not changed in place


def test_no_assignment_records_an_empty_overrides():
    assert apply_overrides(PLAN, [])["overrides"] == {}


@pytest.mark.parametrize(
    ("assignment", "message"),
    [("epoch=1", "unknown setting; known: epochs, n_train"), ("epochs", "expects KEY=VALUE")],
)
def test_a_typo_or_a_malformed_assignment_stops_the_run(assignment, message):
    with pytest.raises(SystemExit, match=message):
        apply_overrides(PLAN, [assignment])


def test_the_parser_takes_several_assignments():
    parser = argparse.ArgumentParser()
    add_set_argument(parser)
    assert parser.parse_args(["--set", "a=1", "b=2"]).set == ["a=1", "b=2"]
    assert parser.parse_args([]).set == []
