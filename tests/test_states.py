"""The status machine in one table, the database refusing unknown statuses, and the audit vocabulary."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.consultations import audit
from app.consultations.audit import Actor
from app.consultations.states import (
    ENDED,
    FINISHED,
    OPEN,
    RESOLVABLE,
    TRANSITIONS,
    WITHDRAWABLE,
    WORKABLE,
    Status,
    may_move,
    sources,
)
from app.extensions import db
from app.models import AuditAction
from tests.factories import make_consultation


def test_every_status_has_a_row_and_only_closed_and_withdrawn_end():
    assert set(TRANSITIONS) == set(Status)
    assert {Status.CLOSED, Status.WITHDRAWN} == ENDED


def test_the_named_groups_follow_from_the_table():
    assert {Status.SUBMITTED, Status.IN_REVIEW, Status.AWAITING_PATIENT} == WITHDRAWABLE
    assert {Status.SUBMITTED, Status.IN_REVIEW, Status.AWAITING_PATIENT, Status.ANSWERED} == RESOLVABLE
    assert sources(Status.ANSWERED) == {Status.IN_REVIEW, Status.AWAITING_PATIENT}
    assert OPEN < WORKABLE and not OPEN & FINISHED
    assert may_move("submitted", Status.IN_REVIEW) and not may_move("closed", Status.SUBMITTED)
    assert not may_move("answered", Status.WITHDRAWN)  # after an answer it is "resolved", not withdrawn


def test_the_database_refuses_a_status_it_does_not_know(app):
    consultation, _ = make_consultation()
    with pytest.raises(IntegrityError):
        db.session.execute(
            text("UPDATE consultation_requests SET status = 'lost' WHERE id = :id"), {"id": consultation.id}
        )
    db.session.rollback()


def test_the_audit_log_accepts_only_known_actions(app):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record("looked_around", Actor.system())  # type: ignore[arg-type]
    event = audit.record(AuditAction.PURGED, Actor.system(), detail="purged DRM-TEST00")
    assert (event.action, event.actor_kind, event.ip) == ("purged", "system", None)
