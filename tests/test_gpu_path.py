"""The ``gpu`` profile's code path runs end to end on a CPU, at tiny sizes.

No GPU is needed: each notebook runs with ``DL4H_PROFILE=gpu`` (its gpu-only branches: 224-
and 64-pixel files, the ImageNet backbone with ``weights=None`` offline, the 3D U-Net, the
full ECG test split), ``DL4H_MIXED_PRECISION=1`` (the ``mixed_float16`` policy a GPU gets)
and the tiny sizes of :data:`gpu_path.TINY` injected by papermill, on a data root of real
files plus labelled test fixtures (tests/gpu_path.py). A gpu-only branch that crashes fails
the test. The benchmarks' ``gpu`` profiles run the same way, with tiny sizes given by
``--set KEY=VALUE`` (``test_benchmark_gpu_profile``). Chapter 05 and the volume benchmarks run
in float32 here (``gpu_path.FLOAT32_ON_CPU`` says why).

Each notebook runs as its **student edition** (solutions replaced by empty placeholders), so
the same run also shows that a learner's copy runs top to bottom with its exercises
unanswered and that every check says so. The teacher's solutions run in the ``smoke``
notebook tests; no solution cell depends on the profile
(``test_no_solution_cell_depends_on_the_profile``), so no gpu-only line hides in one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import data, exercises
from tests.conftest import REAL_ROOT, require
from tests.gpu_path import FLOAT32_ON_CPU, TINY, build_root

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def gpu_root(tmp_path_factory):
    for name in ("pneumoniamnist", "adrenalmnist3d_64", "ecg5000_train"):
        require(name)
    return build_root(REAL_ROOT, tmp_path_factory.mktemp("gpu_root"))


@pytest.fixture()
def gpu_env(gpu_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DL4H_PROFILE", "gpu")
    monkeypatch.setenv("DL4H_MIXED_PRECISION", "1")
    monkeypatch.setenv(data.DATA_ENV, str(gpu_root))
    monkeypatch.setenv(data.FIXTURE_ENV, "1")
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("DL4H_CLAIMS", str(tmp_path / "claims"))
    monkeypatch.delenv("DL4H_EXERCISES", raising=False)
    return gpu_root


def _parameters(path: Path) -> set[str]:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line}


def test_every_notebook_has_tiny_gpu_sizes_of_its_own_parameters():
    assert sorted(TINY) == [p.stem for p in NOTEBOOKS], "a notebook lacks tiny gpu-path sizes"
    for path in NOTEBOOKS:
        unknown = set(TINY[path.stem]) - _parameters(path)
        assert not unknown, f"{path.name}: {sorted(unknown)} are not in its parameters cell"


def test_no_solution_cell_depends_on_the_profile():
    """What lets the gpu path run the student edition without skipping a gpu-only line."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if exercises.SOLUTION_TAG in cell.metadata.get("tags", []):
                for needle in ("S.pick(", "S.profile", "PROFILE ==", '== "gpu"', "== 'gpu'"):
                    assert needle not in cell.source, f"{path.name}: a solution reads {needle}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_gpu_path(path, gpu_env, tmp_path, monkeypatch):
    import papermill as pm

    from helpers.course import _kernel_manager_class

    if path.stem in FLOAT32_ON_CPU:
        monkeypatch.setenv("DL4H_MIXED_PRECISION", "0")

    student = tmp_path / f"{path.stem}_student.ipynb"
    nbformat.write(
        nbformat.from_dict(exercises.student_notebook(nbformat.read(path, as_version=4))),
        student,
    )
    output = tmp_path / path.name
    pm.execute_notebook(
        str(student),
        str(output),
        parameters=TINY[path.stem],
        cwd=str(tmp_path),
        kernel_name="python3",
        kernel_manager_class=_kernel_manager_class(),
        progress_bar=False,
        execution_timeout=900,
    )
    nb = nbformat.read(output, as_version=4)
    text = "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )
    policy = "float32" if path.stem in FLOAT32_ON_CPU else "mixed_float16"
    assert "profile gpu | CPU" in text and policy in text, "not the gpu profile's set-up"
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.get("output_type") == "error"
    ]
    assert not errors
    # the student edition: every check ran and reports its exercise as not answered
    checks = [c for c in nb.cells if exercises.CHECK_TAG in c.metadata.get("tags", [])]
    assert all(exercises.NOT_ANSWERED in json.dumps(c.outputs) for c in checks), (
        "a check in the student edition did not report an unanswered exercise"
    )


