"""Render the benchmark JSON reports in the book, at build time.

The results page must never hold a typed number: its directive reads the report that a
benchmark script wrote (``benchmarks/reports/<name>.json``) and renders it::

    ```{benchmark-report} cnn_pneumoniamnist_28_cpu
    ```

Every report follows one format (``benchmarks/report.py`` documents it), so this module has
no per-benchmark cases and no list of fields: it shows the provenance (with the last re-run
of ``make bench-check`` and whether it matched) and the command to reproduce the report, the
model card, the headline metrics (mean ± sample sd, range and every seed, with the labels and
units the report gives; the runs that failed by the report's own criterion, when it states
one, in ``details["failures"]``), a figure of every seed and the mean
next to the baselines and published references, the baselines, the published references
with their citation and protocol, and the targets with their verdicts. The reports are found
in ``benchmarks/reports`` in the first parent of the book's source folder that has one, or
in the folder named by the Sphinx option ``benchmark_reports_dir``. A report that is missing,
unreadable or not in the format stops the build with an error naming it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def _report_format() -> ModuleType:
    """``benchmarks/report_format.py`` of the repository this book lives in (standard library
    only; ``benchmarks/report.py`` imports TensorFlow through ``helpers.config``, so the book
    does not import it).
    Found above this file, also when the book is copied into ``build/``."""
    for parent in Path(__file__).resolve().parents:
        path = parent / "benchmarks" / "report_format.py"
        if path.is_file():
            loaded = sys.modules.get("benchmarks.report_format")
            if loaded is not None and Path(loaded.__file__).resolve() == path.resolve():
                return loaded
            spec = importlib.util.spec_from_file_location("_dl4h_report_format", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ImportError(f"no benchmarks/report_format.py above {Path(__file__).parent}")


REPORT_KEYS = _report_format().REPORT_KEYS
CARD_FIELDS = (
    ("intended_use", "Intended use"),
    ("data", "Data"),
    ("not_for", "Must not be used for"),
    ("failure_modes", "Known failure modes"),
)
FIGURE_DIR = Path("_generated") / "benchmarks"


class ReportError(Exception):
    """A benchmark report that cannot be rendered; the message names the file and the problem."""


def check_format(report: dict[str, Any]) -> None:
    """Raise :class:`ReportError` when ``report`` lacks a key of the common format."""
    missing = [key for key in REPORT_KEYS if key not in report]
    if missing:
        raise ReportError(f"not in the common report format: missing {', '.join(missing)}")
    for name in report["metrics"]:
        if name not in report["headline"] or name not in report["spread"]:
            raise ReportError(f"metric {name!r} has no headline or spread")


def fmt(value: Any, unit: str = "") -> str:
    """One number: seconds, counts and whole numbers without decimals, scores with three."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (
        isinstance(value, float) and unit not in ("", "feature distance")
    ):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _with_unit(text: str, unit: str) -> str:
    return text + (f" ({'seconds' if unit == 's' else unit})" if unit else "")


def label(report: dict[str, Any], metric: str) -> str:
    meta = report["metrics"].get(metric, {"label": metric, "unit": ""})
    return _with_unit(meta["label"], meta.get("unit", ""))


def column(report: dict[str, Any], metric: str) -> str:
    """A method table's header: the metric's ``column`` where the report gives one (its label
    names this benchmark's model, and the table's other rows are other models), else its
    label."""
    meta = report["metrics"].get(metric, {})
    if "column" not in meta:
        return label(report, metric)
    return _with_unit(meta["column"], meta.get("unit", ""))


def unit(report: dict[str, Any], metric: str) -> str:
    return report["metrics"].get(metric, {}).get("unit", "")


def headline_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: metric, mean ± sd, range and every seed's value."""
    check_format(report)
    runs = report["per_seed"]
    header = ["metric", "mean ± sd", "range"] + [
        f"seed {run.get('seed', i)}" for i, run in enumerate(runs)
    ]
    rows = []
    for metric in report["metrics"]:
        u = unit(report, metric)
        stats = report["spread"][metric]
        sd = f" ± {fmt(stats['sd'], u)}" if stats.get("sd") is not None else " (one run)"
        rows.append(
            [
                label(report, metric),
                fmt(report["headline"][metric], u) + sd,
                f"{fmt(stats['min'], u)} – {fmt(stats['max'], u)}",
            ]
            + [fmt(run.get(metric), u) for run in runs]
        )
    return header, rows


def _method_table(
    report: dict[str, Any], methods: dict[str, dict[str, Any]], ours: str | None
) -> tuple[list[str], list[list[str]]] | None:
    metrics = [m for m in report["metrics"] if any(m in row for row in methods.values())]
    if not metrics:
        return None
    header = ["method", *[column(report, m) for m in metrics]]
    rows = [
        [name, *[fmt(values.get(m), unit(report, m)) for m in metrics]]
        for name, values in methods.items()
    ]
    if ours:
        rows.append([ours, *[fmt(report["headline"][m], unit(report, m)) for m in metrics]])
    return header, rows


