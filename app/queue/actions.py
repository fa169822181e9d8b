"""What dermatologists and staff do to a request: claim, release, reassign, answer, ask, note.

Plain functions: each checks the rule, changes the request, adds the message, the audit
row and any email to the session, and leaves the commit to the caller so that all of it
lands together or not at all. State changes are conditional UPDATEs, so that two people
acting at the same moment (two claims, a claim and a reassignment, a double-clicked
answer) cannot both succeed, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import case

from app import audit, notify, sla
from app.extensions import db
from app.models import (
    ANSWER,
    ANSWERED,
    AWAITING_PATIENT,
    IN_REVIEW,
    INTERNAL_NOTE,
    QUESTION,
    SUBMITTED,
    ConsultationRequest,
    Message,
    User,
    update_if,
)

# Requests someone can still work on (a question may be pending with the patient).
WORKABLE_STATUSES = (SUBMITTED, IN_REVIEW, AWAITING_PATIENT)
# Who may do what (roles from app.models.ROLES). Clinical acts stay with dermatologists:
# an admin or staff account is not a clinician's signature on advice to a patient.
CLINICAL_ROLES = ("dermatologist",)
QUEUE_ROLES = ("dermatologist", "staff", "admin")
COORDINATOR_ROLES = ("staff", "admin")


class ActionRefused(Exception):
    """The action cannot be done now; the message says why, in words fit for the user."""


@dataclass(frozen=True)
class Answer:
    assessment: str
    treatment: str
    prescription_note: str = ""
    follow_up: str = ""


def _require_role(user: User, roles: tuple[str, ...]) -> None:
    if user.role not in roles:
        raise ActionRefused(_l("Your role cannot do this."))


def claim(consultation: ConsultationRequest, user: User, now: datetime) -> None:
    """Take the request: only if nobody holds it. Of two simultaneous claims exactly one wins."""
    _require_role(user, CLINICAL_ROLES)
    won = update_if(
        consultation,
        [ConsultationRequest.claimed_by_id.is_(None), ConsultationRequest.status.in_(WORKABLE_STATUSES)],
        {
            "claimed_by_id": user.id,
            "claimed_at": now,
            "status": case((ConsultationRequest.status == SUBMITTED, IN_REVIEW), else_=ConsultationRequest.status),
        },
    )
    if not won:
        if consultation.claimed_by_id == user.id:
            raise ActionRefused(_l("You already have this request."))
        if consultation.claimed_by is not None:
            raise ActionRefused(
                _l("%(name)s claimed this request first. It is theirs now.", name=consultation.claimed_by.name)
            )
        raise ActionRefused(_l("This request can no longer be claimed (it is %(status)s).", status=consultation.status))
    audit.record("claimed", consultation=consultation, user=user)


def release(consultation: ConsultationRequest, user: User, now: datetime) -> None:
    """Give the request back to the queue. The holder may release; staff and admins may too.

    A request being reviewed goes back to "submitted" (waiting for a dermatologist); one
    waiting for the patient stays so, and the patient's reply will alert the team.
    """
    if consultation.claimed_by_id != user.id:
        _require_role(user, COORDINATOR_ROLES)
    holder = consultation.claimed_by_id
    released = update_if(
        consultation,
        [ConsultationRequest.claimed_by_id == holder, ConsultationRequest.claimed_by_id.is_not(None)],
        {
            "claimed_by_id": None,
            "claimed_at": None,
            "status": case((ConsultationRequest.status == IN_REVIEW, SUBMITTED), else_=ConsultationRequest.status),
        },
    )
    if not released:
        raise ActionRefused(_l("Nobody holds this request now, or someone else changed it a moment ago."))
    audit.record("released", consultation=consultation, user=user, detail=f"was user {holder}")


def reassign(consultation: ConsultationRequest, to: User, by: User, now: datetime) -> None:
    """Staff hand a request to a dermatologist (whoever held it before loses it)."""
    _require_role(by, COORDINATOR_ROLES)
    if to.role not in CLINICAL_ROLES or not to.active:
        raise ActionRefused(_l("Requests can only be given to an active dermatologist."))
    holder = consultation.claimed_by_id
    if holder == to.id:
        raise ActionRefused(_l("%(name)s already has this request.", name=to.name))
    moved = update_if(
        consultation,
        [ConsultationRequest.status.in_(WORKABLE_STATUSES), _same_holder(holder)],
        {
            "claimed_by_id": to.id,
            "claimed_at": now,
            "status": case((ConsultationRequest.status == SUBMITTED, IN_REVIEW), else_=ConsultationRequest.status),
        },
    )
    if not moved:
        raise ActionRefused(_l("The request changed a moment ago; look at it again before reassigning."))
    audit.record("reassigned", consultation=consultation, user=by, detail=f"user {holder} -> user {to.id}")


def _same_holder(holder: int | None):
    if holder is None:
        return ConsultationRequest.claimed_by_id.is_(None)
    return ConsultationRequest.claimed_by_id == holder


def _take_turn(consultation: ConsultationRequest, author: User, new_status: str, now: datetime) -> None:
    """Move the request to `new_status` only while `author` holds it and it is still workable."""
    _require_role(author, CLINICAL_ROLES)
    extra = {"answered_at": now} if new_status == ANSWERED else {}
    moved = update_if(
        consultation,
        [
            ConsultationRequest.claimed_by_id == author.id,
            ConsultationRequest.status.in_((IN_REVIEW, AWAITING_PATIENT)),
        ],
        {"status": new_status, **extra},
    )
    if not moved:
        if consultation.claimed_by_id != author.id:
            raise ActionRefused(_l("You no longer hold this request, so nothing was sent. Your text is still below."))
        raise ActionRefused(_l("This request was already answered or closed, so nothing was sent."))


def answer(consultation: ConsultationRequest, author: User, content: Answer, now: datetime) -> Message:
    """The dermatologist's structured answer: stops the clock and tells the patient a reply is ready."""
    _take_turn(consultation, author, ANSWERED, now)
    message = Message(
        kind=ANSWER,
        author_id=author.id,
        assessment=content.assessment.strip(),
        treatment=content.treatment.strip(),
        prescription_note=content.prescription_note.strip() or None,
        follow_up=content.follow_up.strip() or None,
        created_at=now,
    )
    return _send_to_patient(consultation, author, message, "answered", now)


