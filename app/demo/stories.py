"""Playing the examples' stories through the real actions, at the past moments they happened.

A story (timeline) is the list of steps a case goes through after its submission: claim, a
question or an answer, the patient's reply, resolving. Each example is submitted with
app.consultations.submission.submit_request and each step is done by the action a dermatologist or
the patient would use (staff_actions.claim/ask/answer, conversation.reply/resolve), with that
step's moment as `now` and the app's policies, so its clocks, messages, links, photos and audit rows
are what the real flow leaves. Every action commits its own transaction.

Three things differ from a real request, all done inside the action's own transaction (see `_at`):
the request's `updated_at` and the audit rows the step wrote are dated at the step's moment (the
actions take them from the wall clock), and the emails the step queued are dropped, since nobody
is to hear of demo data. Each example also gets its demo private link (store.demo_link).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from flask import current_app
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session

from app.consultations import conversation, staff_actions, submission
from app.consultations.lateness import LateExplanation, LateReason, is_late
from app.consultations.policies import Policies
from app.demo import cases, store
from app.demo.cases import DEMO_CASES, DemoCase, Story
from app.demo.photos import example_photos
from app.extensions import db
from app.models import AuditEvent, ConsultationRequest, OutboundEmail, User
from app.runtime import policies
from app.storage import PhotoStorage, photo_storage


class Step(StrEnum):
    CLAIM = "claim"  # the dermatologist takes the request
    ASK = "ask"  # ... asks the patient a question
    ANSWER = "answer"  # ... answers
    PATIENT_REPLY = "patient_reply"  # the patient replies to the question
    RESOLVE = "resolve"  # the patient marks the answered request resolved


@dataclass(frozen=True)
class Timeline:
    """When a request was submitted, and each later step with its moment, in order."""

    created: datetime
    steps: tuple[tuple[Step, datetime], ...]


def timeline(case: DemoCase, now: datetime) -> Timeline:
    """The moments of a case's story, as it stands at `now`."""
    created = now - timedelta(hours=case.age_hours)
    if case.story == Story.NEW:
        return Timeline(created, ())
    claim_after = min(1.0, case.age_hours / 4, (case.reply_after or 2.0) / 2)
    steps = [(Step.CLAIM, created + timedelta(hours=claim_after))]
    replied = created + timedelta(hours=case.reply_after or 0)
    if case.story in (Story.ASKED, Story.REPLIED):
        steps.append((Step.ASK, replied))
        if case.story == Story.REPLIED:
            steps.append((Step.PATIENT_REPLY, now - timedelta(hours=case.patient_reply_ago or 0)))
    elif case.story in (Story.ANSWERED, Story.CLOSED):
        steps.append((Step.ANSWER, replied))
        if case.story == Story.CLOSED:
            steps.append((Step.RESOLVE, replied + timedelta(hours=case.closed_after or 0)))
    return Timeline(created, tuple(steps))


def create_examples(numbers: Sequence[int], dermatologists: Sequence[User], now: datetime) -> None:
    """Play the examples numbered `numbers` (1-based into DEMO_CASES).

    An example whose story fails partway is removed again (rows and files), so that the next run
    creates it afresh rather than leave it half played; the error is raised.
    """
    for number in numbers:
        try:
            play_example(number, DEMO_CASES[number - 1], dermatologists, now)
        except BaseException:
            db.session.rollback()
            store.remove_requests([store.submission_key(number)])
            raise


def play_example(
    number: int, case: DemoCase, dermatologists: Sequence[User], now: datetime
) -> ConsultationRequest | None:
    """Submit example `number` with its photos and play its story; returns the request (None: it
    already existed, and is left as it is)."""
    key = store.submission_key(number)
    story = timeline(case, now)
    rules = policies()
    storage = photo_storage()
    patient = cases.patient(number, case.slug)
    with _at(story.created, key):
        submitted = submission.submit_request(
            patient.details,
            example_photos(number, case.photos, rules.photos),
            submission_key=key,
            language=patient.language,
            consent_version=current_app.config["CONSENT_VERSION"],
            now=story.created,
            storage=storage,
            policies=rules,
        )
        if submitted.duplicate:
            return None
        consultation = submitted.consultation
        consultation.links.append(store.demo_link(key, story.created))
        db.session.commit()
    dermatologist = dermatologists[case.holder or 0]
    for step, moment in story.steps:
        with _at(moment, key):
            _do(step, consultation, dermatologist, moment, rules, storage)
    return consultation


def _do(
    step: Step,
    consultation: ConsultationRequest,
    dermatologist: User,
    moment: datetime,
    rules: Policies,
    storage: PhotoStorage,
) -> None:
    match step:
        case Step.CLAIM:
            staff_actions.claim(consultation, dermatologist, moment)
        case Step.ASK:
            staff_actions.ask(
                consultation, dermatologist, cases.QUESTION_TEXT, moment, late=_why_late(consultation, moment)
            )
        case Step.ANSWER:
            answer = cases.answer_for(consultation.condition_slug)
            staff_actions.answer(consultation, dermatologist, answer, moment, late=_why_late(consultation, moment))
        case Step.PATIENT_REPLY:
            conversation.reply(consultation, cases.REPLY_TEXT, [], now=moment, policies=rules, storage=storage)
        case Step.RESOLVE:
            conversation.resolve(consultation, moment)


def _why_late(consultation: ConsultationRequest, moment: datetime) -> LateExplanation | None:
    """A late reply says why, as the queue asks a dermatologist to (the examples' late ones: workload)."""
    return LateExplanation(LateReason.WORKLOAD) if is_late(consultation.due_at, moment) else None


@contextmanager
def _at(moment: datetime, key: str) -> Iterator[None]:
    """While a step runs, each commit it makes first dates its work at `moment` and drops its emails.

    Done in a before_commit hook on this session, so it lands in the action's own transaction: no
    worker running meanwhile ever sees a demo email, and no half-dated step is ever committed.
    """
    session = db.session()
    earlier_events = session.execute(select(func.max(AuditEvent.id))).scalar() or 0

    def date_and_drop_emails(session: Session) -> None:
        session.flush()
        request_id = session.execute(
            select(ConsultationRequest.id).where(ConsultationRequest.submission_key == key)
        ).scalar()
        if request_id is None:
            return
        # The actions stamp these by the wall clock (the column's onupdate, the audit row's default).
        session.execute(
            update(ConsultationRequest).where(ConsultationRequest.id == request_id).values(updated_at=moment)
        )
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.request_id == request_id, AuditEvent.id > earlier_events)
            .values(at=moment)
        )
        # "fetch": the deleted rows leave the session too (SQLite may give a later email the same id).
        session.execute(
            delete(OutboundEmail).where(OutboundEmail.request_id == request_id),
            execution_options={"synchronize_session": "fetch"},
        )

    event.listen(session, "before_commit", date_and_drop_emails)
    try:
        yield
    finally:
        event.remove(session, "before_commit", date_and_drop_emails)
