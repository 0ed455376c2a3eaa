"""helpers.claims: a lesson that the run contradicts is reported, never hidden."""

from __future__ import annotations

import json

import pytest

from helpers import claims


@pytest.fixture()
def ledger_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.LEDGER_ENV, str(tmp_path))
    return tmp_path


def test_a_claim_that_fails_shows_the_honest_sentence_and_is_recorded(ledger_dir):
    ledger = claims.Ledger("05", "cpu")
    held = ledger.check(
        "gates_help",
        0.3 > 0.5,
        true="Gates kept the gradient.",
        false="Here the gates did not keep more gradient.",
        evidence="0.3 vs 0.5",
    )
    assert not held and held.sentence == "Here the gates did not keep more gradient."
    assert "0.3 vs 0.5" in held._repr_markdown_()
    rows = claims.read_ledgers("cpu")
    assert [(r["name"], r["holds"], r["status"]) for r in rows] == [
        ("gates_help", False, claims.FAILS)
    ]


def test_a_claim_that_holds_is_recorded_as_holding(ledger_dir):
    ledger = claims.Ledger("04", "gpu")
    assert ledger.check("ok", True, true="yes", false="no").sentence == "yes"
    saved = json.loads((ledger_dir / "gpu" / "04.json").read_text())
    assert saved["claims"][0]["status"] == claims.HOLDS


def test_smoke_claims_are_marked_not_evaluated(ledger_dir):
    claim = claims.Ledger("01", "smoke").check("x", False, true="a", false="b")
    assert claim.status == claims.NOT_EVALUATED and claim.sentence == "b"


def test_a_rerun_replaces_the_previous_run_and_a_recheck_keeps_the_last_result(ledger_dir):
    claims.Ledger("02", "cpu").check("old", True, true="a", false="b")
    ledger = claims.Ledger("02", "cpu")
    ledger.check("new", True, true="a", false="b")
    ledger.check("new", False, true="a", false="b")
    rows = claims.read_ledgers("cpu")
    assert [(r["name"], r["holds"]) for r in rows] == [("new", False)]


@pytest.mark.parametrize("holds", [None, float("nan")])
def test_an_undefined_condition_is_refused(ledger_dir, holds):
    with pytest.raises(ValueError, match="holds is"):
        claims.Ledger("03", "cpu").check("x", holds, true="a", false="b")


def test_both_sentences_are_required(ledger_dir):
    with pytest.raises(ValueError, match="both"):
        claims.Ledger("03", "cpu").check("x", True, true="a", false=" ")


def test_a_malformed_ledger_is_named(ledger_dir):
    (ledger_dir / "cpu").mkdir()
    (ledger_dir / "cpu" / "09.json").write_text("{not json")
    with pytest.raises(ValueError, match="09.json"):
        claims.read_ledgers("cpu")


def test_the_book_directive_reads_failing_claims_as_failing(ledger_dir, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
    import claims_ledger

    ledger = claims.Ledger("07", "cpu")
    ledger.check(
        "ensemble_calibrated", False, true="a", false="It was not.", evidence="ECE 0.05 vs 0.04"
    )
    ledger.check("noise_hurts", True, true="Noise hurt.", false="b")
    assert claims_ledger.find_ledger_dir(Path("/nowhere")) == ledger_dir
    rows = claims_ledger.read_profile(ledger_dir, "cpu")
    assert [(r["name"], r["status"], r["sentence"]) for r in rows] == [
        ("ensemble_calibrated", claims.FAILS, "It was not."),
        ("noise_hurts", claims.HOLDS, "Noise hurt."),
    ]
    monkeypatch.delenv(claims.LEDGER_ENV)
    assert (
        claims_ledger.find_ledger_dir(Path(__file__).parent)
        == Path(__file__).resolve().parents[1] / "build" / "claims"
    )


def test_the_ledger_table_shows_markdown_sentences_as_plain_text():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
    import claims_ledger

    text = "The network is **not measurably better** than *logistic regression* (`evaluation`)."
    assert claims_ledger.plain(text) == (
        "The network is not measurably better than logistic regression (evaluation)."
    )
    assert claims_ledger.plain("a * b and 2*3") == "a * b and 2*3"
