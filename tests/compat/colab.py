"""What the notebooks' Colab cell would make pip do in an environment that already holds
TensorFlow, Keras and NumPy.

The Colab cell runs `%pip install --quiet -e /content/dl4h`. Colab ships its own TensorFlow,
Keras and NumPy (built for its CUDA); if installing the course replaced any of them, the
runtime would break or need a restart. The check reads the pip command from the Colab cell
itself, runs it against this repository with `--dry-run --report` (pip resolves exactly as it
would install, and changes nothing) and lists what pip would install or replace.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
COLAB_CHECKOUT = "/content/dl4h"
# the runtime's own packages that installing the course must leave alone
PROTECTED = ("tensorflow", "keras", "numpy")


def normalize(name: str) -> str:
    """PEP 503 name: `scikit_learn` and `Scikit-Learn` are the same project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def colab_pip_arguments(root: Path = ROOT) -> list[str]:
    """The arguments after `pip` in the Colab cell, with the checkout path replaced by `root`.

    Every notebook carries the same cell (tests/test_notebooks.py); this reads chapter 00's.
    """
    notebook = json.loads((root / "notebooks" / "00_start_here.ipynb").read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    lines = "".join(code[0]["source"]).splitlines()
    pip_lines = [line.strip() for line in lines if re.match(r"\s*[%!]\s*pip\s+install\b", line)]
    if len(pip_lines) != 1:
        raise ValueError(f"expected one `%pip install` line in the Colab cell, found {pip_lines}")
    words = shlex.split(pip_lines[0])
    arguments = words[words.index("install") :]
    if COLAB_CHECKOUT not in arguments:
        raise ValueError(f"the Colab cell does not install {COLAB_CHECKOUT}: {pip_lines[0]}")
    return [str(root) if word == COLAB_CHECKOUT else word for word in arguments]


def installed_versions(python: str | Path) -> dict[str, str]:
    """Every distribution installed in the environment of `python`, name -> version."""
    result = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return {normalize(row["name"]): row["version"] for row in json.loads(result.stdout)}


def dry_run(python: str | Path, report: Path, root: Path = ROOT) -> dict:
    """Run the Colab cell's pip command for `root` with `--dry-run --report`.

    Returns {"command", "before" (the protected packages' versions), "install" (every
    distribution pip would install or replace, name -> version), "changed_protected",
    "other_changes" (installs of already-installed packages at another version),
    "new" (packages not installed before)}.
    """
    before = installed_versions(python)
    arguments = colab_pip_arguments(root)
    command = [
        str(python),
        "-m",
        "pip",
        *arguments,
        "--dry-run",
        "--report",
        str(report),
        "--disable-pip-version-check",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(
            f"pip failed ({result.returncode}): {shlex.join(command)}\n{result.stderr[-4000:]}"
        )
    entries = json.loads(report.read_text())["install"]
    install = {
        normalize(entry["metadata"]["name"]): entry["metadata"]["version"] for entry in entries
    }
    install.pop("dl4h", None)  # the course itself (an editable install is always redone)
    return {
        "command": shlex.join(
            ["pip", *(COLAB_CHECKOUT if a == str(root) else a for a in arguments)]
        ),
        "before": {name: before.get(name) for name in PROTECTED},
        "install": install,
        "changed_protected": {
            name: f"{before.get(name)} -> {install[name]}" for name in PROTECTED if name in install
        },
        "other_changes": {
            name: f"{before[name]} -> {version}"
            for name, version in install.items()
            if name in before and name not in PROTECTED
        },
        "new": {name: version for name, version in install.items() if name not in before},
    }
