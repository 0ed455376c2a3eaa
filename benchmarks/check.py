"""Re-run committed benchmark reports and check that their headline comes back (``make bench-check``).

For each committed report in ``benchmarks/reports/`` (all of them, or the names given) this
script re-runs the exact command recorded in its provenance (``provenance.argv``), writing the
new report to ``build/bench-check/<name>.json`` instead of the ``--out`` the command had, so
the committed report is never overwritten. It then compares the new **headline mean** with
the committed one and prints both side by side.

The rule: the re-run passes when its mean lies within the committed mean ± 2 sample sd (the
sd of the committed seeds, ``spread[metric]["sd"]``). Where that sd is tiny, or where the
committed report holds a single run and has no sd, the tolerance is at least
``MIN_TOLERANCE`` = 0.01 in the metric's unit (the headlines checked are scores such as AUC,
accuracy, C-index and TSTR/TRTR, where 0.01 is the third decimal the results page shows
rounded up to a difference a reader would notice). The headline checked is the report's first
metric (the one the results page leads with) unless ``--metric`` names others. The re-run must
use the same profile and seeds as the committed report; the other metrics (not seconds) are
printed beside it for information.

Exit status: 0 when every checked headline is within its tolerance, 1 when one is outside,
2 when a report cannot be checked (no such report, a headline key missing from the re-run's
report, a failed re-run). With ``--record`` the outcome (date, machine, CPU count, command,
new mean, tolerance, ``within``) is appended to ``provenance.reproduced`` of the committed
report, whether it passed or not; nothing else in the committed report changes. The results
page shows the last entry.

    .venv/bin/python benchmarks/check.py rnn_splice_cpu --record
    make bench-check CHECK="rnn_splice_cpu survival_gbsg_cpu" RECORD=1

Re-running every report takes hours on 2 cores (each report's ``provenance.seconds`` says how
long it took). ``--new-report PATH`` compares an existing re-run report instead of running the
command again.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report_format import REPORT_KEYS, to_json  # noqa: E402

REPORTS_DIR = ROOT / "benchmarks" / "reports"
OUT_DIR = ROOT / "build" / "bench-check"  # relative --out-dir: from the working directory
SD_MULTIPLE = 2.0
MIN_TOLERANCE = 0.01


class CheckError(Exception):
    """A report that cannot be checked; the message names the report and the problem."""


def find_report(name: str, reports_dir: Path = REPORTS_DIR) -> Path:
    """A committed report by name (``rnn_splice_cpu``), file name or path."""
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return path
    candidate = reports_dir / f"{path.stem}.json"
    if candidate.is_file():
        return candidate
    known = ", ".join(sorted(p.stem for p in reports_dir.glob("*.json"))) or "none"
    raise CheckError(f"no committed report {name!r} in {reports_dir} (reports: {known})")


def load(path: Path) -> dict[str, Any]:
    """Read a report and check that it has the keys of the common format."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckError(f"{path}: cannot read the report ({error})") from error
    if not isinstance(report, dict) or set(report) != set(REPORT_KEYS):
        keys = sorted(report) if isinstance(report, dict) else type(report).__name__
        raise CheckError(f"{path}: not in the common report format (keys {keys})")
    return report


def headline_metrics(
    report: Mapping[str, Any], requested: Sequence[str] | None = None
) -> list[str]:
    """The metrics to judge: ``requested``, or the report's first metric (its headline)."""
    metrics = list(requested or [next(iter(report["metrics"]))])
    for metric in metrics:
        if metric not in report["headline"] or metric not in report["spread"]:
            raise CheckError(
                f"headline key {metric!r} is not in the committed report "
                f"(its headline keys: {', '.join(report['headline'])})"
            )
    return metrics


def _without_out(argv: Sequence[str]) -> list[str]:
    """``argv`` without its ``--out`` option (where a report was written is not how it ran)."""
    argv, kept = list(argv), []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--out":
            skip = True
        elif not arg.startswith("--out="):
            kept.append(arg)
    return kept


def rerun_command(report: Mapping[str, Any], out: Path) -> list[str]:
    """The committed report's own command (``provenance.command``, which must agree with
    ``provenance.argv`` except for ``--out``), with ``--out`` pointing at ``out``."""
    prov = report["provenance"]
    command = prov.get("command", "")
    if not command:
        raise CheckError("its provenance records no command to re-run")
    script, *argv = shlex.split(command)
    if "argv" in prov and _without_out(prov["argv"]) != _without_out(argv):
        raise CheckError(f"its provenance command {command!r} and argv {prov['argv']} disagree")
    for index, arg in enumerate(argv):
        if arg == "--out" and index + 1 < len(argv):
            argv[index + 1] = str(out)
            break
        if arg.startswith("--out="):
            argv[index] = f"--out={out}"
            break
    else:
        argv += ["--out", str(out)]
    return [script, *argv]


