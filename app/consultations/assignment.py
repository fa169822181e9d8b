"""Automatic assignment (AUTO_ASSIGN): a new request, or one given back, goes to the dermatologist on
duty with the fewest open requests; of equals, the one who was given a request longest ago (round
robin). With nobody on duty it waits unassigned, and the worker offers it, each round, to whoever
comes on duty first. Claiming by hand keeps working: assignment only ever takes a request nobody holds.

Race-proof like claiming: the assignment is one conditional UPDATE that lands only if the request
is still unheld and open, and only if the chosen dermatologist's open count is still the one the
choice was made on (otherwise the choice is made again). On PostgreSQL the chosen dermatologist's
row is locked first, so two processes choosing the same person take turns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from app.consultations import audit, notify, rota
from app.consultations.audit import Actor
from app.consultations.policies import Policies, StaffAlerts
from app.consultations.states import OPEN, Status, update_if
from app.extensions import db
from app.models import AuditAction, ConsultationRequest, User

log = logging.getLogger(__name__)
ATTEMPTS = 5


def choose(
    candidates: Iterable[int], loads: Mapping[int, int], last_given: Mapping[int, datetime | None]
) -> int | None:
    """The candidate with the fewest open requests; of equals, the one given a request longest ago
    (never counts as longest), then the lowest id."""
    ordered = sorted(
        candidates, key=lambda i: (loads.get(i, 0), last_given.get(i) is not None, last_given.get(i) or 0, i)
    )
    return ordered[0] if ordered else None


def open_loads(user_ids: list[int]) -> dict[int, int]:
    """How many open requests (a reply owed) each of these dermatologists holds."""
    query = (
        select(ConsultationRequest.claimed_by_id, func.count(ConsultationRequest.id))
        .where(ConsultationRequest.claimed_by_id.in_(user_ids), ConsultationRequest.status.in_(OPEN))
        .group_by(ConsultationRequest.claimed_by_id)
    )
    return {user_id: count for user_id, count in db.session.execute(query) if user_id is not None}


def last_given(user_ids: list[int]) -> dict[int, datetime | None]:
    """When each dermatologist last took or was given a request (claimed_at of what they hold or held)."""
    query = (
        select(ConsultationRequest.claimed_by_id, func.max(ConsultationRequest.claimed_at))
        .where(ConsultationRequest.claimed_by_id.in_(user_ids))
        .group_by(ConsultationRequest.claimed_by_id)
    )
    return {user_id: moment for user_id, moment in db.session.execute(query) if user_id is not None}


def _load_still(user_id: int, count: int):
    """A condition: this dermatologist still holds exactly `count` open requests."""
    other = aliased(ConsultationRequest)
    holding = (
        select(func.count(other.id)).where(other.claimed_by_id == user_id, other.status.in_(OPEN)).scalar_subquery()
    )
    return holding == count


_TAKEN = case(
    (ConsultationRequest.status == Status.SUBMITTED, Status.IN_REVIEW.value), else_=ConsultationRequest.status
)


def offer(
    consultation: ConsultationRequest,
    on_duty: list[User],
    now: datetime,
    alerts: StaffAlerts,
) -> User | None:
    """Give this unheld open request to the best placed of `on_duty`; commits. None if it stays
    unassigned (nobody suitable, or someone claimed it first)."""
    declined = set(consultation.declined_by_ids or ())
    candidates = {user.id: user for user in on_duty if user.id not in declined}
    for _attempt in range(ATTEMPTS):
        if consultation.claimed_by_id is not None or consultation.status not in OPEN or not candidates:
            return None
        ids = sorted(candidates)
        loads = open_loads(ids)
        chosen = choose(ids, loads, last_given(ids))
        if chosen is None:
            return None
        # PostgreSQL: wait for anyone else assigning to the same person (SQLite writes one at a time anyway).
        db.session.execute(select(User.id).where(User.id == chosen).with_for_update())
        won = update_if(
            consultation,
            [
                ConsultationRequest.claimed_by_id.is_(None),
                ConsultationRequest.status.in_(OPEN),
                _load_still(chosen, loads.get(chosen, 0)),
            ],
            {"claimed_by_id": chosen, "claimed_at": now, "status": _TAKEN, "updated_at": now},
        )
        if won:
            user = candidates[chosen]
            event = audit.record(
                AuditAction.ASSIGNED, Actor.system(), consultation=consultation, detail=f"user {user.id}"
            )
            db.session.flush()
            notify.request_assigned(consultation, user, event.id, alerts)
            db.session.commit()
            return user
        db.session.rollback()  # someone claimed it, or the chosen one was just given another: look again
        db.session.refresh(consultation)
    return None


def offer_new(consultation: ConsultationRequest, now: datetime, policies: Policies) -> User | None:
    """Right after a request arrives or is given back: offer it to whoever is on duty now.

    Never fails the action that called it: if the database refuses, the worker offers it next round.
    """
    if not policies.assignment.enabled:
        return None
    try:
        return offer(consultation, rota.on_duty_dermatologists(policies.rota, now), now, policies.alerts)
    except SQLAlchemyError as error:
        db.session.rollback()
        log.warning("assignment: left for the worker (%s)", type(error).__name__)
        return None


def offer_waiting(policies: Policies, now: datetime) -> dict[str, int]:
    """The worker's round: every open request nobody holds, soonest due first, to whoever is on duty."""
    if not policies.assignment.enabled:
        return {"assigned": 0}
    waiting = (
        db.session.execute(
            select(ConsultationRequest.id)
            .where(ConsultationRequest.status.in_(OPEN), ConsultationRequest.claimed_by_id.is_(None))
            .order_by(ConsultationRequest.due_at.asc().nulls_last(), ConsultationRequest.id)
        )
        .scalars()
        .all()
    )
    assigned = 0
    if not waiting:
        return {"assigned": 0}
    on_duty = rota.on_duty_dermatologists(policies.rota, now)
    if not on_duty:
        return {"assigned": 0}
    for request_id in waiting:
        consultation = db.session.get(ConsultationRequest, request_id)
        if consultation is not None and offer(consultation, on_duty, now, policies.alerts) is not None:
            assigned += 1
    return {"assigned": assigned}
