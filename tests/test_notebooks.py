"""The notebooks as stored: no outputs, the shared header shape, in the book, lint-clean;
and papermill injecting parameters. (nbmake executes every notebook in `smoke`.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _code_cells(nb: dict) -> list[dict]:
    return [cell for cell in nb["cells"] if cell["cell_type"] == "code"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_notebooks_are_numbered_uniquely_from_00():
    assert NOTEBOOKS, "no notebooks found"
    names = [re.match(r"(\d\d)_[a-z0-9_]+\.ipynb$", p.name) for p in NOTEBOOKS]
    assert all(names), [p.name for p, m in zip(NOTEBOOKS, names, strict=True) if not m]
    numbers = [int(m.group(1)) for m in names]
    assert numbers[0] == 0 and len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    for cell in _code_cells(_load(path)):
        assert cell["outputs"] == [] and cell["execution_count"] is None, _source(cell)[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_shape(path):
    """Colab cell, imports, `parameters` cell with PROFILE, then config.setup."""
    nb = _load(path)
    colab, imports, params, setup = (_source(c) for c in _code_cells(nb)[:4])
    reference = _source(_code_cells(_load(NOTEBOOKS[0]))[0])
    assert colab == reference, "the Colab cell must be the same in every notebook"
    assert "from helpers import" in imports
    assert "parameters" in _code_cells(nb)[2]["metadata"].get("tags", [])
    assert re.search(r'^PROFILE = "auto"', params, re.M)
    assert "config.setup(PROFILE" in setup
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, "exactly one cell is tagged `parameters`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_links_point_at_this_repository(path):
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    repo = config["repository"]["url"].removeprefix("https://github.com/")
    nb = _load(path)
    assert f"https://github.com/{repo} /content/dl4h" in _source(_code_cells(nb)[0])
    badge = f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{path.name}"
    assert badge in "".join(nb["cells"][0]["source"]), "first cell: title and Colab badge"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_has_exercises_with_hidden_solutions_and_summary(path):
    nb = _load(path)
    markdown = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "## Exercises" in markdown and "## Summary" in markdown and "## References" in markdown
    # per-chapter references are footnote citations: a {bibliography} per chapter would
    # duplicate every key that two chapters cite, and the book build would fail
    assert "```{footbibliography}" in markdown and "{bibliography}" not in markdown
    assert "{cite}" not in markdown and "{cite:" not in markdown, "use {footcite}"
    hidden = [c for c in nb["cells"] if "hide-cell" in c["metadata"].get("tags", [])]
    assert hidden, "solutions live in collapsed (hide-cell) cells"


def test_every_notebook_is_in_the_book():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = {chapter["file"] for part in toc["parts"] for chapter in part["chapters"]}
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in files


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_code_is_ruff_formatted():
    """helpers, benchmarks, tests and the book's extensions follow `ruff format`."""
    folders = [str(ROOT / name) for name in ("helpers", "benchmarks", "tests", "book/_ext")]
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *folders],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_papermill_injects_parameters(tmp_path, monkeypatch):
    import papermill as pm

    require("pneumoniamnist")
    monkeypatch.delenv("DL4H_PROFILE", raising=False)  # the injected PROFILE must decide
    output = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(ROOT / "notebooks" / "00_start_here.ipynb"),
        str(output),
        parameters={"PROFILE": "smoke", "N_SHOW": 4, "SEED": 7},
        cwd=str(ROOT / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
    )
    nb = _load(output)
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    printed = "".join(
        "".join(o.get("text", ""))
        for c in _code_cells(nb)
        for o in c["outputs"]
        if o["output_type"] == "stream"
    )
    assert "Settings(profile='smoke'" in printed and "seed=7" in printed
    assert "N_SHOW = 4" in printed
    assert os.environ.get("DL4H_PROFILE") is None
