"""The book: built from the notebooks nbmake just executed, then opened in headless Chromium.

`make test` copies book/ and the notebooks to $DL4H_TEST_BOOK, runs them there with
`nbmake --overwrite` (so they keep their outputs), and these tests run last.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.conftest import IN_CI

pytestmark = pytest.mark.book
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _skip_or_fail(reason: str):
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def book_dir() -> Path:
    value = os.environ.get("DL4H_TEST_BOOK")
    if not value:
        _skip_or_fail("DL4H_TEST_BOOK is not set: run the book tests through `make test`")
    path = Path(value)
    if not path.is_absolute():
        path = ROOT / path
    notebooks = sorted((path / "notebooks").glob("*.ipynb"))
    executed = [
        p
        for p in notebooks
        if any(
            c.get("outputs") for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code"
        )
    ]
    if not notebooks or len(executed) != len(notebooks):
        _skip_or_fail(f"{path}/notebooks holds unexecuted notebooks: run `make test`")
    return path


def _toc_pages(book: Path) -> list[str]:
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc["parts"]:
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


def test_executed_notebooks_have_no_errors(book_dir):
    for path in sorted((book_dir / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        errors = [
            o
            for c in nb["cells"]
            if c["cell_type"] == "code"
            for o in c["outputs"]
            if o["output_type"] == "error"
        ]
        assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"


@pytest.fixture(scope="module")
def built_html(book_dir) -> Path:
    html = book_dir / "_build" / "html"
    shutil.rmtree(book_dir / "_build", ignore_errors=True)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "jupyter-book"),
            "build",
            str(book_dir),
            "--warningiserror",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    return html


def test_book_has_every_page_and_local_mathjax(built_html, book_dir):
    for page in _toc_pages(book_dir):
        assert (built_html / f"{page}.html").is_file(), page
    assert (built_html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    fonts = built_html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert len(list(fonts.glob("*.woff"))) > 10


@pytest.fixture(scope="module")
def server(built_html):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built_html))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        _skip_or_fail("Debian's chromium is not installed: run `make system-deps`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield instance
        instance.close()


PAGE_REPORT = """() => ({
  tracebacks: document.querySelectorAll('.cell_output .output.traceback, .output.error').length,
  stderr: [...document.querySelectorAll('.cell_output .output.stderr')].map(e => e.innerText.slice(0, 200)),
  figures: [...document.querySelectorAll('.cell_output img')].map(i => i.complete && i.naturalWidth > 0),
  broken_local_images: [...document.querySelectorAll('img')]
      .filter(i => i.src.startsWith(location.origin) && !(i.complete && i.naturalWidth > 0))
      .map(i => i.src),
  math: document.querySelectorAll('mjx-container').length,
  math_errors: document.querySelectorAll('mjx-merror').length,
  raw_math: document.querySelectorAll('.math:not(:has(mjx-container))').length,
  title: document.title,
})"""


def test_pages_open_in_chromium_with_figures_and_rendered_maths(browser, server, book_dir):
    shots = book_dir / "screenshots"
    shots.mkdir(exist_ok=True)
    problems = []
    for page_name in _toc_pages(book_dir):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        failed = []
        page.on("requestfailed", lambda request, failed=failed: failed.append(request.url))
        page.goto(f"{server}/{page_name}.html", wait_until="load")
        loads_mathjax = page.evaluate("!!document.querySelector('script[src*=\"mathjax\"]')")
        if loads_mathjax:  # Sphinx adds MathJax only to pages with maths
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("MathJax.startup.promise")
        report = page.evaluate(PAGE_REPORT)
        source = book_dir / f"{page_name}.ipynb"
        is_notebook = source.is_file()
        has_math = is_notebook and "$" in "".join(
            "".join(c["source"])
            for c in json.loads(source.read_text())["cells"]
            if c["cell_type"] == "markdown"
        )
        local_failures = [url for url in failed if url.startswith(server)]
        checks = {
            "no error output": report["tracebacks"] == 0,
            "no stderr output": not report["stderr"],
            "all local resources load": not local_failures and not report["broken_local_images"],
            "figures present and loaded": not is_notebook
            or (report["figures"] and all(report["figures"])),
            "maths rendered": not has_math
            or (loads_mathjax and report["math"] > 0 and report["raw_math"] == 0),
            "no maths errors": report["math_errors"] == 0,
        }
        failing = [name for name, ok in checks.items() if not ok]
        # The first screen of every page, for a person to look at; the whole page (up to
        # 60,000 px tall, several seconds each) only where a check failed.
        page.screenshot(
            path=str(shots / f"{page_name.replace('/', '_')}.png"), full_page=bool(failing)
        )
        page.close()
        problems += [
            f"{page_name}: {name} ({report}, failed: {local_failures})" for name in failing
        ]
    assert not problems, "\n".join(problems)


def test_the_smoke_run_wrote_a_claims_ledger_and_the_report_page_shows_it(built_html, book_dir):
    """Every chapter that checks its lessons wrote them to the ledger of its run, and the
    report page lists them; smoke claims are marked as not evaluated, never as holding."""
    from helpers import claims

    ledger = Path(os.environ.get(claims.LEDGER_ENV) or claims.ledger_dir())
    using = sorted(
        p.name[:2]
        for p in (book_dir / "notebooks").glob("*.ipynb")
        if "claims.Ledger(" in p.read_text()
    )
    assert using, "no chapter checks its lessons with helpers.claims"
    rows = claims.read_ledgers("smoke", ledger)
    assert sorted({row["chapter"] for row in rows}) == using
    assert {row["status"] for row in rows} == {claims.NOT_EVALUATED}
    page = (built_html / "claims.html").read_text()
    for row in rows:
        assert row["name"].replace("_", " ") in page, row["name"]
