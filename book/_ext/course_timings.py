"""Show each chapter's measured running time, read from ``build/course-timings.json``.

``make course`` (``helpers.course``) writes that file: per notebook the seconds, the peak
memory of its kernel and the status, with the profile and the machine. The directive::

    ```{course-timings}
    ```

renders it as a table, so the running times in the book are measured, never typed. The file is
looked up in ``build/`` of the first parent of the book's source folder that has one; without
it (the book built from test copies, or before ``make course``) the page says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

TIMINGS = Path("build") / "course-timings.json"


def find_timings(srcdir: Path) -> Path | None:
    """``build/course-timings.json`` in ``srcdir`` or its nearest parent that has one."""
    for folder in (srcdir, *srcdir.parents):
        if (folder / TIMINGS).is_file():
            return folder / TIMINGS
    return None


def table(record: dict[str, Any]) -> nodes.table:
    rows = [
        (e["notebook"], f"{e['seconds'] / 60:.1f}", f"{e['peak_memory_mb']:,}", e["status"])
        for e in record["notebooks"]
    ]
    if record.get("jobs", 1) > 1 and "wall_seconds" in record:
        rows.append(("all chapters, added up", f"{record['total_seconds'] / 60:.1f}", "", ""))
        rows.append(
            (
                f"all chapters, first to last ({record['jobs']} at a time)",
                f"{record['wall_seconds'] / 60:.1f}",
                "",
                "",
            )
        )
    else:
        rows.append(("all chapters", f"{record['total_seconds'] / 60:.1f}", "", ""))
    header = ("chapter", "minutes", "peak memory (MB)", "status")
    tbl = nodes.table()
    group = nodes.tgroup(cols=len(header))
    tbl += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head, body = nodes.thead(), nodes.tbody()
    for target, cells in ((head, [header]), (body, rows)):
        for cells_row in cells:
            row = nodes.row()
            for cell in cells_row:
                entry = nodes.entry()
                entry += nodes.paragraph(text=str(cell))
                row += entry
            target += row
    group += head
    group += body
    return tbl


class CourseTimings(SphinxDirective):
    def run(self) -> list[nodes.Node]:
        path = find_timings(Path(self.env.srcdir))
        if path is None:
            return [
                nodes.paragraph(
                    text="No running times were recorded for this build of the book: they are "
                    "written by `make course` (part of `make all`) into build/course-timings.json."
                )
            ]
        self.env.note_dependency(str(path))
        record = json.loads(path.read_text())
        machine = record.get("machine", {})
        intro = nodes.paragraph(
            text=f"Measured by make course in the {record['profile']} profile on "
            f"{machine.get('cpus', '?')} CPU cores ({machine.get('platform', 'unknown machine')}), "
            f"started {record.get('started', '?')}, "
            + (
                f"{record['jobs']} notebooks at a time: each chapter's minutes are its own, "
                "measured while it shared the cores with another."
                if record.get("jobs", 1) > 1
                else "one notebook at a time."
            )
        )
        return [intro, table(record)]


def setup(app):
    app.add_directive("course-timings", CourseTimings)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
