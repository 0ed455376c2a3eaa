"""`make compat`: install the course at the lower bounds of pyproject.toml and at the newest
versions the package index serves, and run the unit tests and the smoke notebooks in each.

Environments (each a virtual environment under build/compat/<env>/venv):

- `lower`: every dependency of the project and of its `dev` extra pinned to its lower bound
  (`>=X` becomes `==X`, written to build/compat/lower/constraints.txt); what pip picks for the
  packages they pull in is left to pip.
- `newest`: a plain `pip install --upgrade --upgrade-strategy eager -e ".[dev]"`, so the newest
  release inside the project's own upper bounds (`tensorflow<3`, `jupyter-book<2`, ...).

Steps in each environment (`--steps`, all by default):

- `install`: create the environment, `pip install -e ".[dev]"` (with the constraints for `lower`).
- `tests`: `pytest -m "not notebook and not book" tests`, i.e. every unit test except the ones
  that execute notebooks (nbmake, the papermill course runner, JupyterLab in Chromium) and
  the book built and opened in Chromium: those need the system browser and run in
  `make test`. The Colab check (tests/test_colab_install.py) runs here in this environment.
- `notebooks`: every chapter in the `smoke` profile through `pytest --nbmake` on copies in
  build/compat/<env>/notebooks, as `make test` runs them (DL4H_EXERCISES=strict).
- `colab`: a bare environment with only this environment's TensorFlow, Keras and NumPy, then
  the Colab cell's pip command in a dry run (tests/compat/colab.py): pip must change none of
  the three.

Results: build/compat/report.json (merged across runs, one entry per environment) and
build/compat/report.md. The data root comes from DL4H_DATA as everywhere else; set
DL4H_OFFLINE=1 on a machine without internet. Run it with `nice`: it takes long (see README).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.compat import colab  # noqa: E402

OUT = ROOT / "build" / "compat"
ENVS = ("lower", "newest")
STEPS = ("install", "tests", "notebooks", "colab")
# the packages the report names (the rest are in build/compat/<env>/versions.json)
KEY_PACKAGES = (
    "tensorflow",
    "keras",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "h5py",
    "pydicom",
    "dicom-anonymizer",
    "opencv-python-headless",
    "nibabel",
    "lifelines",
    "scikit-survival",
    "jupyterlab",
    "ipykernel",
    "nbclient",
    "nbmake",
    "papermill",
    "jupyter-book",
    "pytest",
    "ruff",
)
UNIT_TESTS = ["-m", "not notebook and not book", "tests"]


def requirements() -> list[str]:
    """The project's dependencies and its `dev` extra, as written in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["dev"]]


def lower_bound_constraints() -> list[str]:
    """`name==X` for every requirement with a `>=X` bound (all of them, a test checks)."""
    pins = []
    for line in requirements():
        match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*(.*)", line)
        name, spec = match.group(1), match.group(2)
        lower = re.search(r">=\s*([0-9][^,;\s]*)", spec)
        if lower is None:
            raise ValueError(f"{line!r} has no `>=` lower bound: every dependency needs one")
        pins.append(f"{colab.normalize(name)}=={lower.group(1)}")
    return pins


def run(command: list[str], log: Path, env: dict | None = None, cwd: Path = ROOT) -> tuple:
    """Run `command`, its output to `log`; returns (exit status, seconds)."""
    start = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(map(str, command))}\n")
        out.flush()
        status = subprocess.run(
            [str(part) for part in command], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd
        ).returncode
    return status, round(time.monotonic() - start, 1)


def environment(venv: Path, **extra: str) -> dict:
    """os.environ with `venv` first on PATH (so `jupyter` and the kernel are the venv's)."""
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH"}}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env.pop("DL4H_PROFILE", None)
    env.update(extra)
    return env


