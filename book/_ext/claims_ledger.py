"""Render the claims ledger (``build/claims/<profile>/<chapter>.json``) in the book.

Each chapter checks the lessons it draws against its own outputs with
:mod:`helpers.claims` and writes them to a ledger when it runs. The directive::

    ```{claims-ledger}
    ```

shows one table row per claim: chapter, claim, whether it held in that run, the sentence the
chapter showed, and the evidence. The ledger of the ``cpu`` run (``make all``) is shown, or
the ``gpu`` one; when only the ``smoke`` ledger exists (the test build) it is shown with every
claim marked "not evaluated at this size". The ledgers are found in ``$DL4H_CLAIMS`` or in
``build/claims`` of the first parent of the book's source folder that holds a
``pyproject.toml`` (the repository). A ledger that cannot be parsed stops the build.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from benchmark_results import table  # the same table builder as the results page
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

PROFILES_SHOWN = ("cpu", "gpu", "smoke")


def find_ledger_dir(srcdir: Path) -> Path | None:
    """``$DL4H_CLAIMS``, else ``build/claims`` under the repository that holds the book."""
    if os.environ.get("DL4H_CLAIMS"):
        return Path(os.environ["DL4H_CLAIMS"]).expanduser().resolve()
    for parent in [srcdir.resolve(), *srcdir.resolve().parents]:
        if (parent / "pyproject.toml").is_file():
            return parent / "build" / "claims"
    return None


def plain(text: str) -> str:
    """The chapter's Markdown sentence as plain table text (emphasis and code marks dropped)."""
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    return text.replace("`", "")


def read_profile(folder: Path, profile: str) -> list[dict[str, Any]]:
    """The claims of every chapter's ledger for ``profile``, in chapter order."""
    rows: list[dict[str, Any]] = []
    for path in sorted((folder / profile).glob("*.json")):
        try:
            rows.extend(json.loads(path.read_text(encoding="utf-8"))["claims"])
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"claims ledger {path} is malformed: {error}") from error
    return rows


class ClaimsLedger(SphinxDirective):
    """``{claims-ledger}``: every checked lesson of the course and whether its run shows it."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        folder = find_ledger_dir(Path(self.env.srcdir))
        if folder is None or not folder.is_dir():
            return [
                nodes.paragraph(
                    text="No claims ledger was found: run `make all` (it executes "
                    "the chapters in the cpu profile and writes build/claims/)."
                )
            ]
        out: list[nodes.Node] = []
        for profile in PROFILES_SHOWN:
            try:
                rows = read_profile(folder, profile)
            except ValueError as error:
                raise self.error(str(error)) from error
            for path in (folder / profile).glob("*.json"):
                self.env.note_dependency(str(path))
            if not rows:
                continue
            held = sum(r["status"] == "holds" for r in rows)
            failed = sum(r["status"] == "does not hold" for r in rows)
            summary = (
                f"{profile} run: {len(rows)} claims; {held} hold, {failed} do not hold"
                + (
                    f", {len(rows) - held - failed} not evaluated at this size"
                    if len(rows) - held - failed
                    else ""
                )
                + "."
            )
            out.append(nodes.rubric(text=f"Ledger of the {profile} run"))
            out.append(nodes.paragraph(text=summary))
            out.append(
                table(
                    ["chapter", "claim", "status", "what the chapter said", "evidence"],
                    [
                        [
                            r["chapter"],
                            r["name"].replace("_", " "),
                            r["status"],
                            plain(r["sentence"]),
                            r.get("evidence", ""),
                        ]
                        for r in rows
                    ],
                    widths=[1, 3, 2, 6, 4],
                    classes="claims-ledger",
                )
            )
            if profile in ("cpu", "gpu"):
                break  # the course's own run; smoke is only shown when nothing else exists
        if not out:
            out.append(nodes.paragraph(text="The claims ledger is empty: run `make all`."))
        return out


def setup(app):
    app.add_directive("claims-ledger", ClaimsLedger)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
