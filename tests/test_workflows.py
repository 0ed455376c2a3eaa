"""The GitHub Actions workflows cannot run here, so they are checked statically: each file is
valid against GitHub's workflow schema (vendored by check-jsonschema, no network), and every
`make` command they run is a real target that `make -n` accepts with those arguments. The
repository's CITATION.cff is checked against the Citation File Format schema the same way."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


def _schema_check(
    path: Path, schema: str = "vendor.github-workflows"
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _make_commands(workflow: dict) -> list[str]:
    commands = []
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            for line in step.get("run", "").splitlines():
                if line.strip().startswith("make "):
                    commands.append(line.strip())
    return commands


def test_both_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"book.yml", "weekly-gpu.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema(path):
    result = _schema_check(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = yaml.safe_load((ROOT / ".github" / "workflows" / "weekly-gpu.yml").read_text())
    job = broken["jobs"]["gpu"]
    job["runs_on"] = job.pop("runs-on")  # a typo GitHub would reject
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    result = _schema_check(path)
    assert result.returncode != 0


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_make_command_in_a_workflow_is_a_real_target(path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    workflow = yaml.safe_load(path.read_text())
    commands = _make_commands(workflow)
    assert commands, f"{path.name} runs no make command"
    for command in commands:
        result = subprocess.run(
            [*shlex.split(command), "-n"], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{command!r}: {result.stderr}"


def test_weekly_gpu_run_uses_the_gpu_profile_and_keeps_what_the_benchmarks_write():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "weekly-gpu.yml").read_text())
    job = workflow["jobs"]["gpu"]
    assert "--gpus all" in job["container"]["options"]
    assert any("PROFILE=gpu" in c for c in _make_commands(workflow))
    plan = subprocess.run(
        ["make", "-n", "bench", "PROFILE=gpu"], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout
    outs = re.findall(r"--out (\S+\.json)", plan)
    runs = re.findall(r"python benchmarks/\S+\.py", plan)
    assert len(outs) == len(runs) >= 9 and all(out.endswith("_gpu.json") for out in outs)
    # the report format, bench-check, and the T4 estimate (a CPU-side tool, not a benchmark)
    tools = {"report.py", "report_format.py", "check.py", "gpu_estimate.py"}
    scripts = {p.name for p in (ROOT / "benchmarks").glob("*.py")} - tools
    assert {name for name in scripts if f"benchmarks/{name}" in plan} == scripts  # every one runs
    uploaded = next(
        s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")
    )
    assert "benchmarks/reports/*_gpu.json" in uploaded["with"]["path"]
    assert "cnn_pneumoniamnist_224_gpu.json" in plan  # full resolution on a GPU


def test_citation_file_matches_the_citation_file_format(tmp_path):
    result = _schema_check(ROOT / "CITATION.cff", "vendor.citation-file-format")
    assert result.returncode == 0, result.stdout + result.stderr
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    repo = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())["repository"]["url"]
    assert citation["repository-code"] == repo  # a fork that moves the course updates both
    del citation["authors"]
    (tmp_path / "CITATION.cff").write_text(yaml.safe_dump(citation))
    assert _schema_check(tmp_path / "CITATION.cff", "vendor.citation-file-format").returncode != 0
