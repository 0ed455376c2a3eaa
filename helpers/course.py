"""Run the course: execute the notebooks with papermill, with progress and timings.

``python -m helpers.course --out book/notebooks`` (what ``make course`` runs) executes every
notebook of ``notebooks/`` in the profile named by ``DL4H_PROFILE`` (default ``cpu``), one at a
time, showing which notebook runs and a progress bar over its cells. It stops at the first
notebook that fails and prints the failing cell's traceback. It writes
``build/course-timings.json``: per notebook the seconds, the peak memory of its kernel and the
status, with the profile and the machine, so the book can show each chapter's measured
running time.

Kernels talk to papermill over local IPC sockets instead of TCP (no "running over TCP without
encryption" warning for every notebook, and nothing listens on a network port).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMINGS = REPO_ROOT / "build" / "course-timings.json"


def _kernel_manager_class() -> type:
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        """A kernel manager whose kernel listens on IPC sockets, not TCP ports."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"

    return IPCKernelManager


class PeakMemory:
    """Track the peak resident memory of this process's children (the kernel) in a thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    continue
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def machine() -> dict[str, Any]:
    """The machine the course ran on (what a reader needs to compare running times)."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def run(notebooks: list[Path], out: Path, profile: str, timings: Path, timeout: int | None) -> int:
    """Execute ``notebooks`` into ``out`` in ``profile``; write ``timings``; 0 if all ran."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    os.environ["DL4H_PROFILE"] = profile
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "profile": profile,
        "machine": machine(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "notebooks": [],
    }
    manager = _kernel_manager_class()
    status = 0
    for number, source in enumerate(notebooks, 1):
        target = out / source.name
        print(f"[{number}/{len(notebooks)}] {source.stem} ({profile})", flush=True)
        start = time.perf_counter()
        entry: dict[str, Any] = {"notebook": source.stem}
        with PeakMemory() as memory:
            try:
                pm.execute_notebook(
                    source,
                    target,
                    kernel_name="python3",
                    kernel_manager_class=manager,
                    cwd=str(out),
                    progress_bar=True,
                    execution_timeout=timeout,
                    log_output=False,
                )
                entry["status"] = "ok"
            except PapermillExecutionError as error:
                entry["status"] = "failed"
                entry["failed_cell"] = error.exec_count
                print(
                    f"\n{source.name} failed in cell {error.exec_count}: {error.ename}: "
                    f"{error.evalue}\n" + "".join(error.traceback),
                    file=sys.stderr,
                )
                status = 1
        entry["seconds"] = round(time.perf_counter() - start, 1)
        entry["peak_memory_mb"] = round(memory.peak_bytes / 2**20)
        record["notebooks"].append(entry)
        print(
            f"    {entry['status']} in {entry['seconds']:.0f} s, peak {entry['peak_memory_mb']} MB"
        )
        if status:
            break
    record["total_seconds"] = round(sum(e["seconds"] for e in record["notebooks"]), 1)
    timings.parent.mkdir(parents=True, exist_ok=True)
    timings.write_text(json.dumps(record, indent=1) + "\n")
    print(f"total {record['total_seconds'] / 60:.1f} min; timings in {timings}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--out", type=Path, required=True, help="folder for executed copies")
    parser.add_argument("--profile", default=os.environ.get("DL4H_PROFILE") or "cpu")
    parser.add_argument("--timings", type=Path, default=TIMINGS)
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
    return run(notebooks, args.out, args.profile, args.timings, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
