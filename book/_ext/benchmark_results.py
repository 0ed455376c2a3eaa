"""Render the benchmark JSON reports as tables in the book, at build time.

The results page must never hold a typed number: its directive reads the report that a
benchmark script wrote (``benchmarks/reports/<name>.json``) and renders it::

    ```{benchmark-report} cnn_pneumoniamnist_28_cpu
    ```

Each report kind has a short list of headline metrics (:data:`HEADLINES`). A multi-seed
report shows mean ± standard deviation, the range and every seed's value; a single-run
report shows the value. Published references stored in the report (the MedMNIST v2 table
for the image benchmark) get a table of their own, and so do the targets a report records.
The reports are found in ``benchmarks/reports`` in the first parent of the book's source
folder that has one (``book/`` in the repository, ``build/test-book/`` in the tests), or in
the folder named by the Sphinx option ``benchmark_reports_dir``. A report that is missing,
unreadable or of an unknown kind stops the build with an error naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

#: report kind -> (label, key) rows; keys are looked up in ``summary`` (several seeds) or,
#: dotted, in the report itself (a single run).
HEADLINES: dict[str, list[tuple[str, str]]] = {
    "cnn_medmnist": [
        ("test AUC", "test_auc"),
        ("test accuracy (threshold 0.5)", "test_acc"),
        ("validation AUC (model and epoch chosen here)", "val_auc"),
        ("epochs run", "epochs_run"),
        ("training seconds", "train_seconds"),
    ],
    "rnn_splice": [
        ("test accuracy, Conv1D + BiLSTM", "accuracy"),
        ("test macro-F1, Conv1D + BiLSTM", "macro_f1"),
        ("test accuracy, k-mer logistic regression (baseline)", "baseline_accuracy"),
        ("test macro-F1, k-mer logistic regression (baseline)", "baseline_macro_f1"),
        ("seconds per seed", "seconds"),
    ],
    "rnn_ecg5000": [
        ("normal vs abnormal AUC, GRU (pooled out-of-fold)", "auc_normal_vs_abnormal"),
        ("normal vs abnormal AUC, GRU (mean of the folds)", "mean_fold_auc_normal_vs_abnormal"),
        ("sensitivity, GRU", "binary_sensitivity"),
        ("specificity, GRU", "binary_specificity"),
        ("AUC, LSTM autoencoder trained on normal beats", "autoencoder_auc"),
        ("five-class accuracy", "accuracy"),
        ("five-class macro-F1", "macro_f1"),
        ("seconds per seed", "seconds"),
    ],
    "gan_medmnist": [
        ("test AUC, classifier trained on real films (TRTR)", "usefulness.trtr_test_auc"),
        ("test AUC, classifier trained on generated films (TSTR)", "usefulness.tstr_test_auc"),
        ("TSTR / TRTR", "usefulness.tstr_over_trtr"),
        ("Fréchet distance, generated vs real training films", "fidelity.fd_generated_vs_real_train"),
        ("Fréchet distance, real test vs real training films (baseline)",
         "fidelity.fd_real_test_vs_real_train"),
        ("two-sample AUC in features, generated vs real", "fidelity.c2st_auc_features_generated_vs_real_test"),
        ("two-sample AUC in features, real vs real (baseline)",
         "fidelity.c2st_auc_features_real_train_vs_real_test"),
        ("generated films flagged as near-copies of a training film", "memorisation.n_flagged"),
        ("generated films checked", "memorisation.n_generated"),
        ("GAN training seconds", "timings.gan_seconds"),
    ],
}


class ReportError(Exception):
    """A benchmark report that cannot be rendered; the message names the file and the problem."""


def report_kind(report: dict[str, Any]) -> str:
    """The report's kind: its ``benchmark`` field, or ``rnn_<task>`` for the sequence reports."""
    if "benchmark" in report:
        return str(report["benchmark"])
    if "task" in report:
        return f"rnn_{report['task']}"
    raise ReportError("the report has neither a 'benchmark' nor a 'task' field")


def _lookup(report: dict[str, Any], dotted: str) -> Any:
    value: Any = report
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ReportError(f"the report has no field {dotted!r}")
        value = value[part]
    return value


def fmt(value: Any, key: str = "") -> str:
    """Format one number: whole numbers and seconds without decimals, others with three."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and ("seconds" in key or "epochs" in key)):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def headline_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a report's headline table (see :data:`HEADLINES`)."""
    kind = report_kind(report)
    if kind not in HEADLINES:
        raise ReportError(f"unknown report kind {kind!r}; known: {', '.join(sorted(HEADLINES))}")
    seeds = report.get("per_seed")
    if isinstance(seeds, list) and "summary" in report:
        header = ["metric", "mean ± sd", "range"] + [f"seed {s.get('seed', i)}" for i, s in enumerate(seeds)]
        rows = []
        for label, key in HEADLINES[kind]:
            stats = _lookup(report, f"summary.{key}")
            rows.append([label, f"{fmt(stats['mean'], key)} ± {fmt(stats['std'], key)}",
                         f"{fmt(stats['min'], key)} – {fmt(stats['max'], key)}"]
                        + [fmt(seed.get(key, "–"), key) for seed in seeds])
        return header, rows
    return ["metric", "value"], [[label, fmt(_lookup(report, key), key)] for label, key in HEADLINES[kind]]