def ask(consultation: ConsultationRequest, author: User, question: str, now: datetime) -> Message:
    """A question to the patient: the clock stops until they reply."""
    _take_turn(consultation, author, AWAITING_PATIENT, now)
    message = Message(kind=QUESTION, author_id=author.id, body=question.strip(), created_at=now)
    return _send_to_patient(consultation, author, message, "asked", now)


def _send_to_patient(
    consultation: ConsultationRequest, author: User, message: Message, action: str, now: datetime
) -> Message:
    consultation.messages.append(message)
    sla.stop_clock(consultation, now, author)
    db.session.flush()  # the message id makes the email's dedupe key
    audit.record(action, consultation=consultation, user=author, detail=f"message {message.id}")
    notify.dermatologist_replied(consultation, message)
    return message


def add_note(consultation: ConsultationRequest, author: User, body: str, now: datetime) -> Message:
    """An internal note for colleagues: never shown to the patient, never emailed."""
    _require_role(author, QUEUE_ROLES)
    message = Message(kind=INTERNAL_NOTE, author_id=author.id, body=body.strip(), created_at=now)
    consultation.messages.append(message)
    db.session.flush()
    audit.record("noted", consultation=consultation, user=author, detail=f"message {message.id}")
    return message


def allowed_actions(consultation: ConsultationRequest, user: User) -> set[str]:
    """Which action buttons to offer this user on this request (the rules above still decide)."""
    actions = {"note"} if user.role in QUEUE_ROLES else set()
    workable = consultation.status in WORKABLE_STATUSES
    holder = consultation.claimed_by_id
    if workable and user.role in CLINICAL_ROLES and holder is None:
        actions.add("claim")
    if workable and holder == user.id:
        actions.update({"release", "answer", "ask"} if consultation.status != SUBMITTED else {"release"})
    if workable and user.role in COORDINATOR_ROLES:
        actions.add("reassign")
        if holder is not None:
            actions.add("release")
    return actions