def baseline_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Simpler methods measured under the same protocol, beside this benchmark's mean."""
    method = (report.get("details") or {}).get("method") or report["benchmark"]
    return (
        _method_table(report, report["baselines"], f"{method} (this benchmark, mean)")
        if report["baselines"]
        else None
    )


def reference_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Published results stored in the report, with this course's mean last."""
    reference = report["reference"]
    if not reference or not reference.get("rows"):
        return None
    return _method_table(
        report,
        reference["rows"],
        f"this course ({report['profile']} profile, mean of {len(report['seeds'])} "
        f"seed{'s' if len(report['seeds']) > 1 else ''})",
    )


def target_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Each target, the mean it is judged on and the verdict. Where the usual three decimals
    would show a mean equal to a target it misses (or exceeds), both get five."""
    if not report["targets"]:
        return None
    rows = []
    for goal in report["targets"]:
        u = unit(report, goal["metric"])
        value, mean = fmt(goal["value"], u), fmt(goal["mean"], u)
        if value == mean and goal["value"] != goal["mean"] and not u:
            value, mean = f"{goal['value']:.5f}", f"{goal['mean']:.5f}"
        rows.append(
            [
                label(report, goal["metric"]),
                f"{goal['op']} {value}",
                mean,
                "met" if goal["met"] else "not met",
            ]
        )
    return ["metric", "target (on the mean)", "mean", "verdict"], rows


def provenance(report: dict[str, Any]) -> str:
    """One line: profile, seeds, machine, versions, wall time, date and reproductions."""
    prov = report["provenance"]
    machine, versions = prov.get("machine", {}), prov.get("versions", {})
    seeds = report["seeds"]
    reproduced = prov.get("reproduced") or []
    parts = [
        f"profile {report['profile']}",
        f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}",
        f"{machine.get('cpu_count', '?')} CPU cores, GPUs: {machine.get('gpus', '?')}",
        ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"wall time {fmt(float(prov.get('seconds', 0)), 's')} s",
        f"written {prov.get('date', '?')}",
        reproduction(reproduced[-1]) if reproduced else "not yet reproduced by a re-run",
    ]
    return "; ".join(parts)


def reproduction(entry: dict[str, Any]) -> str:
    """The last re-run of the report's command (``make bench-check``): when, where, how long
    it took, and whether its headline mean came back within the committed mean ± tolerance."""
    when = str(entry.get("date", "?"))[:10]
    cores = (entry.get("machine") or {}).get("cpu_count", "?")
    text = f"last re-run {when} on {cores} CPU cores"
    if entry.get("seconds") is not None:
        text += f" in {fmt(float(entry['seconds']), 's')} s"
    comparisons = entry.get("comparisons") or []
    if comparisons:
        text += ": " + ", ".join(
            f"{row['metric']} {row['new_mean']:.3f} vs {row['committed_mean']:.3f} "
            f"± {row['tolerance']:.3f}"
            for row in comparisons
        )
    within = entry.get("within")
    verdict = (
        entry.get("verdict", "?") if within is None else ("matched" if within else "did NOT match")
    )
    return f"{text} ({verdict})"


def failures(report: dict[str, Any]) -> str | None:
    """``details["failures"]``: how many runs failed by the report's stated criterion."""
    fail = (report.get("details") or {}).get("failures")
    if not fail:
        return None
    n_failed, n_runs = fail.get("n_failed", 0), fail.get("n_runs", len(report["seeds"]))
    text = f"Failed runs: {n_failed} of {n_runs}"
    if fail.get("failed_seeds"):
        reasons = fail.get("reasons") or {}
        text += (
            " ("
            + "; ".join(
                f"seed {seed}: {', '.join(reasons.get(str(seed), [])) or 'failed'}"
                for seed in fail["failed_seeds"]
            )
            + ")"
        )
    text += f". Criterion: {fail.get('criterion', 'not stated')}."
    if "n_below_target" in fail:
        text += f" Runs below the target on their own: {fail['n_below_target']} of {n_runs}"
        text += f"; target: {fail['target']}." if fail.get("target") else "."
    return text


