"""Exercises a learner can check, and the student edition of the notebooks.

Each exercise in a chapter has three cells, in this order:

1. the exercise text (Markdown);
2. an **answer cell** (code, tagged ``solution`` and ``hide-cell``): the reference solution,
   which ends by binding the answer to a name such as ``answer_1``. The student edition
   (:func:`student_notebook`) replaces it with ``answer_1 = None`` and a comment;
3. a **check cell** (code, tagged ``check``), next to the exercise it checks::

       def check_1(answer):
           exercises.require(0 < answer["threshold"] < 1, "a threshold on probabilities ...")
           ...
           return "the threshold came from the validation split"   # optional pass note

       display(exercises.check("4.1", check_1, answer_1, wrong={
           "threshold chosen on the test split": (lambda: {...}, "test split"),
       }))

   A check tests *properties* of the answer (types, shapes, ranges, a metric recomputed
   from the answer, which split it came from), so a correct answer computed another way
   passes too. It says what is wrong in the exercise's terms, never just "wrong".
   ``wrong`` lists typical wrong answers and a fragment of the message each must produce.

Open-ended exercises (explain, discuss), and the open-ended part of a computed one, have a
**model answer**: a Markdown cell tagged ``model-answer``, a collapsed admonition titled
"Model answer" (``:::{admonition} Model answer`` with ``:class: dropdown``).

The checks check themselves. With ``DL4H_EXERCISES=strict`` (``make test`` sets it) a
check that rejects the reference answer, finds no answer, or lets one of its ``wrong``
answers pass raises :class:`ExerciseCheckError`, so running the teacher's edition in the
``smoke`` profile tests every check against its reference and its typical mistakes.

Why not otter-grader or nbgrader? Both fit a course with a grading server or an
instructor-run ``assign`` step; this course is read in three ways (JupyterLab, Colab, the
built book) with no server and no generated copies to keep in sync, and its checks need the
chapter's own data in memory (the validation split, the model's scores). A small checker
that runs in the notebook, plus :func:`student_notebook`, covers that; see the README.

Run ``python -m helpers.exercises student OUT`` (``make student``) to write the student
edition of every notebook into ``OUT``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODE_ENV = "DL4H_EXERCISES"
SOLUTION_TAG = "solution"
CHECK_TAG = "check"
MODEL_ANSWER_TAG = "model-answer"
MODEL_ANSWER_PREFIX = ":::{admonition} Model answer"
NOT_ANSWERED = "not answered yet"


class Wrong(Exception):
    """Raised by a check (through :func:`require`) when the answer is not right; the
    message says what is wrong in the exercise's terms."""


class ExerciseCheckError(AssertionError):
    """In strict mode: a check rejected its reference answer or accepted a wrong one."""


def require(condition: Any, message: str) -> None:
    """Inside a check: raise :class:`Wrong` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise Wrong(message)


def close(value: Any, expected: float, *, tol: float, what: str) -> float:
    """Inside a check: ``value`` as a float, which must be within ``tol`` of ``expected``.

    The message names ``what`` and both numbers, e.g. "the test PPV is 0.41, but Bayes' rule
    with these sensitivity and specificity gives 0.57".
    """
    number = as_number(value, what)
    require(
        abs(number - expected) <= tol,
        f"{what} is {number:.4g}, but it should be {expected:.4g} (within {tol:g})",
    )
    return number


def as_number(value: Any, what: str) -> float:
    """Inside a check: ``value`` as a finite float, or :class:`Wrong` saying what it was."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Wrong(f"{what} should be a number, not {type(value).__name__} {value!r}") from None
    require(number == number and abs(number) != float("inf"), f"{what} is {number}, not finite")
    return number


def keys(answer: Any, required: Iterable[str]) -> Mapping[str, Any]:
    """Inside a check: ``answer`` must be a mapping with at least the ``required`` keys."""
    names = list(required)
    require(
        isinstance(answer, Mapping),
        f"the answer should be a dict with the keys {names}, not {type(answer).__name__}",
    )
    missing = [name for name in names if name not in answer]
    require(not missing, f"the answer lacks the key(s) {missing}; it has {list(answer)}")
    return answer


def mode() -> str:
    """``"strict"`` when ``DL4H_EXERCISES=strict`` (the tests), else ``"learner"``."""
    value = os.environ.get(MODE_ENV, "").strip().lower()
    return "strict" if value == "strict" else "learner"


@dataclass(frozen=True)
class Result:
    """What a check found: ``status`` is ``"pass"``, ``"fail"`` or ``"not answered"``."""

    exercise: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def __str__(self) -> str:
        label = {"pass": "pass", "fail": "not yet", "not answered": NOT_ANSWERED}[self.status]
        text = f"Exercise {self.exercise}: {label}"
        return f"{text}. {self.message}" if self.message else text

    def _repr_markdown_(self) -> str:
        mark = {"pass": "✔", "fail": "✘", "not answered": "✍"}[self.status]  # in DejaVu Sans
        label = {"pass": "pass", "fail": "not yet", "not answered": NOT_ANSWERED}[self.status]
        tail = f" {self.message}" if self.message else ""
        return f"{mark} **Exercise {self.exercise}: {label}.**{tail}"


def _run(exercise: str, check_fn: Callable[[Any], Any], answer: Any) -> Result:
    if answer is None or answer is Ellipsis:
        return Result(
            exercise,
            "not answered",
            "Write your answer in the cell above (replace the None), run it, then run this "
            "cell again.",
        )
    try:
        note = check_fn(answer)
    except Wrong as wrong:
        return Result(exercise, "fail", str(wrong))
    except Exception as error:  # the answer had a shape the check could not read
        return Result(
            exercise,
            "fail",
            f"the check could not read your answer ({type(error).__name__}: {error}); "
            "compare its type and shape with what the exercise asks for.",
        )
    return Result(exercise, "pass", str(note) if note else "")


