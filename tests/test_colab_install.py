"""The Colab cell is safe on a runtime we do not control: installing the course the way the
cell does (`pip install --quiet -e <checkout>`) changes none of TensorFlow, Keras and NumPy.

This runs in whatever environment runs the tests: the project's .venv under `make test`, and
under `make compat` the lower-bound and newest environments (which stand for an older and a
newer runtime). `make compat` also runs the check in bare environments that hold only
TensorFlow, Keras and NumPy, as a fresh Colab runtime holds none of the course's other
libraries (tests/compat/run_compat.py, step `colab`). pip runs with `--dry-run --report`, so
it resolves exactly as it would install and changes nothing. It needs the package index for
the build backend (setuptools), as `make setup` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.compat import colab

ROOT = Path(__file__).resolve().parents[1]


def test_the_check_runs_the_colab_cells_own_command():
    arguments = colab.colab_pip_arguments(ROOT)
    assert arguments[0] == "install" and arguments[-2:] == ["-e", str(ROOT)]
    # no flag that would let pip touch installed packages beyond what the project needs
    assert not {"-U", "--upgrade", "--force-reinstall", "--ignore-installed"} & set(arguments)


def test_colab_install_changes_no_tensorflow_keras_or_numpy(tmp_path):
    installed = colab.installed_versions(sys.executable)
    missing = [name for name in colab.PROTECTED if name not in installed]
    if missing:
        pytest.skip(f"this environment holds no {missing}: nothing a runtime ships to protect")
    result = colab.dry_run(sys.executable, tmp_path / "pip-report.json", ROOT)
    print(f"{result['command']}: {result['before']}; would also change {result['other_changes']}")
    assert result["changed_protected"] == {}, (
        f"the Colab cell would replace the runtime's {result['changed_protected']}"
    )
