"""The keys of the common benchmark report and how a report is written as JSON.

A light module (standard library only) so that everything that reads or writes reports can
share it without importing TensorFlow: ``benchmarks/report.py`` (which builds and validates
reports and documents every key), ``benchmarks/check.py`` (``make bench-check``) and the
book's ``benchmark-report`` directive (``book/_ext/benchmark_results.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

REPORT_KEYS = (
    "benchmark",
    "dataset",
    "profile",
    "seeds",
    "settings",
    "metrics",
    "headline",
    "spread",
    "per_seed",
    "baselines",
    "reference",
    "targets",
    "provenance",
    "model_card",
    "details",
)


def to_json(report: Mapping[str, Any]) -> str:
    """The report as the committed files hold it: indented JSON, UTF-8 text, a final newline."""
    return json.dumps(report, indent=2, default=float, ensure_ascii=False) + "\n"
