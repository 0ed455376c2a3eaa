"""Claims: the lessons a chapter draws from its own run, checked and written down.

A chapter's prose may only say "the ensemble is better calibrated" or "the gradient fades
with distance" if *this run* shows it. A notebook therefore states each such conclusion as
a :class:`Claim`: the condition computed from its outputs, the sentence to show when it
holds, the sentence (an honest interpretation) to show when it does not, and the evidence
(the numbers it rests on)::

    ledger = claims.Ledger("04", S.profile)
    ledger.check(
        "ensemble_better_calibrated",
        holds=ece_ensemble < ece_single,
        evidence=f"ECE {ece_single:.3f} (one member) vs {ece_ensemble:.3f} (ensemble)",
        true="The ensemble is better calibrated than a single member ...",
        false="Here the ensemble is *not* better calibrated ...",
    )

:meth:`Ledger.check` returns the claim; displayed in a notebook it shows the sentence that
is true for this run followed by its evidence. Every claim is also appended to the
chapter's ledger file, ``<ledger dir>/<profile>/<chapter>.json`` (the ledger dir is
``$DL4H_CLAIMS`` or ``<repo>/build/claims``); ``make all`` collects the ``cpu`` ledger and
the book shows it on the report pages. A claim that does not hold is recorded as such,
never dropped. In the ``smoke`` profile the models are too small to show anything, so the
ledger marks each claim "not evaluated at this size" while the notebook still shows the
sentence its numbers support.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .data import REPO_ROOT

LEDGER_ENV = "DL4H_CLAIMS"
NOT_EVALUATED = "not evaluated at this size"
HOLDS = "holds"
FAILS = "does not hold"
#: Profiles whose models are big enough for their claims to count.
EVALUATED_PROFILES = ("cpu", "gpu")


def ledger_dir() -> Path:
    """Folder of the ledgers: ``$DL4H_CLAIMS`` or ``<repo>/build/claims``."""
    value = os.environ.get(LEDGER_ENV)
    return Path(value).expanduser().resolve() if value else REPO_ROOT / "build" / "claims"


@dataclass
class Claim:
    """One checked conclusion of a chapter (see the module docstring)."""

    chapter: str
    name: str
    holds: bool
    sentence: str
    evidence: str
    profile: str
    lesson: bool = True
    status: str = field(init=False)

    def __post_init__(self) -> None:
        if self.profile not in EVALUATED_PROFILES:
            self.status = NOT_EVALUATED
        else:
            self.status = HOLDS if self.holds else FAILS

    def __bool__(self) -> bool:
        return self.holds

    def _repr_markdown_(self) -> str:
        text = self.sentence
        if self.evidence:
            text += f"\n\n*Evidence ({self.profile} run):* {self.evidence}"
        return text

    def __str__(self) -> str:
        return self.sentence


class Ledger:
    """The claims of one chapter in one run, kept in ``<ledger dir>/<profile>/<chapter>.json``.

    A new ledger starts an empty file for its chapter and profile, so a re-run replaces the
    previous run's claims instead of mixing with them; a claim checked twice under the same
    name keeps its last result.
    """

    def __init__(self, chapter: str, profile: str, *, write: bool = True) -> None:
        if not chapter or not str(chapter).strip():
            raise ValueError("chapter must be a non-empty string such as '04'")
        if not profile:
            raise ValueError("profile must be the resolved profile, e.g. S.profile")
        self.chapter = str(chapter)
        self.profile = str(profile)
        self.claims: dict[str, Claim] = {}
        self.path = ledger_dir() / self.profile / f"{self.chapter}.json"
        self.write = write
        self._save()

    def check(
        self, name: str, holds, *, true: str, false: str, evidence: str = "", lesson: bool = True
    ) -> Claim:
        """Record whether claim ``name`` holds in this run and return it.

        ``holds`` is coerced with ``bool`` (NumPy booleans are fine; NaN is refused, because
        a comparison with an undefined number says nothing). ``true`` is the sentence for a
        run where the claim holds, ``false`` the honest sentence for one where it does not;
        ``evidence`` names the numbers. ``lesson=False`` marks a claim that comments on this
        run without being a lesson the chapter must teach.
        """
        if not name or not str(name).strip():
            raise ValueError("a claim needs a name")
        if holds is None or (isinstance(holds, float) and holds != holds):
            raise ValueError(f"claim {name!r}: holds is {holds!r}; compute a True/False condition")
        if not true.strip() or not false.strip():
            raise ValueError(f"claim {name!r}: give both the 'true' and the 'false' sentence")
        held = bool(holds)
        result = Claim(
            self.chapter, str(name), held, true if held else false, evidence, self.profile, lesson
        )
        self.claims[result.name] = result
        self._save()
        return result

    def _save(self) -> None:
        if not self.write:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "chapter": self.chapter,
            "profile": self.profile,
            "written": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "claims": [asdict(claim) for claim in self.claims.values()],
        }
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(self.path)


def read_ledgers(profile: str, folder: Path | None = None) -> list[dict]:
    """Every claim recorded in ``profile``, as dictionaries ordered by chapter.

    Raises ``ValueError`` naming the file when a ledger cannot be parsed.
    """
    base = (folder or ledger_dir()) / profile
    rows: list[dict] = []
    for path in sorted(base.glob("*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            rows.extend(payload["claims"])
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"claims ledger {path} is malformed: {error}") from error
    return rows
