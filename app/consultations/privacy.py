"""The patient's data rights on the private page: a copy of their data, and erasure.

- `export_data` / `export_archive`: everything the patient gave us and everything we wrote to them
  (the request's fields, the messages they can read, the list of photos), as data.json in a zip
  with the stored photos. Internal notes, staff-only fields and the token hash never go in.
- `erase_consultation`: removes a request for good: its messages, photos (rows and files), response
  clocks, its unsent emails and the emails addressed to the patient, and its audit trail, leaving
  only one audit event without a request ("erased DRM-XXXXXX"; a reference is not health data).
  Its payment, if any, stays for the books, detached from the request.
  The retention command can call it too (action="purged").

The database goes first and files second: a failure before the commit leaves everything as it
was; a file that cannot be removed after it is logged (count only) and holds no row anyone can reach.
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from sqlalchemy import delete, or_, select, update

from app.consultations import audit
from app.consultations.audit import Actor
from app.consultations.conversation import patient_thread, reply_draft_key
from app.consultations.pending import PendingPhotos
from app.extensions import db
from app.models import (
    PENDING,
    AuditAction,
    AuditEvent,
    CheckIn,
    ConsultationRequest,
    Feedback,
    Message,
    OutboundEmail,
    PatientLink,
    Payment,
    PaymentStatus,
    Photo,
    ResponseClock,
)
from app.storage import PhotoStorage, StorageError
from app.timeutil import as_utc

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1
# Kept in memory up to this size, then in a temporary file (a request can carry a dozen large photos).
SPOOL_BYTES = 8 * 1024 * 1024

# The request's fields a patient gets back: what they told us and what happened to the request.
REQUEST_FIELDS = (
    "reference",
    "status",
    "language",
    "patient_name",
    "patient_email",
    "patient_phone",
    "date_of_birth",
    "sex",
    "condition_slug",
    "body_sites",
    "duration",
    "symptoms",
    "description",
    "medications",
    "allergies",
    "history",
    "history_notes",
    "consent_health_data_at",
    "consent_terms_at",
    "consent_version",
    "created_at",
    "first_response_at",
    "answered_at",
    "closed_at",
)
MESSAGE_FIELDS = ("body", "assessment", "treatment", "prescription_note", "follow_up")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def exported_photos(consultation: ConsultationRequest) -> list[tuple[Photo, str, str]]:
    """(photo, file name in the zip, what it came with) for every photo the patient sent."""
    numbers = {entry.message.id: n for n, entry in enumerate(patient_thread(consultation), start=1)}
    chosen: list[tuple[Photo, str, str]] = []
    for photo in consultation.photos:
        if photo.message_id is None:
            sent_with = "request"
        elif photo.message_id in numbers:
            sent_with = f"message {numbers[photo.message_id]}"
        else:
            continue  # photos only come with the request or a patient's reply; anything else stays out
        chosen.append((photo, f"photos/photo-{len(chosen) + 1:02d}.jpg", sent_with))
    return chosen


def export_data(consultation: ConsultationRequest) -> dict:
    """The patient's data as plain JSON-ready values (never internal notes or staff-only fields)."""
    messages = []
    for number, entry in enumerate(patient_thread(consultation), start=1):
        item = {"number": number, "kind": entry.kind, "created_at": _plain(entry.message.created_at)}
        if entry.author_name:
            item["dermatologist"] = entry.author_name
        item.update({name: getattr(entry.message, name) for name in MESSAGE_FIELDS if getattr(entry.message, name)})
        messages.append(item)
    photos = [
        {
            "file": name,
            "sent_with": sent_with,
            "width": photo.width,
            "height": photo.height,
            "bytes": photo.bytes,
            "sha256": photo.sha256,
            "created_at": _plain(photo.created_at),
            **{name: getattr(photo, name) for name in ("area", "body_site", "view") if getattr(photo, name)},
        }
        for photo, name, sent_with in exported_photos(consultation)
    ]
    request_data = {name: _plain(getattr(consultation, name)) for name in REQUEST_FIELDS}
    if consultation.triage_flags:
        request_data["red_flag_answers"] = list(consultation.triage_flags)
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "request": request_data,
        "messages": messages,
        "photos": photos,
    }
    if consultation.check_ins:
        data["check_ins"] = [
            {
                "weeks": check_in.weeks,
                "due_at": _plain(check_in.due_at),
                "sent_at": _plain(check_in.sent_at),
                "turned_off_at": _plain(check_in.cancelled_at),
                "progress": check_in.progress,
            }
            for check_in in consultation.check_ins
        ]
    if consultation.feedback is not None:
        data["feedback"] = {
            "rating": consultation.feedback.rating,
            "comment": consultation.feedback.comment,
            "created_at": _plain(consultation.feedback.created_at),
        }
    return data