def test_a_broken_gpu_branch_fails(gpu_env, tmp_path):
    """The test can fail: a generator hard-wired to the smoke and cpu size (28 px) breaks
    chapter 06's gpu path, whose films are 64 px. The smoke run cannot see this bug."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from helpers.course import _kernel_manager_class

    source = nbformat.read(ROOT / "notebooks" / "06_gan_synthetic_images.ipynb", as_version=4)
    call = "image_size=IMG_SIZE"
    first = min(i for i, cell in enumerate(source.cells) if call in cell.source)
    last = max(i for i, cell in enumerate(source.cells) if "cgan = make_gan(" in cell.source)
    assert first <= last
    source.cells = source.cells[: last + 1]  # nothing after the first GAN needs to run
    for cell in source.cells:
        cell.source = cell.source.replace(call, "image_size=28")
    broken = tmp_path / "06_broken.ipynb"
    nbformat.write(source, broken)
    assert "image_size=28" in broken.read_text()
    with pytest.raises(PapermillExecutionError) as failure:
        pm.execute_notebook(
            str(broken),
            str(tmp_path / "out.ipynb"),
            parameters=TINY["06_gan_synthetic_images"],
            cwd=str(tmp_path),
            kernel_name="python3",
            kernel_manager_class=_kernel_manager_class(),
            progress_bar=False,
            execution_timeout=900,
        )
    # it failed for the planted reason: 28-px fakes meet a discriminator built for 64 px
    message = failure.value.evalue
    assert "incompatible" in message and "64, 64, 1" in message and "28, 28" in message, message


def test_fixtures_are_refused_outside_the_gpu_path_tests(gpu_root, monkeypatch):
    monkeypatch.delenv(data.FIXTURE_ENV, raising=False)
    with pytest.raises(data.DatasetCorrupt, match="TEST FIXTURE"):
        data.fetch("pneumoniamnist_224", data_home=gpu_root)
    marker = json.loads(
        data.fixture_marker(gpu_root / "medmnist/pneumoniamnist_224.npz").read_text()
    )
    assert "upsampled" in marker["description"]


# --------------------------------------------------------------------------- benchmarks
# Per benchmark: its command-line arguments for the gpu profile at tiny sizes (--set).
BENCHMARKS = {
    "cnn_medmnist": ["--dataset", "pneumoniamnist", "--size", "224", "--seeds", "0",
                     "--set", "max_epochs=1", "min_epochs=0", "n_boot=20"],
    "gan_medmnist": ["--dataset", "pneumoniamnist", "--seeds", "0", "--steps", "10",
                     "--set", "max_epochs=1", "min_epochs=0", "n_generated=64"],
    "rnn_sequences": ["--task", "splice", "--seeds", "0",
                      "--set", "epochs=1", "n_train=120", "folds=2", "run_folds=1", "n_boot=20"],
    # the gpu profile's four stages and its 3D U-Net at 64 voxels, with fewer filters (as in
    # chapter 05's gpu-path run): at the profile's widths the 3D convolutions of these two
    # runs took 104 and 64 s on 2 cores, at these 47 and 29 s
    "volumes": ["--task", "adrenal", "--size", "64", "--seeds", "0",
                "--set", "epochs=1", "last_k=1", "epochs_25d=1", "n_boot=20",
                "widths=(4, 8, 8, 8)"],
    "volumes_hippocampus": ["--task", "hippocampus", "--seeds", "0",
                            "--set", "epochs=1", "n_cases=10", "n_boot=20", "base=4"],
    "ehr_mortality": ["--splits", "1", "--set", "limit=300", "epochs=1", "tree_iterations=20",
                      "n_boot=20"],
    "survival": ["--dataset", "gbsg", "--seeds", "0",
                 "--set", "epochs=2", "trees=10", "n_train=300"],
    "pneumonia_leakage": ["--seeds", "0", "--set", "max_epochs=1", "min_epochs=0",
                          "n_train=256", "n_boot=20", "n_permutations=2"],
}  # fmt: skip


def test_every_benchmark_has_a_gpu_path_run():
    scripts = {
        p.stem for p in (ROOT / "benchmarks").glob("*.py") if "= build_report(" in p.read_text()
    }
    covered = {name.split("_hippocampus")[0] for name in BENCHMARKS}
    assert scripts == covered, f"benchmarks without a gpu-path run: {sorted(scripts - covered)}"


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_gpu_profile(name, gpu_env, tmp_path, monkeypatch):
    from benchmarks.report import validate

    if name in FLOAT32_ON_CPU:
        monkeypatch.setenv("DL4H_MIXED_PRECISION", "0")

    script = ROOT / "benchmarks" / f"{name.split('_hippocampus')[0]}.py"
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, str(script), *BENCHMARKS[name], "--profile", "gpu", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    validate(report)
    assert report["profile"] == "gpu"
    policy = "float32" if name in FLOAT32_ON_CPU else "mixed_float16"
    assert report["provenance"]["machine"]["mixed_precision"] == policy
    assert report["settings"]["overrides"], "a tiny run must say which settings it overrode"
