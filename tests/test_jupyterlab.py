"""A reader's first path: JupyterLab in a real browser, running chapters cell by cell.

A real ``jupyter lab`` server (no token, localhost only, a temporary root holding copies of
the notebooks) is driven by headless Chromium (Playwright with Debian's chromium, as the
book test does): open the notebook, Run > Run All Cells in the ``smoke`` profile, save, and
read the saved notebook: every code cell ran, no cell raised, a figure rendered, and the
kernel was this project's environment. Server and browser are always shut down.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

from tests.test_book import browser  # noqa: F401  (the book test's Chromium, shut down after use)

pytestmark = pytest.mark.notebook
ROOT = Path(__file__).resolve().parents[1]
# notebook 00 and a chapter that trains networks
CHAPTERS = ["00_start_here", "02_neural_network_foundations"]
RUN_SECONDS = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on localhost with copies of the chapters; stopped afterwards."""
    root = tmp_path_factory.mktemp("lab")
    for name in CHAPTERS:
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", root)
    port = _free_port()
    env = {
        **os.environ,
        "DL4H_PROFILE": "smoke",
        "DL4H_CLAIMS": str(root / "claims"),
        "PYTHONPATH": str(ROOT),
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),  # no user settings leak in
    }
    env.pop("DL4H_EXERCISES", None)  # the learner's mode
    command = [
        str(Path(sys.executable).parent / "jupyter"),
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # offline: no PyPI look-ups
    ]
    if os.geteuid() == 0:  # CI containers run as root
        command.append("--allow-root")
    log = open(root / "server.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"jupyter lab did not start:\n{(root / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(1)
        yield {"url": url, "root": root}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def page(browser):  # noqa: F811  (the imported fixture)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def _saved(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"cells": []}


@pytest.mark.parametrize("name", CHAPTERS)
def test_a_chapter_runs_cell_by_cell_in_jupyterlab(lab, page, name):
    path = lab["root"] / f"{name}.ipynb"
    # a workspace of its own, reset: only this notebook is open
    page.goto(f"{lab['url']}/lab/workspaces/{name}/tree/{name}.ipynb?reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # wait until the kernel is idle, then Run > Run All Cells through the menus, like a reader
    page.get_by_text("Python 3 (ipykernel) | Idle").first.wait_for(timeout=120_000)
    dialog = page.locator(".jp-Dialog")
    assert not dialog.count(), f"{name}: JupyterLab asked: {dialog.first.inner_text()}"
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.monotonic() + RUN_SECONDS
    finished = False
    while time.monotonic() < deadline:
        time.sleep(3)
        dialog = page.locator(".jp-Dialog")
        assert not dialog.count(), f"{name}: JupyterLab asked: {dialog.first.inner_text()}"
        page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
        page.keyboard.press("Control+s")
        time.sleep(1)
        cells = [c for c in _saved(path)["cells"] if c["cell_type"] == "code"]
        if cells and all(c.get("execution_count") for c in cells):
            finished = True
            break
        if any(o.get("output_type") == "error" for c in cells for o in c.get("outputs", [])):
            break
    page.screenshot(path=str(lab["root"] / f"{name}.png"))
    cells = [c for c in _saved(path)["cells"] if c["cell_type"] == "code"]
    errors = [
        f"{o['ename']}: {o['evalue']}"
        for c in cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, f"{name}: a cell raised in JupyterLab: {errors[0]}"
    assert finished, f"{name}: not every cell ran within {RUN_SECONDS} s"
    images = [o for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{name}: no figure rendered"
    # the environment line of config.setup: the profile from the server's environment, and
    # the versions of this project's environment, so the kernel ran in it
    shown = json.dumps(cells)
    assert "profile smoke |" in shown
    assert (
        f"TensorFlow {metadata.version('tensorflow')}, Keras {metadata.version('keras')}" in shown
    )
