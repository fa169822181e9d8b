"""`flask retention purge`: remove requests nobody has touched for longer than RETENTION_DAYS.

A request is kept while it can still matter to the patient or the clinic. Once it is closed,
withdrawn, or answered, and nothing has happened to it (no message, no change) for RETENTION_DAYS,
it goes with everything about it: messages, photos (rows and files), response clocks, emails to
the patient and its audit trail, through the same erasure the patient can ask for
(app.intake.privacy.erase_consultation), leaving one audit event "purged DRM-XXXXXX" (no health data).

Run it daily (cron or a systemd timer); `--dry-run` lists what would go and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import ANSWERED, CLOSED, WITHDRAWN, ConsultationRequest
from app.storage import PhotoStorage, photo_storage
from app.timeutil import as_utc, utcnow

# Open requests (submitted, in review, awaiting the patient) are never purged, however old.
FINISHED_STATUSES = (CLOSED, WITHDRAWN, ANSWERED)


@dataclass(frozen=True)
class Purged:
    references: list[str]
    files_removed: int
    files_left: int


def last_activity(consultation: ConsultationRequest) -> datetime:
    """The latest moment anything happened to a request: a change, an answer, closing, a message."""
    moments = [
        consultation.created_at,
        consultation.updated_at,
        consultation.answered_at,
        consultation.closed_at,
        *(message.created_at for message in consultation.messages),
    ]
    return max(as_utc(moment) for moment in moments if moment is not None)


def due_for_purge(now: datetime, retention_days: int) -> list[ConsultationRequest]:
    """Finished requests idle for longer than `retention_days`, oldest first."""
    cutoff = now - timedelta(days=retention_days)
    candidates = db.session.execute(
        select(ConsultationRequest)
        # Created before the cutoff is necessary (not sufficient): it keeps the candidates few.
        .where(ConsultationRequest.status.in_(FINISHED_STATUSES), ConsultationRequest.created_at < cutoff)
        .options(selectinload(ConsultationRequest.messages))
        .order_by(ConsultationRequest.created_at)
    ).scalars()
    return [consultation for consultation in candidates if last_activity(consultation) < cutoff]


def purge(now: datetime, retention_days: int, storage: PhotoStorage) -> Purged:
    """Erase every request due for purging; each one is committed on its own (a re-run picks up the rest)."""
    # Imported here so that `flask` starts even while the patient pages are being changed.
    from app.intake.privacy import erase_consultation

    references, removed, left = [], 0, 0
    for consultation in due_for_purge(now, retention_days):
        erasure = erase_consultation(consultation, storage, action="purged")
        references.append(erasure.reference)
        removed += erasure.files_removed
        left += erasure.files_left
    return Purged(references=references, files_removed=removed, files_left=left)


@click.group("retention", help="Remove requests kept longer than RETENTION_DAYS.")
def commands() -> None:
    pass


@commands.command("purge")
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@with_appcontext
def purge_command(dry_run: bool) -> None:
    """Remove closed, withdrawn and answered requests idle for longer than RETENTION_DAYS."""
    days = int(current_app.config["RETENTION_DAYS"])
    now = utcnow()
    if dry_run:
        due = [c.reference for c in due_for_purge(now, days)]
        db.session.rollback()
        click.echo(f"Would purge {len(due)} request(s) idle for more than {days} days.")
        for reference in due:
            click.echo(f"  {reference}")
        return
    result = purge(now, days, photo_storage())
    click.echo(
        f"Purged {len(result.references)} request(s) idle for more than {days} days; "
        f"{result.files_removed} photo file(s) removed."
    )
    if result.files_left:
        click.echo(f"{result.files_left} photo file(s) could not be removed; `flask photos orphans --delete` retries.")