def junit_summary(path: Path) -> dict:
    """passed/failed/errors/skipped, the failing test ids and the slowest cases of a junit file."""
    if not path.is_file():
        return {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": ["no junit file"]}
    cases = ET.parse(path).getroot().iter("testcase")
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures, times = [], {}
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        times[name] = float(case.get("time") or 0)
        if case.find("failure") is not None:
            counts["failed"] += 1
            failures.append(name)
        elif case.find("error") is not None:
            counts["errors"] += 1
            failures.append(name)
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return {**counts, "failures": failures, "times": times}


def step_install(name: str, work: Path, python: str, log: Path) -> dict:
    venv = work / "venv"
    fresh = not (venv / "bin" / "python").exists()
    if fresh:
        status, _ = run([python, "-m", "venv", venv], log)
        if status:
            return {"ok": False, "status": status}
    pip = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "install", "--quiet", "--upgrade", "pip"], log)
    command = [*pip, "install", "-e", ".[dev]"]
    if name == "lower":
        constraints = work / "constraints.txt"
        constraints.write_text("\n".join(lower_bound_constraints()) + "\n")
        command += ["-c", constraints]
    else:
        command += ["--upgrade", "--upgrade-strategy", "eager"]
    status, seconds = run(command, log)
    versions = colab.installed_versions(venv / "bin" / "python") if status == 0 else {}
    (work / "versions.json").write_text(json.dumps(versions, indent=1, sort_keys=True))
    # `fresh`: the environment was created by this run (else pip only updated it)
    return {"ok": status == 0, "status": status, "seconds": seconds, "fresh": fresh}


