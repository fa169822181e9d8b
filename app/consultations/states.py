"""The life of a consultation request: its statuses, the named groups of them, and the allowed moves
as one table. Every status change goes through `update_if`, a conditional UPDATE, so that of two
people acting on the same request at once (two claims, a claim and a withdrawal) exactly one wins.

Flow: submitted -> in_review -> (awaiting_patient <-> in_review) -> answered -> closed; or withdrawn.
With paid consultations a request starts as awaiting_payment and becomes submitted once paid; an
unpaid one is withdrawn and deleted when its time is up (app.consultations.payments).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, CursorResult, update

from app.extensions import db

if TYPE_CHECKING:
    from app.models import ConsultationRequest


class Status(StrEnum):
    SUBMITTED = "submitted"  # waiting for a dermatologist
    IN_REVIEW = "in_review"  # a dermatologist holds it
    AWAITING_PATIENT = "awaiting_patient"  # the dermatologist asked; the clock is paused
    ANSWERED = "answered"  # answered; the patient may still follow up for a while
    CLOSED = "closed"  # the patient marked it resolved
    WITHDRAWN = "withdrawn"  # the patient no longer wants an answer
    AWAITING_PAYMENT = "awaiting_payment"  # stored, but not a consultation until paid: no queue, no clock


# Every move a request may make, from -> to. Claiming, releasing and reassigning move between
# submitted and in_review; the dermatologist's answer or question and the patient's reply move the
# conversation on; closing and withdrawing end it. Nothing leaves closed or withdrawn.
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.SUBMITTED: frozenset({Status.IN_REVIEW, Status.WITHDRAWN, Status.CLOSED}),
    Status.IN_REVIEW: frozenset(
        {Status.SUBMITTED, Status.AWAITING_PATIENT, Status.ANSWERED, Status.WITHDRAWN, Status.CLOSED}
    ),
    Status.AWAITING_PATIENT: frozenset(
        {Status.AWAITING_PATIENT, Status.IN_REVIEW, Status.SUBMITTED, Status.ANSWERED, Status.WITHDRAWN, Status.CLOSED}
    ),
    Status.ANSWERED: frozenset({Status.IN_REVIEW, Status.SUBMITTED, Status.CLOSED}),
    Status.CLOSED: frozenset(),
    Status.WITHDRAWN: frozenset(),
    # Paid: into the queue. Abandoned: withdrawn (and then deleted with its photos).
    Status.AWAITING_PAYMENT: frozenset({Status.SUBMITTED, Status.WITHDRAWN}),
}


def sources(target: Status) -> frozenset[Status]:
    """The statuses a request may be in to move to `target`."""
    return frozenset(origin for origin, targets in TRANSITIONS.items() if target in targets)


def may_move(origin: str, target: Status) -> bool:
    return target in TRANSITIONS.get(Status(origin), frozenset())


# The named groups.
ALL = tuple(Status)
# Held until paid: in no queue, no clock, no alert, no figure; only its patient and the payment rules see it.
HELD = frozenset({Status.AWAITING_PAYMENT})
OPEN = frozenset({Status.SUBMITTED, Status.IN_REVIEW})  # a dermatologist owes the patient a reply
WORKABLE = frozenset({Status.SUBMITTED, Status.IN_REVIEW, Status.AWAITING_PATIENT})  # claim, release, reassign
REPLYING = sources(Status.ANSWERED)  # the holder may answer or ask
# The patient's withdrawal, before any answer; an unpaid request is not withdrawn by the patient but
# left to lapse (or erased), so it is not in this group.
WITHDRAWABLE = sources(Status.WITHDRAWN) - HELD
RESOLVABLE = sources(Status.CLOSED)
FINISHED = frozenset({Status.ANSWERED, Status.CLOSED, Status.WITHDRAWN})  # the retention purge may remove
ENDED = frozenset(status for status, targets in TRANSITIONS.items() if not targets)


def update_if(consultation: ConsultationRequest, conditions: list[Any], values: dict[str, Any]) -> bool:
    """UPDATE the request only if `conditions` still hold in the database; True if it did.

    Claims, answers and patient actions all go through this, so that of two people acting on the
    same request at once exactly one wins, on SQLite and PostgreSQL alike.
    """
    model = type(consultation)
    # An UPDATE's result is a CursorResult, which has the rowcount; Session.execute is typed for any statement.
    result = cast(
        CursorResult,
        db.session.execute(
            update(model)
            .where(model.id == consultation.id, *conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.refresh(consultation)
    return result.rowcount == 1


def same_holder(consultation: ConsultationRequest) -> ColumnElement[bool]:
    """A condition: the request is still held by whoever holds it now (or still by nobody).

    A change that depends on who holds the request must not land if a claim, release or
    reassignment came in between."""
    column = type(consultation).claimed_by_id
    holder = consultation.claimed_by_id
    return column.is_(None) if holder is None else column == holder
