"""The escalation ladder for the 24-hour target (run by `flask sla check` and `flask worker`): find
open requests that are at risk or overdue and take each step of the ladder once per round.

1. at risk (SLA_WARNING_HOURS or less left) -> the dermatologist holding the request, while on duty;
   otherwise every dermatologist on duty. With nobody on duty the step waits for someone to come on
   duty (the coverage forecast has warned staff about such gaps ahead of time).
2. overdue -> the staff alert addresses (STAFF_ALERT_EMAILS).
3. still overdue ESCALATE_AFTER_HOURS after the due moment -> the medical lead(s), on duty or not.

A request first seen when it is already overdue skips the at-risk step. Safe to run twice, or on
several machines at the same moment: each step taken is a row with a unique (request, round, step)
index, committed with its emails, and every email has a dedupe key (request, round, recipient) too;
the loser of a race inserts nothing and carries on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.consultations import notify
from app.consultations.clock import AT_RISK, OVERDUE, clock_state
from app.consultations.policies import Policies
from app.consultations.states import OPEN
from app.extensions import db
from app.models import ConsultationRequest, EscalationStep, User
from app.timeutil import as_utc, utcnow

LEAD = "medical_lead"
LADDER = (AT_RISK, OVERDUE, LEAD)


def steps_due(state: str, due_at: datetime, now: datetime, policies: Policies) -> list[str]:
    """The ladder's steps that apply now to a round in `state` (each is still taken only once)."""
    if state == AT_RISK:
        return [AT_RISK]
    if state != OVERDUE:
        return []
    lead_after = timedelta(hours=policies.escalation.lead_after_hours)
    return [OVERDUE, LEAD] if as_utc(now) >= as_utc(due_at) + lead_after else [OVERDUE]


def step_taken(consultation: ConsultationRequest, step: str) -> bool:
    query = select(EscalationStep.id).where(
        EscalationStep.request_id == consultation.id,
        EscalationStep.round == consultation.response_round,
        EscalationStep.step == step,
    )
    return db.session.execute(query).first() is not None


def _claim_step(consultation: ConsultationRequest, step: str, now: datetime, recipients: int) -> bool:
    """Record the step for this round; False if it was already taken (here, or by another worker)."""
    if step_taken(consultation, step):
        return False
    try:
        with db.session.begin_nested():
            db.session.add(
                EscalationStep(
                    request_id=consultation.id,
                    round=consultation.response_round,
                    step=step,
                    taken_at=now,
                    recipients=recipients,
                )
            )
    except IntegrityError:
        return False
    return True


def _recipients(step: str, consultation: ConsultationRequest, on_duty: list[User], policies: Policies):
    if step == AT_RISK:
        return notify.at_risk_recipients(consultation, on_duty)
    if step == OVERDUE:
        return notify.staff_recipients(policies.alerts, include_dermatologists=False)
    return notify.people(notify.medical_leads())


def _take(step: str, consultation: ConsultationRequest, recipients, policies: Policies) -> int:
    if step == AT_RISK:
        return notify.sla_at_risk(consultation, policies.alerts, recipients)
    if step == OVERDUE:
        return notify.sla_overdue(consultation, policies.alerts, recipients)
    return notify.sla_escalated(consultation, policies.alerts, recipients, policies.escalation.lead_after_hours)


def check(policies: Policies, now: datetime | None = None) -> dict[str, int]:
    """Take the ladder's steps that are due and not taken yet.

    Returns counts: requests newly at risk / overdue / escalated to the medical lead, and emails queued.
    Commits after each request so that a long run never holds the database.
    """
    now = now or utcnow()
    counts = {AT_RISK: 0, OVERDUE: 0, LEAD: 0, "emails": 0}
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
    on_duty: list[User] | None = None
    for request_id in open_ids:
        consultation = db.session.get(ConsultationRequest, request_id)
        if consultation is None or consultation.due_at is None or not consultation.is_open:
            continue  # answered or withdrawn since the list was read
        state = clock_state(consultation.due_at, now, policies.response, consultation.response_target_hours)
        for step in steps_due(state, consultation.due_at, now, policies):
            if step_taken(consultation, step):
                continue
            if on_duty is None:  # read once per run, and only when some step is due
                on_duty = notify.on_duty_dermatologists(now, policies.rota)
            recipients = _recipients(step, consultation, on_duty, policies)
            if not recipients or not _claim_step(consultation, step, now, len(recipients)):
                continue  # nobody to tell yet, or another worker took the step
            queued = _take(step, consultation, recipients, policies)
            db.session.commit()
            counts[step] += 1
            counts["emails"] += queued
    return counts