def compare(
    committed: Mapping[str, Any],
    new: Mapping[str, Any],
    metrics: Sequence[str],
    *,
    sd_multiple: float = SD_MULTIPLE,
    min_tolerance: float = MIN_TOLERANCE,
) -> list[dict[str, Any]]:
    """One row per metric: the committed mean, sd and number of runs, the tolerance
    ``max(sd_multiple * sd, min_tolerance)`` (``min_tolerance`` alone when the committed report
    has one run), the new mean and sd, their difference and whether it is within the tolerance.
    Raises :class:`CheckError` when the two reports are not runs of the same thing (another
    benchmark, profile or seeds) or a metric is missing from either."""
    for key in ("benchmark", "profile", "seeds"):
        if committed[key] != new[key]:
            raise CheckError(
                f"the re-run is not the same run: {key} {new[key]!r} vs {committed[key]!r} committed"
            )
    rows = []
    for metric in metrics:
        for name, report in (("committed report", committed), ("re-run's report", new)):
            if metric not in report["headline"] or metric not in report["spread"]:
                raise CheckError(
                    f"headline key {metric!r} is not in the {name} (its headline keys: "
                    f"{', '.join(report['headline'])}); was it renamed? Check another key with "
                    "--metric, or refresh the committed report by running its command"
                )
        mean, sd = float(committed["headline"][metric]), committed["spread"][metric].get("sd")
        tolerance = max(sd_multiple * float(sd), min_tolerance) if sd is not None else min_tolerance
        new_mean = float(new["headline"][metric])
        difference = new_mean - mean
        rows.append(
            {
                "metric": metric,
                "committed_mean": mean,
                "committed_sd": None if sd is None else float(sd),
                "committed_n": int(committed["spread"][metric].get("n", len(committed["seeds"]))),
                "tolerance": tolerance,
                "new_mean": new_mean,
                "new_sd": new["spread"][metric].get("sd"),
                "new_n": int(new["spread"][metric].get("n", len(new["seeds"]))),
                "difference": difference,
                "within": bool(abs(difference) <= tolerance),
            }
        )
    return rows


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def side_by_side(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    committed: Mapping[str, Any],
    new: Mapping[str, Any],
) -> str:
    """The comparison as text: judged headline(s) first, then the other metrics (not seconds)."""
    lines = [
        f"{name}: committed mean ± sd (n) | allowed range | re-run mean ± sd (n) | verdict",
    ]
    for row in rows:
        low, high = (
            row["committed_mean"] - row["tolerance"],
            row["committed_mean"] + row["tolerance"],
        )
        lines.append(
            f"  {row['metric']}: {_fmt(row['committed_mean'])} ± {_fmt(row['committed_sd'])} "
            f"({row['committed_n']}) | {low:.4f} – {high:.4f} | {_fmt(row['new_mean'])} ± "
            f"{_fmt(row['new_sd'])} ({row['new_n']}) | "
            + ("WITHIN" if row["within"] else "OUTSIDE")
            + f" (difference {row['difference']:+.4f}, tolerance {row['tolerance']:.4f})"
        )
    judged = {row["metric"] for row in rows}
    for metric, meta in committed["metrics"].items():
        if metric in judged or meta.get("unit") == "s" or metric not in new["headline"]:
            continue
        sd_old, sd_new = committed["spread"][metric].get("sd"), new["spread"][metric].get("sd")
        lines.append(
            f"  (information) {metric}: {_fmt(committed['headline'][metric])} ± {_fmt(sd_old)} "
            f"| re-run {_fmt(new['headline'][metric])} ± {_fmt(sd_new)}"
        )
    return "\n".join(lines)


