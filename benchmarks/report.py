"""The one report format that every benchmark writes, and the code that writes it.

A report is a JSON object with exactly the keys of :data:`REPORT_KEYS`:

``benchmark``, ``dataset``, ``profile``
    what ran, on which data, in which profile (``helpers.config``: smoke, cpu, gpu).
``seeds``
    the seeds (or splits, or folds) of the runs; one entry of ``per_seed`` each.
``settings``
    the knobs the profile resolved to (epochs, sizes, grids, ...).
``metrics``
    metric name -> ``{"label": ..., "unit": ...}``: what each headline number means. A unit
    of ``""`` is a score (AUC, accuracy, a ratio); ``"s"`` seconds; anything else is shown.
    Optional ``"column"``: the metric without the model's name, the header of the baseline
    and reference tables (whose rows are other models) where the label names this one.
``headline``
    metric name -> mean over the runs: the numbers the results page leads with.
``spread``
    metric name -> ``{"sd", "min", "max", "n"}`` over the runs (sample sd, ``ddof=1``;
    ``None`` with one run).
``per_seed``
    one object per run, with ``seed`` and a value for every headline metric (plus any detail).
``baselines``
    name -> metric -> mean: simpler methods measured here under the same protocol.
``reference``
    published numbers: ``{"citation", "protocol", "rows": {method: {metric: value}}}`` or
    ``None`` when no published number shares our protocol (``protocol`` then says why).
``targets``
    ``[{"metric", "op", "value", "mean", "met"}]``: a target is met only when the *mean*
    meets it.
``provenance``
    machine, versions, seconds, peak memory, the exact ``argv`` given to ``main`` and the
    command that reproduces the report, the date, and ``reproduced`` (re-runs that matched).
``model_card``
    ``{"intended_use", "data", "not_for", "failure_modes"}``: what the model may and must
    not be used for, and the failure modes the chapter measured.
``details``
    anything else the benchmark wants to keep (nested diagnostics). ``details["failures"]``,
    when present, counts the runs that failed by a stated criterion (``criterion``,
    ``n_runs``, ``n_failed``, ``failed_seeds``, ``reasons``); the results page shows it under
    the headline table. ``details["method"]``, when present, names this benchmark's model in
    the baseline table's last row.

The keys live in ``benchmarks/report_format.py`` (no heavy imports), which the book's
extension and ``benchmarks/check.py`` (``make bench-check``) import too.

``book/_ext/benchmark_results.py`` renders any report of this format without knowing
which benchmark wrote it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report_format import REPORT_KEYS, to_json  # noqa: E402  (no TensorFlow there)
from helpers import config  # noqa: E402

MODEL_CARD_KEYS = ("intended_use", "data", "not_for", "failure_modes")
OPERATORS = {">=": np.greater_equal, "<=": np.less_equal}


class ReportFormatError(ValueError):
    """A report that does not follow the common format; the message says what is wrong."""


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (and peak GPU memory when a GPU is used)."""
    import tensorflow as tf

    peak = {"host_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    for index, _ in enumerate(tf.config.list_physical_devices("GPU")):
        info = tf.config.experimental.get_memory_info(f"GPU:{index}")
        peak[f"gpu{index}_peak_mb"] = info["peak"] / 2**20
    return peak


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    """Sample standard deviation (``ddof=1``), minimum, maximum and count of ``values``."""
    array = np.asarray(values, dtype=float)
    return {
        "sd": float(array.std(ddof=1)) if array.size > 1 else None,
        "min": float(array.min()),
        "max": float(array.max()),
        "n": int(array.size),
    }


def target(metric: str, op: str, value: float) -> dict[str, Any]:
    """A target on the mean of ``metric`` (``op`` is ``">="`` or ``"<="``)."""
    if op not in OPERATORS:
        raise ReportFormatError(f"target operator must be one of {list(OPERATORS)}, not {op!r}")
    return {"metric": metric, "op": op, "value": float(value)}


def add_set_argument(parser: Any) -> None:
    """Give a benchmark's argument parser ``--set KEY=VALUE ...`` (see :func:`apply_overrides`)."""
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override settings of the profile's plan (e.g. epochs=1; the gpu-path tests run "
        "tiny sizes this way); the report lists them under settings.overrides",
    )


