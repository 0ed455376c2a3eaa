"""The light modules of helpers import without TensorFlow; the heavy ones import it quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIGHT = [
    "helpers",
    "helpers.data",
    "helpers.evaluation",
    "helpers.trust",
    "helpers.plotting",
    "helpers.claims",
    "helpers.dicom",
    "helpers.nn",
    "helpers.leakage",
    "helpers.volumes",
    "helpers.ehr",
    "helpers.exercises",
    "helpers.course",
]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_do_not_import_tensorflow(module):
    result = _run(
        f"import sys, {module}; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"], f"{module} imported TensorFlow or Keras"


def test_config_then_keras_starts_without_tensorflow_noise():
    result = _run("import helpers.config, keras, helpers.models, helpers.gan, helpers.sequences")
    assert result.returncode == 0, result.stderr
    assert "cuda" not in result.stderr.lower() and "oneDNN" not in result.stderr, result.stderr