def _git_state(root: Path = ROOT) -> dict[str, Any]:
    """The commit checked out and whether the working tree had changes (read-only git calls).

    The committed reports' JSON files do not count: ``--record`` writes into them, so the
    second of several checks run one after another in one clone would otherwise say that its
    code had changed when only an earlier check's record had."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":(exclude)benchmarks/reports/*.json"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit or None, "uncommitted_changes": bool(dirty)}


def reproduction_entry(
    rows: Sequence[Mapping[str, Any]],
    new: Mapping[str, Any],
    command: Sequence[str],
    *,
    sd_multiple: float = SD_MULTIPLE,
    min_tolerance: float = MIN_TOLERANCE,
) -> dict[str, Any]:
    """What ``--record`` appends to the committed report's ``provenance.reproduced`` (the
    command is the one the re-run's report records, else ``command``)."""
    machine = dict(new["provenance"].get("machine") or {})
    machine.setdefault("platform", platform.platform())
    machine.setdefault("cpu_count", os.cpu_count())
    within = all(row["within"] for row in rows)
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="minutes"),
        "machine": machine,
        "versions": new["provenance"].get("versions", {}),
        "git": _git_state(),
        "command": new["provenance"].get("command") or " ".join(command),
        "seconds": new["provenance"].get("seconds"),
        "rule": f"new mean within committed mean ± max({sd_multiple:g} sd, {min_tolerance:g})",
        "comparisons": [dict(row) for row in rows],
        "new_mean": {row["metric"]: row["new_mean"] for row in rows},
        "within": within,
        "verdict": "matched" if within else "did not match",
    }


def record(path: Path, entry: Mapping[str, Any]) -> None:
    """Append ``entry`` to ``provenance.reproduced`` of the committed report at ``path``,
    leaving every other field as it was."""
    report = load(path)
    report["provenance"].setdefault("reproduced", []).append(dict(entry))
    Path(path).write_text(to_json(report))


def check_one(
    name: str,
    *,
    metrics: Sequence[str] | None = None,
    new_report: Path | None = None,
    out_dir: Path = OUT_DIR,
    reports_dir: Path = REPORTS_DIR,
    write: bool = False,
    sd_multiple: float = SD_MULTIPLE,
    min_tolerance: float = MIN_TOLERANCE,
) -> bool:
    """Re-run (or read ``new_report``), compare, print, optionally record; True when within."""
    path = find_report(name, reports_dir)
    try:
        committed = load(path)
        judged = headline_metrics(committed, metrics)
        out = (Path(out_dir) / path.name).absolute()
        shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out  # as the command says
        command = rerun_command(committed, shown)
        if new_report is None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.unlink(missing_ok=True)
            print(f"{path.stem}: re-running  python {' '.join(command)}", flush=True)
            env = {k: v for k, v in os.environ.items() if k != "DL4H_PROFILE"}  # --profile rules
            result = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, check=False)
            if result.returncode != 0 or not out.is_file():
                raise CheckError(f"the re-run exited with status {result.returncode}")
            new_report = out
        new = load(Path(new_report))
        rows = compare(committed, new, judged, sd_multiple=sd_multiple, min_tolerance=min_tolerance)
    except CheckError as error:
        raise CheckError(f"{path.stem}: {error}") from error
    print(side_by_side(path.stem, rows, committed, new), flush=True)
    if write:
        entry = reproduction_entry(
            rows, new, command, sd_multiple=sd_multiple, min_tolerance=min_tolerance
        )
        record(path, entry)
        print(f"{path.stem}: recorded in {path} (provenance.reproduced)")
    return all(row["within"] for row in rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "reports", nargs="*", help="report names (e.g. rnn_splice_cpu); default: every report"
    )
    parser.add_argument(
        "--metric", nargs="+", default=None, help="headline keys to judge (default: the first)"
    )
    parser.add_argument(
        "--new-report", type=Path, default=None, help="compare this re-run report, do not re-run"
    )
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where re-runs write")
    parser.add_argument(
        "--record", action="store_true", help="append the outcome to provenance.reproduced"
    )
    parser.add_argument("--sd-multiple", type=float, default=SD_MULTIPLE)
    parser.add_argument("--min-tolerance", type=float, default=MIN_TOLERANCE)
    parser.add_argument("--reports-dir", type=Path, default=REPORTS_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.new_report is not None and len(args.reports) != 1:
        parser.error("--new-report compares one report: name exactly one")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Check the reports; the exit status is 0 (all within), 1 (one outside) or 2 (an error)."""
    args = parse_args(argv)
    names = args.reports or sorted(p.stem for p in args.reports_dir.glob("*.json"))
    outcome: dict[str, str] = {}
    for name in names:
        try:
            within = check_one(
                name,
                metrics=args.metric,
                new_report=args.new_report,
                out_dir=args.out_dir,
                reports_dir=args.reports_dir,
                write=args.record,
                sd_multiple=args.sd_multiple,
                min_tolerance=args.min_tolerance,
            )
            outcome[name] = "within" if within else "OUTSIDE"
        except CheckError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            outcome[name] = "ERROR"
    print("bench-check: " + ", ".join(f"{name} {verdict}" for name, verdict in outcome.items()))
    if "ERROR" in outcome.values():
        return 2
    return 1 if "OUTSIDE" in outcome.values() else 0


if __name__ == "__main__":
    sys.exit(main())