def check(
    exercise: str,
    check_fn: Callable[[Any], Any],
    answer: Any,
    *,
    wrong: Mapping[str, tuple[Callable[[], Any], str]] | None = None,
) -> Result:
    """Run ``check_fn`` on ``answer`` and return a :class:`Result` that renders itself.

    ``check_fn`` raises :class:`Wrong` (usually through :func:`require`) with a message in
    the exercise's terms, or returns an optional note shown with the pass. An answer of
    ``None`` (the student edition's placeholder) is "not answered yet", never an error.

    ``wrong`` maps a typical mistake to ``(make_answer, fragment)``: in strict mode
    (:func:`mode`) each ``make_answer()`` is checked and must fail with a message that
    contains ``fragment``; the reference answer must pass. Otherwise
    :class:`ExerciseCheckError` is raised. In learner mode ``wrong`` is not evaluated.
    """
    result = _run(exercise, check_fn, answer)
    if mode() != "strict":
        return result
    if not result.passed:
        raise ExerciseCheckError(f"the reference answer does not pass its check: {result}")
    if not wrong:
        raise ExerciseCheckError(
            f"exercise {exercise}: its check lists no typical wrong answer to be tested against"
        )
    for mistake, (make_answer, fragment) in wrong.items():
        outcome = _run(exercise, check_fn, make_answer())
        if outcome.passed or fragment.lower() not in outcome.message.lower():
            raise ExerciseCheckError(
                f"exercise {exercise}: the wrong answer '{mistake}' should fail with a message "
                f"containing {fragment!r}, but the check said: {outcome}"
            )
    return result


# --------------------------------------------------------------------------- student edition
def _tags(cell: Mapping[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def answer_names(source: str) -> list[str]:
    """The ``answer...`` names an answer cell binds at its top level, in order.

    IPython lines (``!pip ...``, ``%time ...``) are read as comments, since they bind nothing.
    """
    python = "\n".join(
        "#" + line if line.lstrip().startswith(("!", "%")) else line for line in source.splitlines()
    )
    tree = ast.parse(python)
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id.startswith("answer"):
                if target.id not in names:
                    names.append(target.id)
    return names


def placeholder(source: str) -> str:
    """The student edition's replacement for an answer cell: its answer names set to None."""
    names = answer_names(source)
    if not names:
        raise ValueError("an answer cell must bind a name starting with 'answer' (e.g. answer_1)")
    first = source.lstrip().splitlines()[0] if source.strip() else ""
    title = first if first.startswith("#") else "# Your answer"
    title = re.sub(r"(?i)\bsolution\b", "Exercise", title)
    lines = [
        title,
        "# Write your code here. Bind the answer to the name(s) below, run this cell, then",
        "# run the check cell that follows.",
    ]
    return "\n".join([*lines, *(f"{name} = None" for name in names)]) + "\n"


def student_notebook(notebook: Mapping[str, Any]) -> dict[str, Any]:
    """The student edition of one notebook (a JSON dict, as ``nbformat`` reads it).

    Answer cells (tag ``solution``) become placeholders that bind their answer names to
    ``None``; model answers (tag ``model-answer``) become a prompt to write one; check cells
    and everything else stay. Outputs are cleared. The input is not modified.
    """
    student = copy.deepcopy(dict(notebook))
    cells = []
    for cell in student["cells"]:
        tags = _tags(cell)
        if SOLUTION_TAG in tags:
            cell["source"] = placeholder("".join(cell["source"]))
            cell["metadata"]["tags"] = [t for t in tags if t not in (SOLUTION_TAG, "hide-cell")]
            cell["metadata"]["tags"].append("answer")
        elif MODEL_ANSWER_TAG in tags:
            cell["source"] = "*Your answer (in your own words):*\n"
            cell["metadata"]["tags"] = [t for t in tags if t != MODEL_ANSWER_TAG] + ["answer"]
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    student["cells"] = cells
    return student


def exercise_cells(notebook: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Pairs of (answer cell, check cell) and model answers, for the static tests."""
    found = []
    cells = list(notebook["cells"])
    for index, cell in enumerate(cells):
        tags = _tags(cell)
        if SOLUTION_TAG in tags:
            following = cells[index + 1] if index + 1 < len(cells) else None
            found.append(
                {
                    "kind": "check",
                    "index": index,
                    "answer": "".join(cell["source"]),
                    "check": "".join(following["source"])
                    if following is not None and CHECK_TAG in _tags(following)
                    else None,
                }
            )
        elif MODEL_ANSWER_TAG in tags:
            found.append({"kind": "model answer", "index": index, "text": "".join(cell["source"])})
    return found


def write_student_edition(source: Path, out: Path) -> list[Path]:
    """Write the student edition of every notebook in ``source`` into ``out``."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        target = out / path.name
        target.write_text(
            json.dumps(student_notebook(notebook), indent=1, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write the student edition of the notebooks")
    student.add_argument("out", type=Path, help="folder for the student notebooks")
    student.add_argument("--source", type=Path, default=Path(__file__).parents[1] / "notebooks")
    student.add_argument("--zip", type=Path, help="also pack them into this .zip file")
    args = parser.parse_args(argv)
    written = write_student_edition(args.source, args.out)
    if args.zip:
        import zipfile

        args.zip.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(args.zip, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in written:
                archive.write(path, f"dl4h-student-edition/{path.name}")
    print(f"student edition: {len(written)} notebooks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
