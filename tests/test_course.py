"""The course runner (helpers.course, `make course`): progress, timings, stop at the first failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_the_runner_times_each_notebook_and_stops_at_the_first_failure(tmp_path):
    first = _notebook(tmp_path / "01_ok.ipynb", "import os\nprint(os.environ['DL4H_PROFILE'])")
    broken = _notebook(tmp_path / "02_broken.ipynb", "x = 1", "raise ValueError('bad cell 2')")
    never = _notebook(tmp_path / "03_never.ipynb", "print('should not run')")
    timings = tmp_path / "timings.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.course",
            str(first),
            str(broken),
            str(never),
            "--out",
            str(tmp_path / "out"),
            "--profile",
            "smoke",
            "--timings",
            str(timings),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1
    assert "[1/3] 01_ok (smoke)" in done.stdout and "[2/3] 02_broken (smoke)" in done.stdout
    assert "03_never" not in done.stdout  # stopped at the first failing notebook
    assert "02_broken.ipynb failed in cell 2: ValueError: bad cell 2" in done.stderr
    assert "Traceback" in done.stderr or "ValueError" in done.stderr
    assert "without encryption" not in done.stderr + done.stdout  # kernels use IPC, not TCP
    record = json.loads(timings.read_text())
    assert record["profile"] == "smoke" and record["machine"]["cpus"] >= 1
    assert [(e["notebook"], e["status"]) for e in record["notebooks"]] == [
        ("01_ok", "ok"),
        ("02_broken", "failed"),
    ]
    assert all(e["seconds"] > 0 and e["peak_memory_mb"] > 0 for e in record["notebooks"])
    executed = nbformat.read(tmp_path / "out" / "01_ok.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "smoke"
