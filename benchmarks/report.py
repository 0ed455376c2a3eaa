"""What every benchmark report holds besides its metrics: profile, seeds, versions,
devices, wall time and peak memory. Used by the scripts in this folder."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import config  # noqa: E402


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (and peak GPU memory when a GPU is used)."""
    import tensorflow as tf

    peak = {"host_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    for index, _ in enumerate(tf.config.list_physical_devices("GPU")):
        info = tf.config.experimental.get_memory_info(f"GPU:{index}")
        peak[f"gpu{index}_peak_mb"] = info["peak"] / 2**20
    return peak


def summarise(per_seed: list[dict[str, Any]], keys: list[str]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation, min and max over seeds of each metric in ``keys``."""
    out = {}
    for key in keys:
        values = np.array([run[key] for run in per_seed], dtype=float)
        out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=0)),
                    "min": float(values.min()), "max": float(values.max())}
    return out


def write_report(path: str | Path, payload: dict[str, Any], profile: str, started: float) -> Path:
    """Write ``payload`` plus the environment, wall time and peak memory as JSON."""
    report = {
        **payload,
        "profile": profile,
        "wall_seconds": round(time.time() - started, 1),
        "peak_memory": peak_memory_mb(),
        "environment": config.environment_report(profile),
        "command": " ".join(sys.argv),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"report written to {path}")
    return path
