"""The retention rule: a request is kept while it can still matter to the patient or the clinic.

Once it is closed, withdrawn, or answered, and nothing has happened to it (no message, no change)
for RETENTION_DAYS, it goes with everything about it: messages, photos (rows and files), response
clocks, emails to the patient and its audit trail, through the same erasure the patient can ask for
(privacy.erase_consultation), leaving one audit event "purged DRM-XXXXXX" (no health data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.consultations.audit import Actor
from app.consultations.privacy import erase_consultation
from app.consultations.states import FINISHED
from app.extensions import db
from app.models import AuditAction, ConsultationRequest
from app.storage import PhotoStorage
from app.timeutil import as_utc

# Open requests (submitted, in review, awaiting the patient) are never purged, however old.
FINISHED_STATUSES = FINISHED


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


def purge(now: datetime, retention_days: int, storage: PhotoStorage, upload_dir: str) -> Purged:
    """Erase every request due for purging; each one is committed on its own (a re-run picks up the rest)."""
    references, removed, left = [], 0, 0
    for consultation in due_for_purge(now, retention_days):
        erasure = erase_consultation(consultation, storage, upload_dir, actor=Actor.system(), action=AuditAction.PURGED)
        references.append(erasure.reference)
        removed += erasure.files_removed
        left += erasure.files_left
    return Purged(references=references, files_removed=removed, files_left=left)