def step_tests(work: Path, log: Path) -> dict:
    venv = work / "venv"
    junit = work / "unit-tests.xml"
    junit.unlink(missing_ok=True)
    command = [venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += [f"--junitxml={junit}", *UNIT_TESTS]
    status, seconds = run(command, log, environment(venv, DL4H_CLAIMS=str(work / "test-claims")))
    summary = junit_summary(junit)
    summary.pop("times")
    return {
        "command": "pytest " + " ".join(UNIT_TESTS),
        "status": status,
        "seconds": seconds,
        **summary,
    }


def step_notebooks(work: Path, log: Path, notebooks: list[Path]) -> dict:
    venv = work / "venv"
    copies = work / "notebooks"
    shutil.rmtree(copies, ignore_errors=True)
    copies.mkdir(parents=True)
    for path in notebooks:
        shutil.copy(path, copies / path.name)
    junit = work / "notebooks.xml"
    junit.unlink(missing_ok=True)
    env = environment(
        venv,
        DL4H_PROFILE="smoke",
        DL4H_EXERCISES="strict",
        DL4H_CLAIMS=str(work / "claims"),
    )
    command = [venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["--nbmake", "--overwrite", "--nbmake-timeout=900", f"--junitxml={junit}", copies]
    status, seconds = run(command, log, env)
    summary = junit_summary(junit)
    per_notebook = {
        Path(name.split("::")[-1]).stem or name: round(t, 1)
        for name, t in summary.pop("times").items()
    }
    # the kernel must be this environment's: chapter 00 prints TensorFlow's version at setup
    kernel_tf = None
    executed = copies / "00_start_here.ipynb"
    if executed.is_file():
        text = executed.read_text()
        found = re.search(r"TensorFlow\s*([0-9][0-9.a-z]*)", text) or re.search(
            r"tensorflow[ =:]+([0-9][0-9.a-z]*)", text
        )
        kernel_tf = found.group(1) if found else None
    return {
        "command": "DL4H_PROFILE=smoke pytest --nbmake --overwrite <copies of notebooks/*.ipynb>",
        "status": status,
        "seconds": seconds,
        "per_notebook_seconds": per_notebook,
        "kernel_tensorflow": kernel_tf,
        **summary,
    }


def step_colab(work: Path, log: Path, python: str) -> dict:
    """A bare environment with only TensorFlow, Keras and NumPy, then the Colab cell's pip."""
    versions = json.loads((work / "versions.json").read_text())
    runtime = work / "colab-runtime"
    shutil.rmtree(runtime, ignore_errors=True)
    status, _ = run([python, "-m", "venv", runtime], log)
    pins = [f"{name}=={versions[name]}" for name in colab.PROTECTED]
    pip = [runtime / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "install", "--quiet", "--upgrade", "pip"], log)
    status, seconds = run([*pip, "install", "--quiet", *pins], log)
    if status:
        return {"ok": False, "runtime": pins, "error": f"pip install {pins} failed ({status})"}
    try:
        result = colab.dry_run(runtime / "bin" / "python", work / "colab-pip-report.json")
    except RuntimeError as error:
        return {"ok": False, "runtime": pins, "error": str(error)[-2000:]}
    finally:
        shutil.rmtree(runtime, ignore_errors=True)  # a TensorFlow install: about 1.5 GB
    return {
        "ok": not result["changed_protected"],
        "runtime": pins,
        "command": result["command"],
        "changed_protected": result["changed_protected"],
        "other_changes": result["other_changes"],
        "new_packages": len(result["new"]),
    }


def markdown(report: dict) -> str:
    lines = [
        "# make compat",
        "",
        f"Machine: {report['machine']}; Python {report['python']}. "
        'Unit tests: `pytest -m "not notebook and not book" tests`; notebooks: every '
        "chapter in `smoke` through nbmake.",
        "",
    ]
    envs = report["envs"]
    names = [name for name in ENVS if name in envs]
    lines += ["| package | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for package in KEY_PACKAGES:
        row = [envs[name].get("versions", {}).get(package, "-") for name in names]
        lines.append(f"| {package} | " + " | ".join(row) + " |")
    lines.append("")
    for name in names:
        entry = envs[name]
        lines.append(f"## {name} (run {entry.get('date', '?')})")
        install = entry.get("install", {})
        if install:
            kind = "new environment" if install.get("fresh") else "update of the environment"
            lines.append(
                f"- install ({kind}): {'ok' if install.get('ok') else 'FAILED'}, "
                f"{install.get('seconds')} s"
            )
        for step in ("tests", "notebooks"):
            result = entry.get(step)
            if result:
                lines.append(
                    f"- {step}: {result['passed']} passed, {result['failed']} failed, "
                    f"{result['errors']} errors, {result['skipped']} skipped in "
                    f"{result['seconds'] / 60:.1f} min"
                )
                if result.get("kernel_tensorflow"):
                    lines.append(f"  - the kernel ran TensorFlow {result['kernel_tensorflow']}")
                lines += [f"  - FAILED {failure}" for failure in result["failures"]]
        result = entry.get("colab")
        if result:
            verdict = "ok" if result["ok"] else "FAILED"
            lines.append(
                f"- Colab cell on a runtime with only {', '.join(result['runtime'])}: {verdict}; "
                f"protected packages changed: {result.get('changed_protected') or 'none'}; "
                f"other changes: {result.get('other_changes') or 'none'}"
                + (f"; {result['error']}" if result.get("error") else "")
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", choices=ENVS, default=list(ENVS))
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--python", default="python3", help="the Python that creates the envs")
    parser.add_argument("--notebooks", nargs="+", type=Path, help="default: notebooks/*.ipynb")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))

    OUT.mkdir(parents=True, exist_ok=True)
    report_path = OUT / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {"envs": {}}
    report["machine"] = f"{platform.platform()}, {os.cpu_count()} CPUs"
    python_version = subprocess.run(
        [args.python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    report["python"] = python_version
    report["data_root"] = os.environ.get("DL4H_DATA", "data/ (default)")
    failed = False
    for name in args.envs:
        work = OUT / name
        work.mkdir(parents=True, exist_ok=True)
        log = work / "log.txt"
        entry = report["envs"].setdefault(name, {})
        entry["date"] = dt.date.today().isoformat()
        entry["python"] = python_version
        if name == "lower":
            entry["constraints"] = lower_bound_constraints()
        for step in args.steps:
            print(f"[compat] {name}: {step} (log: {log.relative_to(ROOT)})", flush=True)
            if step != "install" and not (work / "venv" / "bin" / "python").exists():
                entry[step] = {"ok": False, "error": "no environment: run the install step"}
                failed = True
                continue
            if step == "install":
                entry["install"] = step_install(name, work, args.python, log)
                versions = json.loads((work / "versions.json").read_text())
                entry["versions"] = {p: versions[p] for p in KEY_PACKAGES if p in versions}
                failed |= not entry["install"]["ok"]
                if not entry["install"]["ok"]:
                    break
            elif step == "tests":
                entry["tests"] = step_tests(work, log)
            elif step == "notebooks":
                entry["notebooks"] = step_notebooks(work, log, notebooks)
            elif step == "colab":
                entry["colab"] = step_colab(work, log, args.python)
            result = entry[step]
            if step in ("tests", "notebooks"):
                failed |= bool(result["failed"] or result["errors"] or result["status"])
                print(
                    f"[compat] {name}: {step}: {result['passed']} passed, {result['failed']} "
                    f"failed, {result['errors']} errors in {result['seconds'] / 60:.1f} min",
                    flush=True,
                )
            elif step == "colab":
                failed |= not result["ok"]
            report_path.write_text(json.dumps(report, indent=1))
            (OUT / "report.md").write_text(markdown(report))
    report_path.write_text(json.dumps(report, indent=1))
    (OUT / "report.md").write_text(markdown(report))
    print(f"[compat] report: {report_path.relative_to(ROOT)} and build/compat/report.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
