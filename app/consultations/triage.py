"""Red-flag triage at intake: which answers mean "do not wait", and what the patient is told.

The questions, their advice level and every text in both languages are data (content/triage.yaml,
reviewed like the articles); this module reads that file once at start-up and decides:

- `assess(answers, questions)`: the most severe advice among the ticked questions, if any;
- `confirmed(assessment, seen)`: whether the patient has already seen that advice (or a more severe
  one) and chose to send the request anyway, so the form may be stored;
- `TriagePolicy.target_hours`: an urgent request's own response target (URGENT_TARGET_HOURS),
  which wins over any other target the request would have had.

A request with any red-flag answer that the patient still sends is urgent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

EMERGENCY = "emergency"  # call 112 now, or go to an emergency department
TODAY = "today"  # see a doctor in person today
LEVELS = (EMERGENCY, TODAY)  # most severe first
LANGUAGES = ("en", "lt")
NONE_OF_THESE = "none"  # the form's answer for "none of these apply"


class TriageFileError(ValueError):
    """The red-flag questions file cannot be used; the message names what is wrong."""


@dataclass(frozen=True)
class Question:
    key: str
    level: str
    texts: Mapping[str, str]

    def text(self, language: str) -> str:
        return self.texts.get(language) or self.texts["en"]


@dataclass(frozen=True)
class Advice:
    level: str
    titles: Mapping[str, str]
    texts: Mapping[str, str]

    def title(self, language: str) -> str:
        return self.titles.get(language) or self.titles["en"]

    def text(self, language: str) -> str:
        return self.texts.get(language) or self.texts["en"]


@dataclass(frozen=True)
class TriageQuestions:
    questions: tuple[Question, ...]
    advice: Mapping[str, Advice]
    last_reviewed: date
    next_review: date | None = None

    def get(self, key: str) -> Question | None:
        return next((question for question in self.questions if question.key == key), None)

    def choices(self, language: str) -> list[tuple[str, str]]:
        """(key, text) pairs for the form, in the file's order."""
        return [(question.key, question.text(language)) for question in self.questions]

    def level_of(self) -> dict[str, str]:
        return {question.key: question.level for question in self.questions}


@dataclass(frozen=True)
class Assessment:
    """The outcome of the red-flag answers: the advice level (None: nothing urgent) and why."""

    level: str | None
    reasons: tuple[Question, ...] = ()

    @property
    def urgent(self) -> bool:
        return self.level is not None

    @property
    def keys(self) -> list[str]:
        return [question.key for question in self.reasons]


def assess(answers: Iterable[str], questions: TriageQuestions) -> Assessment:
    """The most severe advice among the ticked questions; unknown keys and "none" are ignored."""
    ticked = set(answers)
    reasons = tuple(question for question in questions.questions if question.key in ticked)
    if not reasons:
        return Assessment(None)
    level = min((question.level for question in reasons), key=LEVELS.index)
    return Assessment(level, reasons)


def severity(level: str | None) -> int:
    """0 for the most severe level, higher for milder ones, len(LEVELS) for none."""
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def confirmed(assessment: Assessment, seen: str | None) -> bool:
    """True when nothing is urgent, or the patient has seen advice at least as severe as this one."""
    if not assessment.urgent:
        return True
    return seen in LEVELS and severity(seen) <= severity(assessment.level)


@dataclass(frozen=True)
class TriagePolicy:
    questions: TriageQuestions
    urgent_target_hours: int

    def target_hours(self, assessment: Assessment, requested: int | None = None) -> int | None:
        """The request's own response target: URGENT_TARGET_HOURS when urgent, else what it asked for."""
        return self.urgent_target_hours if assessment.urgent else requested

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TriagePolicy:
        return cls(
            questions=load(Path(str(config["TRIAGE_FILE"]))),
            urgent_target_hours=int(config["URGENT_TARGET_HOURS"]),
        )


# --- Reading the file ----------------------------------------------------------------------------


def load(path: Path) -> TriageQuestions:
    """Read and check content/triage.yaml; raises TriageFileError naming the problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise TriageFileError(f"{path}: cannot be read as YAML ({type(error).__name__})") from error
    return parse(data, str(path))


def _texts(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or any(
        not isinstance(value.get(lang), str) or not value[lang].strip() for lang in LANGUAGES
    ):
        raise TriageFileError(f"{where}: needs a text in each of {', '.join(LANGUAGES)}")
    return {lang: " ".join(str(value[lang]).split()) for lang in LANGUAGES}


def _date(value: Any, where: str) -> date:
    if not isinstance(value, date):
        raise TriageFileError(f"{where}: must be a date such as 2026-11-30")
    return value


def parse(data: Any, where: str = "triage") -> TriageQuestions:
    if not isinstance(data, Mapping):
        raise TriageFileError(f"{where}: must be a mapping")
    advice = {}
    for level in LEVELS:
        entry = (data.get("advice") or {}).get(level)
        if not isinstance(entry, Mapping):
            raise TriageFileError(f"{where}: advice for {level!r} is missing")
        titles = _texts({lang: (entry.get(lang) or {}).get("title") for lang in LANGUAGES}, f"{where}: {level} title")
        texts = _texts({lang: (entry.get(lang) or {}).get("text") for lang in LANGUAGES}, f"{where}: {level} text")
        advice[level] = Advice(level, titles, texts)
    questions = []
    for number, item in enumerate(data.get("questions") or [], start=1):
        if not isinstance(item, Mapping):
            raise TriageFileError(f"{where}: question {number} must be a mapping")
        key = item.get("key")
        if not isinstance(key, str) or not key.isidentifier() or key == NONE_OF_THESE:
            raise TriageFileError(f"{where}: question {number} needs a key of letters, digits and _")
        if item.get("advice") not in LEVELS:
            raise TriageFileError(f"{where}: question {key!r} needs advice: {' or '.join(LEVELS)}")
        texts = _texts({lang: item.get(lang) for lang in LANGUAGES}, f"{where}: question {key!r}")
        questions.append(Question(key, str(item["advice"]), texts))
    if not questions:
        raise TriageFileError(f"{where}: has no questions")
    if len({question.key for question in questions}) != len(questions):
        raise TriageFileError(f"{where}: two questions share a key")
    next_review = data.get("next_review")
    return TriageQuestions(
        questions=tuple(questions),
        advice=advice,
        last_reviewed=_date(data.get("last_reviewed"), f"{where}: last_reviewed"),
        next_review=_date(next_review, f"{where}: next_review") if next_review is not None else None,
    )
