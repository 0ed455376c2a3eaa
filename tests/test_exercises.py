"""The exercise checker (helpers.exercises), the notebooks' exercise sections and the student
edition. The checks themselves are tested against their reference answers and typical wrong
answers when the notebooks run in `smoke` with DL4H_EXERCISES=strict (make test)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def positive(answer):
    exercises.require(
        isinstance(answer, int | float), f"the answer should be a number, not {answer!r}"
    )
    exercises.require(
        answer > 0, f"the answer is {answer}, but the exercise asks for a positive number"
    )
    return "a positive number"


@pytest.fixture
def learner(monkeypatch):
    monkeypatch.delenv(exercises.MODE_ENV, raising=False)


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setenv(exercises.MODE_ENV, "strict")


# --------------------------------------------------------------------------- the checker
def test_pass_fail_and_not_answered_are_told_apart(learner):
    ok = exercises.check("1.1", positive, 3)
    assert ok.passed and ok.status == "pass" and "positive number" in ok.message
    bad = exercises.check("1.1", positive, -2)
    assert not bad.passed and bad.status == "fail"
    assert "the answer is -2, but the exercise asks for a positive number" in str(bad)
    assert "not yet" in bad._repr_markdown_()
    empty = exercises.check("1.1", positive, None)
    assert empty.status == "not answered" and exercises.NOT_ANSWERED in str(empty)
    assert "✍" in empty._repr_markdown_()


def test_an_answer_the_check_cannot_read_is_a_failure_with_the_reason(learner):
    result = exercises.check("1.2", lambda answer: answer["threshold"] > 0, [0.5])
    assert result.status == "fail"
    assert "could not read your answer (TypeError" in result.message


def test_learner_mode_never_evaluates_the_wrong_answers(learner):
    def explode():
        raise RuntimeError("must not run for a learner")

    assert exercises.check("1.3", positive, 1, wrong={"boom": (explode, "x")}).passed


def test_strict_mode_accepts_a_check_that_catches_its_typical_mistakes(strict):
    result = exercises.check(
        "1.4", positive, 2, wrong={"negative": (lambda: -1, "positive number")}
    )
    assert result.passed


def test_strict_mode_rejects_a_reference_answer_that_fails(strict):
    with pytest.raises(exercises.ExerciseCheckError, match="reference answer does not pass"):
        exercises.check("1.5", positive, -1, wrong={"x": (lambda: -1, "positive")})
    with pytest.raises(exercises.ExerciseCheckError, match="reference answer does not pass"):
        exercises.check("1.5", positive, None, wrong={"x": (lambda: -1, "positive")})


def test_strict_mode_rejects_a_check_that_lets_a_wrong_answer_pass(strict):
    with pytest.raises(exercises.ExerciseCheckError, match="'still positive' should fail"):
        exercises.check("1.6", positive, 2, wrong={"still positive": (lambda: 5, "positive")})


def test_strict_mode_rejects_a_failure_with_an_unhelpful_message(strict):
    with pytest.raises(exercises.ExerciseCheckError, match="containing 'validation split'"):
        exercises.check("1.7", positive, 2, wrong={"negative": (lambda: -1, "validation split")})


def test_strict_mode_requires_at_least_one_wrong_answer(strict):
    with pytest.raises(exercises.ExerciseCheckError, match="no typical wrong answer"):
        exercises.check("1.8", positive, 2)


def test_the_small_check_helpers_explain_what_is_wrong():
    with pytest.raises(exercises.Wrong, match=r"lacks the key\(s\) \['ece'\]"):
        exercises.keys({"temperature": 1.0}, ["temperature", "ece"])
    with pytest.raises(exercises.Wrong, match="should be a dict"):
        exercises.keys([1, 2], ["a"])
    with pytest.raises(exercises.Wrong, match="the PPV should be a number, not str"):
        exercises.as_number("high", "the PPV")
    with pytest.raises(exercises.Wrong, match="not finite"):
        exercises.as_number(float("nan"), "the AUC")
    with pytest.raises(exercises.Wrong, match="the AUC is 0.7, but it should be 0.9"):
        exercises.close(0.7, 0.9, tol=0.01, what="the AUC")
    assert exercises.close(0.905, 0.9, tol=0.01, what="the AUC") == pytest.approx(0.905)


# --------------------------------------------------------------------------- student edition
def _toy_notebook() -> dict:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("**Exercise 9.1 · Toy.** Bind `answer_1`."),
        nbformat.v4.new_code_cell(
            "# Solution 1\nx = 40\nanswer_1 = x + 2",
            metadata={"tags": ["solution", "hide-cell"]},
            outputs=[nbformat.v4.new_output("stream", text="42\n")],
        ),
        nbformat.v4.new_code_cell(
            "display(exercises.check('9.1', check_1, answer_1))", metadata={"tags": ["check"]}
        ),
        nbformat.v4.new_markdown_cell(
            ":::{admonition} Model answer\n:class: dropdown\nBecause.\n:::",
            metadata={"tags": ["model-answer"]},
        ),
    ]
    return json.loads(nbformat.writes(nb))


def test_the_student_edition_replaces_solutions_and_model_answers_and_keeps_checks():
    teacher = _toy_notebook()
    before = json.dumps(teacher)
    student = exercises.student_notebook(teacher)
    assert json.dumps(teacher) == before  # the teacher's edition is not modified
    solution, check_cell, model = student["cells"][1:]
    assert solution["source"].endswith("answer_1 = None\n")
    assert "x = 40" not in solution["source"] and solution["source"].startswith("# Exercise 1")
    assert solution["outputs"] == [] and "hide-cell" not in solution["metadata"]["tags"]
    assert "".join(check_cell["source"]) == "display(exercises.check('9.1', check_1, answer_1))"
    assert (
        "Because" not in "".join(model["source"])
        and "model-answer" not in model["metadata"]["tags"]
    )


def test_placeholders_bind_every_answer_name_and_refuse_a_cell_without_one():
    assert exercises.answer_names("a = 1\nanswer_2 = a\nanswer_2b: int = 3\nanswer_2 += 1") == [
        "answer_2",
        "answer_2b",
    ]
    assert exercises.placeholder("answer_3 = compute()").endswith("answer_3 = None\n")
    assert exercises.answer_names("!pip install x\n%time y = 1\nanswer_4 = 2") == ["answer_4"]
    with pytest.raises(ValueError, match="must bind a name starting with 'answer'"):
        exercises.placeholder("print('no answer here')")


def test_make_student_writes_every_notebook_and_a_zip(tmp_path):
    out, archive = tmp_path / "student", tmp_path / "edition.zip"
    done = subprocess.run(
        [sys.executable, "-m", "helpers.exercises", "student", str(out), "--zip", str(archive)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    import zipfile

    with zipfile.ZipFile(archive) as packed:
        assert len(packed.namelist()) == len(NOTEBOOKS)
    for path in out.glob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        assert '"solution"' not in text and '"model-answer"' not in text


# --------------------------------------------------------------------------- the chapters
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_has_at_least_three_exercises_each_checked_or_with_a_model_answer(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    texts = [
        (i, "".join(c["source"]))
        for i, c in enumerate(cells)
        if c["cell_type"] == "markdown" and "".join(c["source"]).lstrip().startswith("**Exercise")
    ]
    assert len(texts) >= 3, f"{path.name}: {len(texts)} exercises"
    bounds = [i for i, _ in texts] + [len(cells)]
    checked = 0
    for (start, text), end in zip(texts, bounds[1:], strict=True):
        label = re.match(r"\*\*Exercise (\d+\.\d+)", text.lstrip())
        assert label, f"{path.name}: exercise heading without a label: {text[:60]!r}"
        block = cells[start + 1 : end]
        tags = [c.get("metadata", {}).get("tags", []) for c in block]
        solutions = [c for c, t in zip(block, tags, strict=True) if "solution" in t]
        models = [c for c, t in zip(block, tags, strict=True) if "model-answer" in t]
        assert solutions or models, f"{path.name} exercise {label[1]}: no check and no model answer"
        for cell in solutions:
            follower = block[block.index(cell) + 1]
            source = "".join(follower["source"])
            assert "check" in follower.get("metadata", {}).get("tags", []), (
                f"{path.name} exercise {label[1]}: the answer cell is not followed by its check"
            )
            assert f'exercises.check("{label[1]}"' in source and "wrong=" in source
            assert exercises.answer_names("".join(cell["source"]))
            checked += 1
        for cell in models:
            assert "".join(cell["source"]).startswith(exercises.MODEL_ANSWER_PREFIX)
    assert checked >= 3, f"{path.name}: only {checked} exercises have an automatic check"


def test_strict_mode_is_what_make_test_uses():
    makefile = (ROOT / "Makefile").read_text()
    assert f"{exercises.MODE_ENV}=strict" in makefile