def reference_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Published results stored in the report (``reference_*``), side by side with this run's mean."""
    refs = {k: v for k, v in report.items() if k.startswith("reference_") and isinstance(v, dict)}
    if not refs:
        return None
    table = next(iter(refs.values()))  # one published table per report
    metrics = sorted({m for row in table.values() for m in row}, reverse=True)  # AUC, ACC
    header = ["method", *[m.upper() for m in metrics]]
    rows = [[method, *[fmt(values.get(m, "–")) for m in metrics]] for method, values in table.items()]
    if "summary" in report:
        ours = [fmt(report["summary"][f"test_{m}"]["mean"]) if f"test_{m}" in report["summary"] else "–"
                for m in metrics]
        rows.append([f"this course ({report.get('profile', '?')} profile, mean of "
                     f"{len(report.get('per_seed', []))} seeds)", *ours])
    return header, rows


def target_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """The targets the report records (``targets``/``target``) and its ``targets_met`` verdicts."""
    rows = []
    if isinstance(report.get("target"), str):
        rows.append(["target", report["target"]])
    for key, value in (report.get("targets") or {}).items():
        rows.append([f"target: {key}", fmt(value)])
    for key, value in (report.get("targets_met") or {}).items():
        rows.append([f"met: {key}", fmt(value)])
    return (["target or verdict", "value"], rows) if rows else None


def provenance(report: dict[str, Any]) -> str:
    """One line: profile, seeds, machine, library versions, wall time and the command."""
    env = report.get("environment", {})
    seeds = report.get("seeds", [report.get("seed")])
    parts = [f"profile {report.get('profile', '?')}",
             f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}",
             f"{env.get('cpu_count', '?')} CPU cores, GPUs: {env.get('gpus', '?')}",
             f"TensorFlow {env.get('tensorflow', '?')}, Keras {env.get('keras', '?')}",
             f"wall time {fmt(float(report.get('wall_seconds', 0)), 'seconds')} s"]
    return "; ".join(parts)


def load_report(path: Path) -> dict[str, Any]:
    """Read one report, with an error naming the file if it is missing or not JSON."""
    if not path.is_file():
        raise ReportError(f"no benchmark report {path}: run the benchmark that writes it (see benchmarks/)")
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ReportError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(report, dict):
        raise ReportError(f"{path} does not hold a JSON object")
    return report


def find_reports_dir(srcdir: Path, configured: str | None = None) -> Path:
    """``benchmarks/reports`` in the first parent of ``srcdir`` that has it (or ``configured``)."""
    if configured:
        path = (srcdir / configured).resolve()
        if not path.is_dir():
            raise ReportError(f"benchmark_reports_dir {configured!r} is not a folder ({path})")
        return path
    for parent in [srcdir, *srcdir.resolve().parents]:
        if (parent / "benchmarks" / "reports").is_dir():
            return parent / "benchmarks" / "reports"
    raise ReportError(f"no benchmarks/reports folder above {srcdir}; set benchmark_reports_dir")


def _table(header: list[str], rows: list[list[str]]) -> nodes.table:
    table = nodes.table(classes=["benchmark-table"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    body = nodes.tbody()
    group += body
    for section, lines in ((head, [header]), (body, rows)):
        for line in lines:
            row = nodes.row()
            for cell in line:
                entry = nodes.entry()
                entry += nodes.paragraph(text=cell)
                row += entry
            section += row
    return table


class BenchmarkReport(SphinxDirective):
    """``{benchmark-report} <name>``: the headline, reference and target tables of one report."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        try:
            folder = find_reports_dir(Path(self.env.srcdir), self.config.benchmark_reports_dir)
            path = folder / f"{name}.json"
            self.env.note_dependency(str(path))
            report = load_report(path)
            tables = [headline_rows(report), reference_rows(report), target_rows(report)]
        except ReportError as error:
            raise self.error(f"benchmark-report {name}: {error}") from error
        out: list[nodes.Node] = [nodes.paragraph(text=provenance(report))]
        command = report.get("command")
        if command:
            para = nodes.paragraph(text="Reproduce: ")
            para += nodes.literal(text=f"python {command}")
            out.append(para)
        for caption, table in zip(("Headline metrics", "Published results, same test split",
                                   "Targets recorded by the benchmark"), tables, strict=True):
            if table is not None:
                out.append(nodes.rubric(text=caption))
                out.append(_table(*table))
        return out


def setup(app):
    app.add_config_value("benchmark_reports_dir", None, "env")
    app.add_directive("benchmark-report", BenchmarkReport)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
