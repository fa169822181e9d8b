"""Bulk rows (`flask demo seed --requests N`): many requests quickly, written with batched INSERTs.

Their stories come from the same timeline as the examples' (stories.timeline), folded into row
values here instead of played through the actions: building 20,000 mapped objects and committing
each step would take minutes, one executemany INSERT per table per batch takes seconds. The fold
keeps to the rules it would otherwise re-derive: statuses are app.consultations.states.Status and
every move is one the state table allows (states.may_move), due times come from the clock's
due_time, the patient's fields and the answer are the examples' own (cases.patient, answer_for).

They arrive at a steady BULK_REQUESTS_PER_DAY going back in time, so most of a large history is
answered and closed. They have no photos (no files, no Photo rows) and no audit rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, insert, select

from app.conditions.library import articles
from app.consultations.clock import ResponsePolicy, due_time
from app.consultations.states import ENDED, Status, may_move
from app.consultations.submission import patient_columns
from app.demo import cases, store
from app.demo.accounts import DERMATOLOGIST_COUNT
from app.demo.cases import DEMO_CASES, DemoCase, Story
from app.demo.stories import Step, Timeline, timeline
from app.extensions import db
from app.models import (
    ANSWER,
    PATIENT_REPLY,
    QUESTION,
    ConsultationRequest,
    Message,
    PatientLink,
    ResponseClock,
    User,
    new_reference,
)
from app.runtime import policies

BATCH_SIZE = 2000
# About this many requests a day in the bulk history, so that a bigger N means a longer past,
# not a bigger pile of open requests: a clinic with 20,000 requests on file has answered most of them.
BULK_REQUESTS_PER_DAY = 60


def bulk_case(number: int, slugs: Sequence[str]) -> DemoCase:
    """A bulk request's story: steady arrivals going back in time, most of the past answered and closed."""
    rng = random.Random(number)  # noqa: S311  (demo data: the same story for a number on every run)  # nosec B311
    age = (number - len(DEMO_CASES)) * 24 / BULK_REQUESTS_PER_DAY + rng.uniform(0, 0.3)
    slug = rng.choice(slugs) if slugs and rng.random() < 0.9 else None
    holder = rng.randrange(DERMATOLOGIST_COUNT)
    reply_after = rng.uniform(1, 23) if rng.random() < 0.92 else rng.uniform(24, 40)
    if age <= reply_after:  # nobody has replied yet
        if rng.random() < 0.45:
            return DemoCase(slug, Story.NEW, age, photos=0)
        return DemoCase(slug, Story.CLAIMED, age, holder=holder, photos=0)
    roll = rng.random()
    # Questions wait for the patient a few days at most before the request is closed.
    if roll < 0.06 and age < 5 * 24:
        return DemoCase(slug, Story.ASKED, age, holder=holder, photos=0, reply_after=reply_after)
    patient_reply_ago = rng.uniform(0.5, 20)
    if roll < 0.09 and age < 5 * 24 and reply_after + 1 < age - patient_reply_ago:
        return DemoCase(slug, Story.REPLIED, age, holder, 0, reply_after, patient_reply_ago)
    closed_after = rng.uniform(24, 14 * 24)
    story = Story.CLOSED if reply_after + closed_after < age else Story.ANSWERED
    return DemoCase(slug, story, age, holder, 0, reply_after, closed_after=closed_after)


class References:
    """New public references, never one already used (20,000 random ones would otherwise collide)."""

    def __init__(self) -> None:
        self.used = set(db.session.execute(select(ConsultationRequest.reference)).scalars())

    def new(self) -> str:
        while True:
            reference = new_reference()
            if reference not in self.used:
                self.used.add(reference)
                return reference


# --- Folding a timeline into rows ------------------------------------------------------------------

ANSWER_COLUMNS = ("assessment", "treatment", "prescription_note", "follow_up")


@dataclass
class Rows:
    """One request as rows: its columns, and its clocks and messages (without the request id yet)."""

    request: dict[str, Any]
    clocks: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)


def _clock(round_number: int, started: datetime, policy: ResponsePolicy) -> dict[str, Any]:
    return {
        "round": round_number,
        "started_at": started,
        "due_at": due_time(started, policy),
        "stopped_at": None,
        "stopped_by_id": None,
    }


def _message(
    kind: str, author_id: int | None, at: datetime, body: str | None = None, **answer: str | None
) -> dict[str, Any]:
    """A message row; every row has the same keys, so a batch is one executemany."""
    row: dict[str, Any] = dict.fromkeys(ANSWER_COLUMNS)
    row.update(answer, kind=kind, author_id=author_id, body=body, created_at=at)
    return row


