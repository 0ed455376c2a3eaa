"""Run the course: execute the notebooks with papermill, with progress and timings.

``python -m helpers.course --out book/notebooks`` (what ``make course`` runs) executes every
notebook of ``notebooks/`` in the profile named by ``DL4H_PROFILE`` (default ``cpu``), showing
which notebook runs and a progress bar over its cells. It stops at the first notebook that
fails and prints the failing cell's traceback. It writes ``build/course-timings.json``: per
notebook the seconds, the peak memory of its kernel and the status, with the profile, the
machine and the number of notebooks run at once, so the book can show each chapter's
measured running time.

``--jobs N`` runs N notebooks at a time, each in its own process and kernel (``make course``
uses 2). The chapters do not depend on each other's outputs, and each kernel seeds itself, so
the numbers are those of a one-at-a-time run; only the seconds differ, since the kernels share
the cores. Two at a time pays even on 2 cores: much of a chapter's time is single-threaded
Python (kernel start-up, imports, Keras's training loop on small batches), which leaves a core
idle. After a failure (a failing cell, or a kernel that died) no further notebook starts;
those already running finish.

Run at once, the notebooks share the cores in two ways. Each kernel gets its share of them
for OpenMP and OpenBLAS (``OMP_NUM_THREADS``, unless you set it): scikit-learn's gradient
boosting and NumPy's linear algebra otherwise start a thread per core in every kernel, and
threads that wait for a core another kernel holds spin instead of sleeping. Beside another
chapter on 2 cores, chapter 01's gradient boosting took 1.2 to 6.5 s per fold without the
share and 0.11 s with it, its logistic regression 0.10 s and 0.01 s, with the same results.
And the longest notebooks start first (their seconds in the last run's timings file for the
same profile, else :data:`TYPICAL_SECONDS`), so that no long chapter starts last and leaves a
core idle at the end. Progress and the timings file still number and list the notebooks in
reading order.

Kernels talk to papermill over local IPC sockets instead of TCP (no "running over TCP without
encryption" warning for every notebook, and nothing listens on a network port).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMINGS = REPO_ROOT / "build" / "course-timings.json"

# Only to choose which notebook starts first when several run at once (longest first), when
# no timings of an earlier run of the same profile exist: seconds per chapter in the `cpu`
# profile in a clean-clone `make all` on 2 cores (commit 2242111). Not shown anywhere.
TYPICAL_SECONDS = {
    "00_start_here": 18,
    "01_deep_learning_vs_machine_learning": 153,
    "02_neural_network_foundations": 45,
    "03_medical_image_preprocessing": 56,
    "04_cnn_chest_xray": 331,
    "05_volumes_and_segmentation": 201,
    "06_gan_synthetic_images": 232,
    "07_rnn_sequences": 271,
    "08_disease_course_prediction": 319,
    "09_trustworthy_clinical_ai": 293,
}


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_the_cores(processes: int) -> str | None:
    """Set ``OMP_NUM_THREADS`` for one of ``processes`` processes that run at once: its share
    of :func:`cores` (at least 1), inherited by the kernels and programs it starts.

    Nothing changes when it runs alone or ``OMP_NUM_THREADS`` is set already (the user's
    choice wins). Returns the value set, or None."""
    if processes <= 1 or os.environ.get("OMP_NUM_THREADS"):
        return None
    os.environ["OMP_NUM_THREADS"] = omp_share(processes)
    return os.environ["OMP_NUM_THREADS"]


def omp_share(processes: int) -> str:
    """One of ``processes`` processes' share of :func:`cores`, at least 1, as a string."""
    return str(max(1, cores() // max(1, processes)))


def longest_first(notebooks: list[Path], profile: str, timings: Path) -> list[Path]:
    """``notebooks`` in the order to start them when several run at once: the longest first,
    by their seconds in ``timings`` if it holds an earlier run of ``profile``, else by
    :data:`TYPICAL_SECONDS`. A notebook known to neither starts first, in reading order."""
    seconds = dict(TYPICAL_SECONDS)
    try:
        previous = json.loads(timings.read_text())
        if previous.get("profile") == profile:
            seconds.update({e["notebook"]: e["seconds"] for e in previous["notebooks"]})
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no earlier run, or not one this runner wrote
    return sorted(notebooks, key=lambda path: -seconds.get(path.stem, float("inf")))


def _kernel_manager_class() -> type:
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        """A kernel manager whose kernel listens on IPC sockets, not TCP ports."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"
            # Socket files in a folder of this kernel's own: kernels started at once from
            # the same working folder would otherwise race for the same file names.
            self.ip = str(Path(tempfile.mkdtemp(prefix="dl4h-kernel-")) / "kernel-ipc")

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


def _execute(
    source: Path, out: Path, profile: str, timeout: int | None, slot: int | None, t0: float
):
    """Execute one notebook into ``out``; its timing entry and, on failure, the error text.

    ``slot`` (parallel runs) gives the notebook's progress bar its own line; ``t0`` is the
    run's start (``time.time()``), from which the entry counts its ``began_s``."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    os.environ["DL4H_PROFILE"] = profile
    progress: bool | dict[str, Any] = True
    if slot is not None:
        progress = {"desc": source.stem[:28], "position": slot, "leave": True}
    start = time.perf_counter()
    entry: dict[str, Any] = {"notebook": source.stem, "began_s": round(time.time() - t0, 1)}
    error_text = ""
    with PeakMemory() as memory:
        try:
            pm.execute_notebook(
                source,
                out / source.name,
                kernel_name="python3",
                kernel_manager_class=_kernel_manager_class(),
                cwd=str(out),
                progress_bar=progress,
                execution_timeout=timeout,
                log_output=False,
            )
            entry["status"] = "ok"
        except PapermillExecutionError as error:
            entry["status"] = "failed"
            entry["failed_cell"] = error.exec_count
            error_text = (
                f"\n{source.name} failed in cell {error.exec_count}: {error.ename}: "
                f"{error.evalue}\n" + "".join(error.traceback)
            )
        except Exception as error:  # the kernel died (out of memory) or did not start
            entry["status"] = "failed"
            error_text = f"\n{source.name} failed: {type(error).__name__}: {error}"
    entry["seconds"] = round(time.perf_counter() - start, 1)
    entry["peak_memory_mb"] = round(memory.peak_bytes / 2**20)
    return entry, error_text


def _report(entry: dict[str, Any], error_text: str) -> None:
    if error_text:
        print(error_text, file=sys.stderr, flush=True)
    print(
        f"    {entry['notebook']}: {entry['status']} in {entry['seconds']:.0f} s, "
        f"peak {entry['peak_memory_mb']} MB",
        flush=True,
    )


def run(
    notebooks: list[Path],
    out: Path,
    profile: str,
    timings: Path,
    timeout: int | None,
    jobs: int = 1,
) -> int:
    """Execute ``notebooks`` into ``out`` in ``profile``, ``jobs`` at a time; write
    ``timings``; 0 if all ran."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = max(1, min(jobs, len(notebooks)))
    record: dict[str, Any] = {
        "profile": profile,
        "machine": machine(),
        "jobs": jobs,
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "notebooks": [],
    }
    wall, t0 = time.perf_counter(), time.time()
    entries: dict[str, dict[str, Any]] = {}
    failed = False
    if jobs == 1:
        for number, source in enumerate(notebooks, 1):
            print(f"[{number}/{len(notebooks)}] {source.stem} ({profile})", flush=True)
            entry, error_text = _execute(source, out, profile, timeout, None, t0)
            entries[source.stem] = entry
            _report(entry, error_text)
            if entry["status"] != "ok":
                failed = True
                break
    else:
        # each worker process, and the kernels it starts, gets its share of the cores
        record["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS") or omp_share(jobs)
        number_of = {source: number for number, source in enumerate(notebooks, 1)}
        # spawn, not fork: the parent holds threads (progress bars, memory polling)
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=share_the_cores, initargs=(jobs,)
        ) as pool:
            pending = [(number_of[s], s) for s in longest_first(notebooks, profile, timings)]
            running: dict[cf.Future, int] = {}
            free_slots = list(range(jobs))
            while pending or running:
                while pending and free_slots and not failed:
                    number, source = pending.pop(0)
                    slot = free_slots.pop(0)
                    print(f"[{number}/{len(notebooks)}] {source.stem} ({profile})", flush=True)
                    future = pool.submit(_execute, source, out, profile, timeout, slot, t0)
                    running[future] = slot
                if failed:
                    pending.clear()  # no further notebook starts after a failure
                if not running:
                    break
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    free_slots.append(running.pop(future))
                    entry, error_text = future.result()
                    entries[entry["notebook"]] = entry
                    _report(entry, error_text)
                    failed = failed or entry["status"] != "ok"
    record["notebooks"] = [entries[s.stem] for s in notebooks if s.stem in entries]
    record["total_seconds"] = round(sum(e["seconds"] for e in record["notebooks"]), 1)
    record["wall_seconds"] = round(time.perf_counter() - wall, 1)
    timings.parent.mkdir(parents=True, exist_ok=True)
    timings.write_text(json.dumps(record, indent=1) + "\n")
    print(
        f"total {record['total_seconds'] / 60:.1f} min of notebook time, "
        f"{record['wall_seconds'] / 60:.1f} min wall ({jobs} at a time); timings in {timings}"
    )
    return int(failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--out", type=Path, required=True, help="folder for executed copies")
    parser.add_argument("--profile", default=os.environ.get("DL4H_PROFILE") or "cpu")
    parser.add_argument("--timings", type=Path, default=TIMINGS)
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at a time")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
    return run(notebooks, args.out, args.profile, args.timings, args.timeout, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