def apply_overrides(plan: Mapping[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """Return ``plan`` with ``KEY=VALUE`` assignments applied and listed under ``overrides``.

    Values are Python literals (``1``, ``0.5``, ``None``, ``(8, 16)``) or else strings. An
    unknown key or a malformed assignment raises ``SystemExit`` naming the known keys, so a
    typo cannot silently leave the profile's value in place. A report whose settings have
    non-empty ``overrides`` is not the profile's benchmark, and says so.
    """
    import ast

    result = dict(plan)
    overrides: dict[str, Any] = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        if key not in plan:
            raise SystemExit(f"--set {key}: unknown setting; known: {', '.join(sorted(plan))}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        result[key] = overrides[key] = value
    result["overrides"] = overrides
    return result


# Thread pools a spawned worker (``--jobs``) reads from its environment when it starts:
# OpenMP (the trees), TensorFlow's op pools, and the BLAS libraries NumPy may use.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def threads_per_worker(workers: int, cpus: int | None = None) -> int:
    """The cores shared out between ``workers`` processes (at least one thread each).

    Without a limit every worker starts as many OpenMP and TensorFlow threads as the
    machine has cores. Measured on 2 cores: five workers fitting chapter 08's trees at once
    took 166 s each with their default threads and 17 s each with one thread (about 5 s for
    one alone). The ``ehr_mortality`` report of 2026-12-02 run with ``--jobs 5`` spent 43
    minutes per split on the trees and 52 minutes in all, against 5.4 minutes for the same
    numbers with ``--jobs 1``."""
    return max(1, (cpus or os.cpu_count() or 1) // max(1, workers))


@contextlib.contextmanager
def thread_limits(threads: int) -> Iterator[None]:
    """Set ``THREAD_VARIABLES`` to ``threads`` while worker processes are spawned (they
    inherit the environment), and restore the previous values afterwards."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_in_workers(function: Callable[[Any], Any], jobs: Sequence[Any], workers: int) -> list:
    """``function`` over ``jobs`` in up to ``workers`` spawned processes that share out the
    cores (:func:`thread_limits`); the results in the order of ``jobs``. The benchmarks'
    ``--jobs``."""
    import multiprocessing

    workers = max(1, min(workers, len(jobs)))
    spawn = multiprocessing.get_context("spawn")
    with thread_limits(threads_per_worker(workers)), spawn.Pool(workers) as pool:
        return pool.map(function, jobs)


def build_report(
    *,
    benchmark: str,
    dataset: str,
    profile: str,
    seeds: Sequence[int],
    settings: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, str]],
    per_seed: Sequence[Mapping[str, Any]],
    model_card: Mapping[str, Any],
    argv: Sequence[str],
    script: str,
    started: float,
    baselines: Mapping[str, Mapping[str, float]] | None = None,
    reference: Mapping[str, Any] | None = None,
    targets: Sequence[Mapping[str, Any]] = (),
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a report in the common format (headline means, spreads, target verdicts,
    provenance) from the per-run results; :func:`validate` checks it."""
    if len(per_seed) != len(seeds):
        raise ReportFormatError(f"{len(per_seed)} runs for {len(seeds)} seeds")
    headline, spreads = {}, {}
    for name in metrics:
        values = [run[name] for run in per_seed]
        headline[name] = float(np.mean(values))
        spreads[name] = spread(values)
    verdicts = []
    for goal in targets:
        mean = headline[goal["metric"]]
        verdicts.append(
            {**goal, "mean": mean, "met": bool(OPERATORS[goal["op"]](mean, goal["value"]))}
        )
    env = config.environment_report(profile)
    versions = {
        k: env[k]
        for k in ("python", "numpy", "pandas", "scikit-learn", "tensorflow", "keras")
        if k in env
    }
    report = {
        "benchmark": benchmark,
        "dataset": dataset,
        "profile": profile,
        "seeds": list(seeds),
        "settings": dict(settings),
        "metrics": {name: dict(meta) for name, meta in metrics.items()},
        "headline": headline,
        "spread": spreads,
        "per_seed": [dict(run) for run in per_seed],
        "baselines": {name: dict(values) for name, values in (baselines or {}).items()},
        "reference": dict(reference) if reference is not None else None,
        "targets": verdicts,
        "provenance": {
            "machine": {
                "platform": env["platform"],
                "cpu_count": env["cpu_count"],
                "gpus": env["gpus"],
                "mixed_precision": env["mixed_precision_policy"],
                "onednn": env["onednn"],
            },
            "versions": versions,
            "seconds": round(time.time() - started, 1),
            "peak_memory_mb": peak_memory_mb(),
            "argv": list(argv),
            "command": " ".join([script, *argv]),
            "date": _dt.datetime.now(_dt.UTC).date().isoformat(),
            "reproduced": [],
        },
        "model_card": dict(model_card),
        "details": dict(details or {}),
    }
    validate(report)
    return report


def validate(report: Mapping[str, Any], name: str = "report") -> None:
    """Raise :class:`ReportFormatError` naming the first way ``report`` breaks the format."""
    keys = set(report)
    if keys != set(REPORT_KEYS):
        missing, extra = sorted(set(REPORT_KEYS) - keys), sorted(keys - set(REPORT_KEYS))
        raise ReportFormatError(f"{name}: missing keys {missing}, unexpected keys {extra}")
    if len(report["per_seed"]) != len(report["seeds"]):
        raise ReportFormatError(
            f"{name}: {len(report['per_seed'])} runs for {len(report['seeds'])} seeds"
        )
    for metric, meta in report["metrics"].items():
        if "label" not in meta or "unit" not in meta:
            raise ReportFormatError(f"{name}: metric {metric!r} needs a label and a unit")
        if metric not in report["headline"] or metric not in report["spread"]:
            raise ReportFormatError(f"{name}: metric {metric!r} has no headline or spread")
        if any(metric not in run for run in report["per_seed"]):
            raise ReportFormatError(f"{name}: a run has no value for {metric!r}")
    missing_card = [k for k in MODEL_CARD_KEYS if not report["model_card"].get(k)]
    if missing_card:
        raise ReportFormatError(f"{name}: the model card lacks {missing_card}")
    for goal in report["targets"]:
        if goal.get("metric") not in report["headline"] or goal.get("op") not in OPERATORS:
            raise ReportFormatError(f"{name}: target {goal} names no headline metric or operator")
    reference = report["reference"]
    if reference is not None and not {"citation", "protocol", "rows"} <= set(reference):
        raise ReportFormatError(f"{name}: reference needs citation, protocol and rows")


def write_report(path: str | Path, report: Mapping[str, Any]) -> Path:
    """Validate ``report`` and write it as JSON to ``path``."""
    validate(report, str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(report))
    print(f"report written to {path}")
    return path