def fold(story: Timeline, dermatologist_id: int, slug: str | None, policy: ResponsePolicy) -> Rows:
    """What the actions would leave after the story's steps: the request's status and times, its
    clocks (stopped by the dermatologist's message, a new round for each patient reply), its messages."""
    status = Status.SUBMITTED
    values: dict[str, Any] = {
        "claimed_by_id": None,
        "claimed_at": None,
        "first_response_at": None,
        "answered_at": None,
        "closed_at": None,
        "updated_at": story.created,
        "response_round": 1,
    }
    rows = Rows(values, clocks=[_clock(1, story.created, policy)])
    for step, at in story.steps:
        target = _target(step, values)
        if not may_move(status, target):
            raise ValueError(f"a demo story cannot go from {status} to {target} ({step})")
        status = target
        values["updated_at"] = at
        if step == Step.CLAIM:
            values.update(claimed_by_id=dermatologist_id, claimed_at=at)
        elif step == Step.ASK:
            rows.messages.append(_message(QUESTION, dermatologist_id, at, cases.QUESTION_TEXT))
            _stop_clock(rows, at, dermatologist_id)
        elif step == Step.ANSWER:
            answer = cases.answer_for(slug)
            rows.messages.append(
                _message(
                    ANSWER,
                    dermatologist_id,
                    at,
                    assessment=answer.assessment,
                    treatment=answer.treatment,
                    prescription_note=answer.prescription_note or None,
                    follow_up=answer.follow_up or None,
                )
            )
            values["answered_at"] = at
            _stop_clock(rows, at, dermatologist_id)
        elif step == Step.PATIENT_REPLY:
            rows.messages.append(_message(PATIENT_REPLY, None, at, cases.REPLY_TEXT))
            values["response_round"] += 1
            rows.clocks.append(_clock(values["response_round"], at, policy))
        elif step == Step.RESOLVE:
            values["closed_at"] = at
    running = rows.clocks[-1] if rows.clocks[-1]["stopped_at"] is None and status not in ENDED else None
    values.update(
        status=status.value,
        clock_started_at=running["started_at"] if running else None,
        due_at=running["due_at"] if running else None,
    )
    return rows


def _stop_clock(rows: Rows, at: datetime, dermatologist_id: int) -> None:
    """The dermatologist's message meets the running round (the first one also sets first_response_at)."""
    rows.clocks[-1].update(stopped_at=at, stopped_by_id=dermatologist_id)
    rows.request["first_response_at"] = rows.request["first_response_at"] or at


_MOVES = {
    Step.CLAIM: Status.IN_REVIEW,
    Step.ASK: Status.AWAITING_PATIENT,
    Step.ANSWER: Status.ANSWERED,
    Step.RESOLVE: Status.CLOSED,
}


def _target(step: Step, values: dict[str, Any]) -> Status:
    """The status a step moves the request to (a reply goes back to whoever holds the request)."""
    if step == Step.PATIENT_REPLY:
        return Status.IN_REVIEW if values["claimed_by_id"] is not None else Status.SUBMITTED
    return _MOVES[step]


def request_rows(
    number: int,
    case: DemoCase,
    dermatologists: Sequence[User],
    now: datetime,
    policy: ResponsePolicy,
    reference: str,
    consent_version: str,
) -> Rows:
    """Bulk request `number` as rows: the patient's form as submission stores it, then its story folded."""
    story = timeline(case, now)
    patient = cases.patient(number, case.slug)
    details = patient.details
    rows = fold(story, dermatologists[case.holder or 0].id, details.condition_slug, policy)
    rows.request.update(
        reference=reference,
        submission_key=store.submission_key(number),
        language=patient.language,
        **patient_columns(details, consent_version, story.created),
    )
    return rows


# --- Writing them ---------------------------------------------------------------------------------


def _table(model: type[ConsultationRequest | ResponseClock | PatientLink | Message]) -> Table:
    """A model's table, for Core INSERTs (a declarative model's __table__ is typed as any FromClause)."""
    return cast(Table, model.__table__)


def create_bulk(numbers: Sequence[int], dermatologists: Sequence[User], now: datetime) -> None:
    """Bulk rows: one executemany INSERT per table per batch (Core: the ORM would split rows by their None columns)."""
    slugs = [condition.slug for condition in articles().all()]
    policy = policies().response
    consent_version = current_app.config["CONSENT_VERSION"]
    references = References()
    requests = _table(ConsultationRequest)
    for start in range(0, len(numbers), BATCH_SIZE):
        batch = [
            request_rows(
                number, bulk_case(number, slugs), dermatologists, now, policy, references.new(), consent_version
            )
            for number in numbers[start : start + BATCH_SIZE]
        ]
        db.session.execute(insert(requests), [rows.request for rows in batch])
        # Ids by submission key: RETURNING in parameter order would make SQLite insert row by row.
        keys = [rows.request["submission_key"] for rows in batch]
        ids = dict(
            db.session.execute(
                select(requests.c.submission_key, requests.c.id).where(requests.c.submission_key.in_(keys))
            ).all()
        )
        clocks, messages, links = [], [], []
        for rows in batch:
            key = rows.request["submission_key"]
            request_id = ids[key]
            created = rows.request["created_at"]
            links.append({"request_id": request_id, "token_hash": store.demo_link_hash(key), "created_at": created})
            clocks += [{"request_id": request_id, **clock} for clock in rows.clocks]
            messages += [{"request_id": request_id, **message} for message in rows.messages]
        db.session.execute(insert(_table(ResponseClock)), clocks)
        db.session.execute(insert(_table(PatientLink)), links)
        if messages:
            db.session.execute(insert(_table(Message)), messages)
        db.session.commit()