def figure(report: dict[str, Any], path: Path) -> Path | None:
    """Every seed (dots) and the mean (bar) of each score metric, with baselines (squares) and
    published references (diamonds) on the same axis. ``None`` when no metric is a score."""
    scores = [m for m in report["metrics"] if unit(report, m) == ""]
    if not scores:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.75 * len(scores) + 1.6))
    others = {
        **{f"{k} (baseline)": v for k, v in report["baselines"].items()},
        **(report["reference"] or {}).get("rows", {}),
    }
    markers = dict(zip(others, ["s", "D", "^", "v", "P", "X", "<", ">"] * 3, strict=False))
    for row, metric in enumerate(scores):
        y = len(scores) - 1 - row
        values = [run[metric] for run in report["per_seed"]]
        ax.scatter(
            values,
            [y] * len(values),
            color="C0",
            s=30,
            zorder=3,
            label="one seed" if row == 0 else None,
        )
        ax.plot(
            [report["headline"][metric]] * 2,
            [y - 0.3, y + 0.3],
            color="C0",
            lw=3,
            label="mean" if row == 0 else None,
        )
        for index, (name, methods) in enumerate(others.items()):
            if metric in methods and methods[metric] is not None:
                ax.scatter(
                    [methods[metric]],
                    [y],
                    marker=markers[name],
                    color=f"C{index + 1}",
                    s=45,
                    zorder=2,
                    label=name if name not in ax.get_legend_handles_labels()[1] else None,
                )
    ax.set_yticks(
        range(len(scores)), [report["metrics"][m]["label"] for m in reversed(scores)], fontsize=8
    )
    ax.set_xlabel("score (AUC, accuracy, ratio: see each row)")
    ax.set_title(
        f"{report['benchmark']} on {report['dataset']}: every seed, the mean, baselines "
        "and published results",
        fontsize=9,
    )
    ax.grid(axis="x", alpha=0.4)
    ax.legend(
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.25 if len(scores) > 2 else -0.45),
        ncol=3,
        frameon=False,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def load_report(path: Path) -> dict[str, Any]:
    """Read one report, with an error naming the file if it is missing, not JSON or not in format."""
    if not path.is_file():
        raise ReportError(
            f"no benchmark report {path}: run the benchmark that writes it (see benchmarks/)"
        )
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ReportError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(report, dict):
        raise ReportError(f"{path} does not hold a JSON object")
    try:
        check_format(report)
    except ReportError as error:
        raise ReportError(f"{path}: {error}") from error
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


def table(
    header: list[str],
    rows: list[list[str]],
    widths: list[int] | None = None,
    classes: str = "benchmark-table",
) -> nodes.table:
    """A docutils table (also used by the claims-ledger extension)."""
    out = nodes.table(classes=[classes])
    group = nodes.tgroup(cols=len(header))
    out += group
    for width in widths or [1] * len(header):
        group += nodes.colspec(colwidth=width)
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
    return out


def model_card(report: dict[str, Any]) -> nodes.definition_list:
    """The model card as a definition list (failure modes as a bullet list)."""
    card = nodes.definition_list(classes=["model-card"])
    for key, title in CARD_FIELDS:
        value = report["model_card"].get(key)
        if not value:
            continue
        item = nodes.definition_list_item()
        item += nodes.term(text=title)
        definition = nodes.definition()
        if isinstance(value, list):
            bullets = nodes.bullet_list()
            for text in value:
                bullets += nodes.list_item("", nodes.paragraph(text=str(text)))
            definition += bullets
        else:
            definition += nodes.paragraph(text=str(value))
        item += definition
        card += item
    return card


class BenchmarkReport(SphinxDirective):
    """``{benchmark-report} <name>``: everything one report holds, rendered generically."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        srcdir = Path(self.env.srcdir)
        try:
            folder = find_reports_dir(srcdir, self.config.benchmark_reports_dir)
            path = folder / f"{name}.json"
            self.env.note_dependency(str(path))
            report = load_report(path)
            tables = [
                ("Headline metrics", headline_rows(report)),
                ("Baselines, same protocol", baseline_rows(report)),
                ("Published results", reference_rows(report)),
                ("Targets", target_rows(report)),
            ]
            image = figure(report, srcdir / FIGURE_DIR / f"{name}.png")
        except ReportError as error:
            raise self.error(f"benchmark-report {name}: {error}") from error
        out: list[nodes.Node] = [nodes.paragraph(text=provenance(report))]
        para = nodes.paragraph(text="Reproduce: ")
        para += nodes.literal(text=f"python {report['provenance'].get('command', '?')}")
        out.append(para)
        out.append(nodes.rubric(text="Model card"))
        out.append(model_card(report))
        for caption, rows_of in tables:
            if rows_of is None:
                continue
            out.append(nodes.rubric(text=caption))
            if caption == "Published results":
                out.append(
                    nodes.paragraph(
                        text=f"Source: {report['reference']['citation']} "
                        f"Protocol: {report['reference']['protocol']}"
                    )
                )
            out.append(table(*rows_of))
            if caption == "Headline metrics" and failures(report):
                out.append(nodes.paragraph(text=failures(report)))
            if caption == "Headline metrics" and image is not None:
                docdir = Path(self.env.doc2path(self.env.docname)).parent
                uri = Path("/") / image.relative_to(srcdir)  # absolute: from the source root
                out.append(
                    nodes.image(
                        uri=str(uri) if docdir != srcdir else str(image.relative_to(srcdir)),
                        alt=f"{report['benchmark']}: every seed and the mean",
                    )
                )
        reference = report["reference"]
        if reference and not reference.get("rows"):
            out.append(nodes.rubric(text="Published results"))
            out.append(nodes.paragraph(text=reference.get("protocol", "")))
        return out


def setup(app):
    app.add_config_value("benchmark_reports_dir", None, "env")
    app.add_directive("benchmark-report", BenchmarkReport)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
