"""What dermatologists and staff do to a request: claim, release, reassign, answer, ask, note.

Each action checks the rule, changes the request, adds the message, the audit row and any email,
and commits them together (all or nothing); a refusal rolls back and raises ActionRefused.
State changes are conditional UPDATEs (states.update_if), so that two people
acting at the same moment (two claims, a claim and a reassignment, a double-clicked
answer) cannot both succeed, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import case

from app.consultations import assignment, audit, check_ins, clock, notify, saved_replies
from app.consultations.audit import Actor
from app.consultations.lateness import LateExplanation, is_late
from app.consultations.policies import CheckInPolicy, Policies
from app.consultations.states import WORKABLE, Status, same_holder, sources, update_if
from app.extensions import db
from app.models import (
    ANSWER,
    INTERNAL_NOTE,
    QUESTION,
    AuditAction,
    ConsultationRequest,
    Message,
    Role,
    SavedReply,
    User,
)

# Who may do what. Clinical acts stay with dermatologists:
# an admin or staff account is not a clinician's signature on advice to a patient.
CLINICAL_ROLES = (Role.DERMATOLOGIST,)
QUEUE_ROLES = (Role.DERMATOLOGIST, Role.STAFF, Role.ADMIN)
COORDINATOR_ROLES = (Role.STAFF, Role.ADMIN)


MISSING_LICENCE = _l(
    "Your licence number is not on your account yet, so the answer was not sent: it goes on the patient's "
    "letter. Ask an admin to add it on the Accounts page, then send again. Your text is still below."
)


class ActionRefused(Exception):
    """The action cannot be done now; the message says why, in words fit for the user."""


class LateReasonNeeded(ActionRefused):
    """The reply comes after the due moment and no reason was given: nothing was sent."""


@dataclass(frozen=True)
class Answer:
    assessment: str
    treatment: str
    prescription_note: str = ""
    follow_up: str = ""


def _require_role(user: User, roles: tuple[Role, ...]) -> None:
    if user.role not in roles:
        raise ActionRefused(_l("Your role cannot do this."))


def _refuse(message: object) -> ActionRefused:
    db.session.rollback()
    return ActionRefused(message)


def _done(action: AuditAction, actor: Actor, consultation: ConsultationRequest, detail: str | None = None) -> None:
    audit.record(action, actor, consultation=consultation, detail=detail)
    db.session.commit()


_TAKEN = case(
    (ConsultationRequest.status == Status.SUBMITTED, Status.IN_REVIEW.value), else_=ConsultationRequest.status
)


def claim(consultation: ConsultationRequest, user: User, now: datetime, *, address: str | None = None) -> None:
    """Take the request: only if nobody holds it. Of two simultaneous claims exactly one wins."""
    _require_role(user, CLINICAL_ROLES)
    won = update_if(
        consultation,
        [ConsultationRequest.claimed_by_id.is_(None), ConsultationRequest.status.in_(WORKABLE)],
        {"claimed_by_id": user.id, "claimed_at": now, "status": _TAKEN},
    )
    if not won:
        if consultation.claimed_by_id == user.id:
            raise _refuse(_l("You already have this request."))
        if consultation.claimed_by is not None:
            raise _refuse(
                _l("%(name)s claimed this request first. It is theirs now.", name=consultation.claimed_by.name)
            )
        raise _refuse(_l("This request can no longer be claimed (it is %(status)s).", status=consultation.status))
    _done(AuditAction.CLAIMED, Actor.staff(user, address), consultation)


def release(
    consultation: ConsultationRequest,
    user: User,
    now: datetime,
    *,
    policies: Policies | None = None,
    address: str | None = None,
) -> User | None:
    """Give the request back to the queue. The holder may release; staff and admins may too.

    A request being reviewed goes back to "submitted" (waiting for a dermatologist); one
    waiting for the patient stays so, and the patient's reply will alert the team. With
    AUTO_ASSIGN (given `policies`) it then goes to another dermatologist on duty, if there is one,
    who is returned.
    """
    if consultation.claimed_by_id != user.id:
        _require_role(user, COORDINATOR_ROLES)
    holder = consultation.claimed_by_id
    declined = sorted({*(consultation.declined_by_ids or []), holder} - {None})
    released = update_if(
        consultation,
        [ConsultationRequest.claimed_by_id == holder, ConsultationRequest.claimed_by_id.is_not(None)],
        {
            "claimed_by_id": None,
            "claimed_at": None,
            "declined_by_ids": declined,  # automatic assignment passes them over for this request
            "status": case(
                (ConsultationRequest.status == Status.IN_REVIEW, Status.SUBMITTED.value),
                else_=ConsultationRequest.status,
            ),
        },
    )
    if not released:
        raise _refuse(_l("Nobody holds this request now, or someone else changed it a moment ago."))
    _done(AuditAction.RELEASED, Actor.staff(user, address), consultation, f"was user {holder}")
    return assignment.offer_new(consultation, now, policies) if policies is not None else None


def reassign(
    consultation: ConsultationRequest, to: User, by: User, now: datetime, *, address: str | None = None
) -> None:
    """Staff hand a request to a dermatologist (whoever held it before loses it)."""
    _require_role(by, COORDINATOR_ROLES)
    if to.role not in CLINICAL_ROLES or not to.active:
        raise ActionRefused(_l("Requests can only be given to an active dermatologist."))
    holder = consultation.claimed_by_id
    if holder == to.id:
        raise ActionRefused(_l("%(name)s already has this request.", name=to.name))
    moved = update_if(
        consultation,
        [ConsultationRequest.status.in_(WORKABLE), same_holder(consultation)],
        {"claimed_by_id": to.id, "claimed_at": now, "status": _TAKEN},
    )
    if not moved:
        raise _refuse(_l("The request changed a moment ago; look at it again before reassigning."))
    _done(AuditAction.REASSIGNED, Actor.staff(by, address), consultation, f"user {holder} -> user {to.id}")


def _take_turn(
    consultation: ConsultationRequest,
    author: User,
    new_status: Status,
    now: datetime,
    late: LateExplanation | None = None,
) -> None:
    """Move the request to `new_status` only while `author` holds it and it is still workable.

    A reply at or after the due moment needs a reason (`late`); without one nothing changes."""
    _require_role(author, CLINICAL_ROLES)
    if late is None and is_late(consultation.due_at, now) and consultation.claimed_by_id == author.id:
        raise _refuse_late()
    extra = {"answered_at": now} if new_status == Status.ANSWERED else {}
    moved = update_if(
        consultation,
        [ConsultationRequest.claimed_by_id == author.id, ConsultationRequest.status.in_(sources(new_status))],
        {"status": new_status.value, **extra},
    )
    if not moved:
        if consultation.claimed_by_id != author.id:
            raise _refuse(_l("You no longer hold this request, so nothing was sent. Your text is still below."))
        raise _refuse(_l("This request was already answered or closed, so nothing was sent."))


def _refuse_late() -> LateReasonNeeded:
    return LateReasonNeeded(
        _l("The reply is late, so nothing was sent yet: say why below, then send again. Your text is kept.")
    )


def answer(
    consultation: ConsultationRequest,
    author: User,
    content: Answer,
    now: datetime,
    *,
    late: LateExplanation | None = None,
    address: str | None = None,
    saved_reply: SavedReply | None = None,
    check_in_weeks: int | None = None,
    check_in_policy: CheckInPolicy | None = None,
) -> Message:
    """The dermatologist's structured answer: stops the clock and tells the patient a reply is ready.

    Every answer can become a signed letter, so it needs the author's licence number first; after the
    due moment it needs a reason (`late`). `saved_reply` is the saved reply the answer started from,
    counted once the answer is sent. With `check_in_weeks` (2-12), the patient is emailed that many
    weeks later to send new photos and say how it is going (app.consultations.check_ins), in the same
    transaction as the answer.
    """
    _require_role(author, CLINICAL_ROLES)
    if not (author.licence_number or "").strip():
        raise ActionRefused(MISSING_LICENCE)
    policy = check_in_policy or CheckInPolicy(reply_days=14)
    if check_in_weeks and not policy.allows(check_in_weeks):
        raise ActionRefused(_l("A check-in can be 2 to 12 weeks away."))
    _take_turn(consultation, author, Status.ANSWERED, now, late)
    message = Message(
        kind=ANSWER,
        author_id=author.id,
        assessment=content.assessment.strip(),
        treatment=content.treatment.strip(),
        prescription_note=content.prescription_note.strip() or None,
        follow_up=content.follow_up.strip() or None,
        signed_licence_number=author.licence_number,
        created_at=now,
    )
    if saved_reply is not None and saved_replies.may_use(author, saved_reply):
        saved_replies.count_use(saved_reply, Actor.staff(author, address), consultation)
    if check_in_weeks:
        consultation.messages.append(message)
        db.session.flush()  # the answer's id, which the check-in remembers
        check_ins.schedule(consultation, message, author, check_in_weeks, now, policy)
    return _send_to_patient(consultation, author, message, AuditAction.ANSWERED, now, address, late)


def ask(
    consultation: ConsultationRequest,
    author: User,
    question: str,
    now: datetime,
    *,
    late: LateExplanation | None = None,
    address: str | None = None,
) -> Message:
    """A question to the patient: the clock stops until they reply. After the due moment it needs a reason."""
    _take_turn(consultation, author, Status.AWAITING_PATIENT, now, late)
    message = Message(kind=QUESTION, author_id=author.id, body=question.strip(), created_at=now)
    return _send_to_patient(consultation, author, message, AuditAction.ASKED, now, address, late)


def _send_to_patient(
    consultation: ConsultationRequest,
    author: User,
    message: Message,
    action: AuditAction,
    now: datetime,
    address: str | None,
    late: LateExplanation | None,
) -> Message:
    if message not in consultation.messages:
        consultation.messages.append(message)
    late_now = late if is_late(consultation.due_at, now) else None  # a reason sent in time is not kept
    clock.stop_clock(consultation, now, author, late_now)
    db.session.flush()  # the message id makes the email's dedupe key
    notify.dermatologist_replied(consultation, message)
    _done(action, Actor.staff(author, address), consultation, f"message {message.id}")
    return message


def add_note(
    consultation: ConsultationRequest, author: User, body: str, now: datetime, *, address: str | None = None
) -> Message:
    """An internal note for colleagues: never shown to the patient, never emailed."""
    _require_role(author, QUEUE_ROLES)
    message = Message(kind=INTERNAL_NOTE, author_id=author.id, body=body.strip(), created_at=now)
    consultation.messages.append(message)
    db.session.flush()
    _done(AuditAction.NOTED, Actor.staff(author, address), consultation, f"message {message.id}")
    return message


def allowed_actions(consultation: ConsultationRequest, user: User) -> set[str]:
    """Which action buttons to offer this user on this request (the rules above still decide)."""
    actions = {"note"} if user.role in QUEUE_ROLES else set()
    workable = consultation.status in WORKABLE
    holder = consultation.claimed_by_id
    if workable and user.role in CLINICAL_ROLES and holder is None:
        actions.add("claim")
    if workable and holder == user.id:
        actions.update({"release", "answer", "ask"} if consultation.status != Status.SUBMITTED else {"release"})
    if workable and user.role in COORDINATOR_ROLES:
        actions.add("reassign")
        if holder is not None:
            actions.add("release")
    return actions