def export_archive(consultation: ConsultationRequest, storage: PhotoStorage) -> IO[bytes]:
    """A zip with data.json and the stored photos, rewound and ready to send."""
    data = export_data(consultation)
    archive = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115  (the response closes it)
    with zipfile.ZipFile(archive, "w") as bundle:
        for (photo, name, _sent_with), entry in zip(exported_photos(consultation), data["photos"], strict=True):
            try:
                content = storage.read(photo.storage_key)
            except (StorageError, OSError):
                log.warning("privacy: a stored photo was missing from an export")
                entry["missing"] = True
                continue
            bundle.writestr(name, content, compress_type=zipfile.ZIP_STORED)  # JPEGs do not compress
        text = json.dumps(data, ensure_ascii=False, indent=2)
        bundle.writestr("data.json", text, compress_type=zipfile.ZIP_DEFLATED)
    archive.seek(0)
    return archive


# --- Erasure -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    reference: str
    files_removed: int
    files_left: int  # could not be removed (logged); no row points at them any more


def erase_consultation(
    consultation: ConsultationRequest,
    storage: PhotoStorage,
    upload_dir: str,
    *,
    actor: Actor,
    action: AuditAction = AuditAction.ERASED,
) -> Erasure:
    """Delete a request and everything about it, keep one audit event "<action> <reference>", commit,
    then remove its photo files (and any kept for a reply being corrected, under `upload_dir`)."""
    reference, request_id = consultation.reference, consultation.id
    keys = _photo_keys(request_id)
    try:
        _delete_rows(consultation)
        audit.record(action, actor, detail=f"{action.value} {reference}")
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    removed = _remove_files(storage, keys)
    # Photos kept for a reply that was being corrected go too.
    PendingPhotos(upload_dir, reply_draft_key(request_id, reference)).clear()
    return Erasure(reference=reference, files_removed=removed, files_left=len(keys) - removed)


def _photo_keys(request_id: int) -> list[str]:
    rows = db.session.execute(select(Photo.storage_key, Photo.thumbnail_key).where(Photo.request_id == request_id))
    return [key for row in rows for key in row]


def _delete_rows(consultation: ConsultationRequest) -> None:
    """Bulk deletes, children first, so nothing depends on the database's ON DELETE rules."""
    request_id = consultation.id
    # Check-ins point at messages, so they go before them.
    for model in (CheckIn, Feedback, Photo, Message, ResponseClock, PatientLink):
        db.session.execute(
            delete(model).where(model.request_id == request_id).execution_options(synchronize_session=False)
        )
    # Unsent emails must never go out about a request that is gone; sent ones to the patient carry
    # their address next to the reference. Staff alerts already sent stay, detached from the request.
    db.session.execute(
        delete(OutboundEmail)
        .where(
            OutboundEmail.request_id == request_id,
            or_(OutboundEmail.status == PENDING, OutboundEmail.recipient == consultation.patient_email),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(OutboundEmail)
        .where(OutboundEmail.request_id == request_id)
        .values(request_id=None)
        .execution_options(synchronize_session=False)
    )
    # A payment is a bookkeeping record (no health data): it stays, detached. One still awaited can
    # no longer queue anything, so a payment that arrives after all is refunded (app.consultations.payments).
    db.session.execute(
        update(Payment)
        .where(Payment.request_id == request_id, Payment.status == PaymentStatus.AWAITING.value)
        .values(status=PaymentStatus.ABANDONED.value)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Payment)
        .where(Payment.request_id == request_id)
        .values(request_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(AuditEvent).where(AuditEvent.request_id == request_id).execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(ConsultationRequest)
        .where(ConsultationRequest.id == request_id)
        .execution_options(synchronize_session=False)
    )
    # The objects already loaded are gone from the database: drop them so nothing flushes them again.
    db.session.expunge(consultation)


def _remove_files(storage: PhotoStorage, keys: list[str]) -> int:
    removed = 0
    for key in keys:
        try:
            storage.delete(key)
            removed += 1
        except OSError:
            pass
    if removed < len(keys):
        log.warning("privacy: %d photo files of an erased request could not be removed", len(keys) - removed)
    return removed
