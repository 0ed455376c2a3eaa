"""The benchmarks' command-line helpers (benchmarks/report.py): `--set KEY=VALUE`, how tiny
runs are injected, and `--jobs` workers that share out the cores."""

from __future__ import annotations

import argparse
import os

import pytest

from benchmarks.report import (
    THREAD_VARIABLES,
    add_set_argument,
    apply_overrides,
    run_in_workers,
    thread_limits,
    threads_per_worker,
)

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


def test_worker_processes_share_out_the_cores():
    assert threads_per_worker(5, cpus=2) == 1  # never below one thread
    assert threads_per_worker(2, cpus=2) == 1
    assert threads_per_worker(2, cpus=16) == 8
    assert threads_per_worker(3, cpus=16) == 5


def test_spawned_workers_inherit_the_limits_and_the_environment_is_restored(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    seen = run_in_workers(os.getenv, THREAD_VARIABLES, 2)  # the benchmarks' --jobs 2
    assert seen == [str(threads_per_worker(2))] * len(THREAD_VARIABLES)
    assert os.environ["OMP_NUM_THREADS"] == "7"
    assert "TF_NUM_INTRAOP_THREADS" not in os.environ
    with pytest.raises(RuntimeError), thread_limits(1):
        raise RuntimeError("a pool that failed to start")
    assert os.environ["OMP_NUM_THREADS"] == "7"
    assert "TF_NUM_INTRAOP_THREADS" not in os.environ
