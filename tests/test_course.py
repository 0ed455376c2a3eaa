"""The course runner (helpers.course, `make course`): progress, timings, stop at the first failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import course

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


def _run_course(tmp_path: Path, *notebooks: Path, jobs: int = 1):
    """``python -m helpers.course`` on ``notebooks`` in smoke; the process and its timings.

    Run without ``OMP_NUM_THREADS`` (which the test workers set for themselves), so that the
    runner's own choice shows."""
    timings = tmp_path / "timings.json"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-m", "helpers.course", *map(str, notebooks),
         "--out", str(tmp_path / "out"), "--profile", "smoke", "--timings", str(timings),
         "--jobs", str(jobs)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    return done, json.loads(timings.read_text())


@pytest.mark.notebook
def test_the_runner_times_each_notebook_and_stops_at_the_first_failure(tmp_path):
    first = _notebook(tmp_path / "01_ok.ipynb", "import os\nprint(os.environ['DL4H_PROFILE'])")
    broken = _notebook(tmp_path / "02_broken.ipynb", "x = 1", "raise ValueError('bad cell 2')")
    never = _notebook(tmp_path / "03_never.ipynb", "print('should not run')")
    done, record = _run_course(tmp_path, first, broken, never)
    assert done.returncode == 1
    assert "[1/3] 01_ok (smoke)" in done.stdout and "[2/3] 02_broken (smoke)" in done.stdout
    assert "03_never" not in done.stdout  # stopped at the first failing notebook
    assert "02_broken.ipynb failed in cell 2: ValueError: bad cell 2" in done.stderr
    assert "Traceback" in done.stderr or "ValueError" in done.stderr
    assert "without encryption" not in done.stderr + done.stdout  # kernels use IPC, not TCP
    assert record["profile"] == "smoke" and record["machine"]["cpus"] >= 1
    assert [(e["notebook"], e["status"]) for e in record["notebooks"]] == [
        ("01_ok", "ok"),
        ("02_broken", "failed"),
    ]
    assert all(e["seconds"] > 0 and e["peak_memory_mb"] > 0 for e in record["notebooks"])
    executed = nbformat.read(tmp_path / "out" / "01_ok.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "smoke"


def test_the_book_reads_the_timings_from_the_nearest_build_folder(tmp_path):
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import course_timings

    book = tmp_path / "repo" / "build" / "test-book"
    book.mkdir(parents=True)
    assert course_timings.find_timings(book) is None
    record = {
        "profile": "cpu",
        "machine": {"cpus": 2},
        "notebooks": [
            {"notebook": "04_cnn", "seconds": 90.0, "peak_memory_mb": 1500, "status": "ok"}
        ],
        "total_seconds": 90.0,
    }
    path = tmp_path / "repo" / "build" / "course-timings.json"
    path.write_text(json.dumps(record))
    assert course_timings.find_timings(book) == path
    text = course_timings.table(record).astext()
    assert "04_cnn" in text and "1.5" in text and "1,500" in text and "all chapters" in text
    # two at a time: the sum and the wall time are both shown, and told apart
    record.update(jobs=2, wall_seconds=60.0, total_seconds=90.0)
    text = course_timings.table(record).astext()
    assert "all chapters, added up" in text and "first to last (2 at a time)" in text
    assert "1.0" in text  # 60 s from first to last


@pytest.mark.notebook
def test_two_at_a_time_runs_each_notebook_once_and_starts_none_after_a_failure(tmp_path):
    slow = _notebook(
        tmp_path / "01_slow.ipynb",
        "import os, time\ntime.sleep(12)\nprint('slow done', os.environ.get('OMP_NUM_THREADS'))",
    )
    broken = _notebook(tmp_path / "02_broken.ipynb", "raise ValueError('bad cell 1')")
    never = _notebook(tmp_path / "03_never.ipynb", "print('should not run')")
    done, record = _run_course(tmp_path, slow, broken, never, jobs=2)
    assert done.returncode == 1
    assert "02_broken.ipynb failed in cell 1: ValueError: bad cell 1" in done.stderr
    assert "03_never" not in done.stdout  # the failure came before a slot was free again
    assert record["jobs"] == 2
    # in the notebooks' order, whatever order they finished in; the slow one was let finish
    assert [(e["notebook"], e["status"]) for e in record["notebooks"]] == [
        ("01_slow", "ok"),
        ("02_broken", "failed"),
    ]
    assert record["notebooks"][0]["seconds"] >= 12
    slow_entry, broken_entry = record["notebooks"]
    # both ran at once: the broken one began and ended while the slow one ran
    assert broken_entry["began_s"] + broken_entry["seconds"] < slow_entry["began_s"] + 12
    # the kernel got its share of the cores for OpenMP, and the timings say so
    share = str(max(1, course.cores() // 2))
    executed = nbformat.read(tmp_path / "out" / "01_slow.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == f"slow done {share}"
    assert record["omp_num_threads"] == share


@pytest.mark.notebook
def test_a_kernel_that_dies_is_a_failed_notebook_not_a_crash_of_the_runner(tmp_path):
    dies = _notebook(
        tmp_path / "01_dies.ipynb", "import os\nos._exit(3)  # as an out-of-memory kill"
    )
    done, record = _run_course(tmp_path, dies)
    assert done.returncode == 1
    assert "01_dies.ipynb failed: DeadKernelError" in done.stderr
    assert [(e["notebook"], e["status"]) for e in record["notebooks"]] == [("01_dies", "failed")]


def test_each_of_several_processes_gets_its_share_of_the_cores_unless_the_user_chose(
    monkeypatch,
):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(course, "cores", lambda: 8)
    assert course.share_the_cores(1) is None and "OMP_NUM_THREADS" not in os.environ
    assert course.share_the_cores(2) == "4" and os.environ["OMP_NUM_THREADS"] == "4"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
    assert course.share_the_cores(2) is None and os.environ["OMP_NUM_THREADS"] == "3"
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(course, "cores", lambda: 2)
    assert course.share_the_cores(4) == "1"  # never 0 threads
    assert course.omp_share(3) == "1" and course.omp_share(0) == "2"


def test_the_longest_notebooks_start_first(tmp_path):
    names = ["00_start_here", "04_cnn_chest_xray", "new_chapter", "08_disease_course_prediction"]
    notebooks = [tmp_path / f"{name}.ipynb" for name in names]
    timings = tmp_path / "timings.json"

    def order(profile="cpu"):
        return [path.stem for path in course.longest_first(notebooks, profile, timings)]

    # no earlier run: the typical cpu seconds; a notebook they do not know starts first
    assert order() == ["new_chapter", "04_cnn_chest_xray", "08_disease_course_prediction",
                       "00_start_here"]  # fmt: skip
    # an earlier run of the same profile decides; one of another profile does not
    entries = [
        {"notebook": n, "seconds": s} for n, s in zip(names, [50.0, 10.0, 5.0, 20.0], strict=True)
    ]
    timings.write_text(json.dumps({"profile": "smoke", "notebooks": entries}))
    assert order("smoke") == ["00_start_here", "08_disease_course_prediction",
                              "04_cnn_chest_xray", "new_chapter"]  # fmt: skip
    assert order("cpu")[1] == "04_cnn_chest_xray"
    timings.write_text("{not json")
    assert order("smoke")[1] == "04_cnn_chest_xray"
