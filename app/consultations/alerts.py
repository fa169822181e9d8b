"""Alerts for the 24-hour target (run by `flask sla check` and `flask worker`): find open requests
that are at risk or overdue and queue their alerts once.

Safe to run twice, or on several machines at the same moment: every alert has a dedupe key
(request, round, recipient) with a unique constraint, and app.outbox.enqueue inserts in a
savepoint, so the loser of a race queues nothing and carries on.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.consultations import notify
from app.consultations.clock import AT_RISK, OVERDUE, clock_state
from app.consultations.policies import Policies
from app.consultations.states import OPEN
from app.extensions import db
from app.models import ConsultationRequest
from app.timeutil import utcnow


def check(policies: Policies, now: datetime | None = None) -> dict[str, int]:
    """Queue at-risk and overdue alerts that are not queued yet.

    Returns counts: requests newly alerted as at risk / overdue, and emails queued.
    Commits after each request so that a long run never holds the database.
    """
    now = now or utcnow()
    counts = {AT_RISK: 0, OVERDUE: 0, "emails": 0}
    # Few requests are open at any time, and in the clinic calendar "at risk" depends on opening
    # hours rather than on a fixed distance from due_at, so the state is decided in Python.
    open_ids = (
        db.session.execute(
            select(ConsultationRequest.id)
            .where(ConsultationRequest.status.in_(OPEN), ConsultationRequest.due_at.is_not(None))
            .order_by(ConsultationRequest.due_at)
        )
        .scalars()
        .all()
    )
    for request_id in open_ids:
        consultation = db.session.get(ConsultationRequest, request_id)
        if consultation is None or consultation.due_at is None or not consultation.is_open:
            continue  # answered or withdrawn since the list was read
        state = clock_state(consultation.due_at, now, policies.response, consultation.response_target_hours)
        if state == AT_RISK:
            queued = notify.sla_at_risk(consultation, policies.alerts)
        elif state == OVERDUE:
            queued = notify.sla_overdue(consultation, policies.alerts)
        else:
            continue
        db.session.commit()
        counts[state] += 1 if queued else 0
        counts["emails"] += queued
    return counts
