"""A case at a glance: the patient's coded answers in the reader's words, their age (and whether the
request is about a child), and the earlier requests sent from the same email address.

The words come from the intake form's own choices (app.intake.forms), so the patient and the
dermatologist read the same label for the same answer, in either language.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from app.extensions import db
from app.intake.forms import BODY_SITES, DURATIONS, HISTORY, SEXES, SYMPTOMS
from app.models import ConsultationRequest

# Under this age the request is about a child: a parent or guardian is usually the one writing.
ADULT_AGE = 18
EARLIER_REQUESTS_SHOWN = 20

CHOICES = {
    "sex": dict(SEXES),
    "body_sites": dict(BODY_SITES),
    "duration": dict(DURATIONS),
    "symptoms": dict(SYMPTOMS),
    "history": dict(HISTORY),
}


def label(question: str, code: str) -> str:
    """The words the patient picked for a coded answer, in the current language; an unknown code
    (an answer since retired from the form) is shown as stored rather than hidden."""
    return str(CHOICES[question].get(code, code))


def labels(question: str, codes: Iterable[str] | None) -> list[str]:
    return [label(question, code) for code in codes or ()]


def age_in_years(born: date, on: date) -> int:
    """Whole years from `born` to `on` (a birthday on 29 February counts from 1 March in other years)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass(frozen=True)
class CaseFacts:
    sex: str | None
    body_sites: list[str]
    duration: str | None
    symptoms: list[str]
    history: list[str]
    age: int | None
    is_child: bool


def case_facts(consultation: ConsultationRequest, today: date) -> CaseFacts:
    """What the patient told us, worded for the reader, with their age on `today` (the clinic's date)."""
    age = age_in_years(consultation.date_of_birth, today) if consultation.date_of_birth else None
    return CaseFacts(
        sex=label("sex", consultation.sex) if consultation.sex else None,
        body_sites=labels("body_sites", consultation.body_sites),
        duration=label("duration", consultation.duration) if consultation.duration else None,
        symptoms=labels("symptoms", consultation.symptoms),
        history=labels("history", consultation.history),
        age=age,
        is_child=age is not None and age < ADULT_AGE,
    )


@dataclass(frozen=True)
class EarlierRequest:
    reference: str
    status: str
    created_at: datetime
    condition_slug: str | None


def earlier_requests(consultation: ConsultationRequest, limit: int = EARLIER_REQUESTS_SHOWN) -> list[EarlierRequest]:
    """Other requests from the same email address, newest first: a returning patient's history.

    Intake stores addresses lower-case; older rows may not be, so both spellings are looked up
    (each an exact match on the email index).
    """
    email = consultation.patient_email
    rows = db.session.execute(
        select(
            ConsultationRequest.reference,
            ConsultationRequest.status,
            ConsultationRequest.created_at,
            ConsultationRequest.condition_slug,
        )
        .where(
            ConsultationRequest.patient_email.in_({email, email.lower()}),
            ConsultationRequest.id != consultation.id,
        )
        .order_by(ConsultationRequest.created_at.desc(), ConsultationRequest.id.desc())
        .limit(limit)
    ).all()
    return [EarlierRequest(**row._mapping) for row in rows]
