"""`flask retention purge`: finished requests idle for longer than RETENTION_DAYS go, photos and all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, ConsultationRequest, Message, OutboundEmail, Photo
from app.outbox import EmailTemplate, enqueue
from tests.factories import make_consultation, make_photo, make_user, stored_files

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=45)
RECENTLY = NOW - timedelta(days=10)


@pytest.fixture(autouse=True)
def thirty_days(app):
    app.config["RETENTION_DAYS"] = 30


def request_made(at: datetime, status: str, **fields) -> ConsultationRequest:
    """A request as it was left at `at` (sent, answered or closed then, and untouched since)."""
    with time_machine.travel(at, tick=False):
        consultation, _ = make_consultation(created_at=at, status=status, **fields)
        if status == "closed":
            consultation.closed_at = at
        if status in ("answered", "closed"):
            consultation.answered_at = at
        db.session.commit()
        return consultation


def references() -> set[str]:
    db.session.expire_all()
    return set(db.session.execute(select(ConsultationRequest.reference)).scalars())


def purge(runner, *args: str):
    with time_machine.travel(NOW, tick=False):
        result = runner.invoke(args=["retention", "purge", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_only_finished_requests_idle_for_longer_than_retention_days_go(app, runner):
    closed_long_ago = request_made(LONG_AGO, "closed")
    withdrawn_long_ago = request_made(LONG_AGO, "withdrawn")
    answered_long_ago = request_made(LONG_AGO, "answered")
    closed_recently = request_made(RECENTLY, "closed")
    open_long_ago = request_made(LONG_AGO, "submitted")
    waiting_long_ago = request_made(LONG_AGO, "awaiting_patient")
    answered_with_a_recent_reply = request_made(LONG_AGO, "answered")
    with time_machine.travel(RECENTLY, tick=False):
        db.session.add(Message(request_id=answered_with_a_recent_reply.id, kind="patient_reply", body="Better now."))
        db.session.commit()
    kept = {
        closed_recently.reference,
        open_long_ago.reference,
        waiting_long_ago.reference,
        answered_with_a_recent_reply.reference,
    }
    gone = {closed_long_ago.reference, withdrawn_long_ago.reference, answered_long_ago.reference}

    output = purge(runner)
    assert "Purged 3 request(s) idle for more than 30 days" in output
    assert references() == kept
    purged = db.session.execute(select(AuditEvent).where(AuditEvent.action == "purged")).scalars().all()
    assert {event.detail for event in purged} == {f"purged {reference}" for reference in gone}
    assert all(event.actor_kind == "system" and event.request_id is None for event in purged)


def test_photos_messages_and_the_patients_emails_go_with_the_request(app, runner):
    derm = make_user("dermatologist")
    consultation = request_made(LONG_AGO, "closed", patient_name="Ona Petraitienė", email="ona@example.com")
    keep = request_made(RECENTLY, "closed")
    with time_machine.travel(LONG_AGO, tick=False):
        make_photo(consultation)
        make_photo(keep)
        db.session.add(Message(request_id=consultation.id, kind="answer", author_id=derm.id, assessment="Eczema."))
        enqueue("ona@example.com", EmailTemplate.PATIENT_REPLY_READY, consultation=consultation)
        db.session.commit()
    upload_dir = Path(app.config["UPLOAD_DIR"])
    assert len(stored_files(upload_dir)) == 4

    output = purge(runner)
    assert "2 photo file(s) removed" in output
    assert stored_files(upload_dir) == sorted([keep.photos[0].storage_key, keep.photos[0].thumbnail_key])
    assert db.session.execute(select(Photo.request_id)).scalars().all() == [keep.id]
    assert db.session.execute(select(Message)).first() is None
    assert db.session.execute(select(OutboundEmail).where(OutboundEmail.recipient == "ona@example.com")).first() is None
    details = " ".join(event.detail or "" for event in db.session.execute(select(AuditEvent)).scalars())
    assert "Ona" not in details and "ona@example.com" not in details and "Eczema" not in details


def test_dry_run_lists_what_would_go_and_changes_nothing(app, runner):
    consultation = request_made(LONG_AGO, "closed")
    make_photo(consultation)
    files = stored_files(app.config["UPLOAD_DIR"])
    output = purge(runner, "--dry-run")
    assert "Would purge 1 request(s)" in output and consultation.reference in output
    assert references() == {consultation.reference}
    assert stored_files(app.config["UPLOAD_DIR"]) == files
    assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "purged")).first() is None


def test_nothing_to_purge_is_said_plainly(app, runner):
    request_made(RECENTLY, "closed")
    assert "Purged 0 request(s)" in purge(runner)
