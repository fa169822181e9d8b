"""The patient's side of the conversation on the private page: what they may do, and doing it.

- The thread as the patient sees it: answers and questions from the dermatologist (with their name)
  and the patient's own replies with their photos. Internal notes never leave this module's filter.
- Replying: when the dermatologist asked a question (awaiting_patient), and also after an answer,
  for PATIENT_FOLLOW_UP_DAYS days: a worried patient whose cream stings, or whose rash did not settle, should be
  able to tell the dermatologist who knows the case rather than start again with a new request.
  A reply goes back to the same dermatologist with a new 24-hour due time.
- Marking the consultation resolved (after an answer) or withdrawing it (before one). Either stops
  a running clock so the request leaves the queue and raises no alert.

State changes are conditional UPDATEs, so a double click, two tabs, or the patient and the
dermatologist acting at the same moment can never both win. Each action commits its own change
(a reply's photo files and rows land together, or neither).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import FileStorage

from app.consultations import audit, check_ins, clock, notify, refunds, uploads
from app.consultations.audit import Actor
from app.consultations.pending import PendingPhotos
from app.consultations.photo_views import Slot
from app.consultations.policies import CheckInPolicy, FollowUpPolicy, Policies
from app.consultations.states import RESOLVABLE, WITHDRAWABLE, Status, same_holder, update_if
from app.extensions import db
from app.models import ANSWER, PATIENT_REPLY, QUESTION, AuditAction, ConsultationRequest, Message, Photo
from app.photos import CleanPhoto, PhotoLimits
from app.storage import PhotoStorage
from app.timeutil import as_utc

log = logging.getLogger(__name__)

MAX_REPLY_LENGTH = 5000
# A second identical reply this soon after the first is the same press of "Send" arriving twice.
DUPLICATE_WINDOW = timedelta(minutes=5)
# Everything the patient sees from the dermatologist or wrote themselves; never internal notes.
PATIENT_VISIBLE_KINDS = (ANSWER, QUESTION, PATIENT_REPLY)
# Withdrawing (states.WITHDRAWABLE) is for a request no dermatologist has answered yet; after an
# answer it is "resolved" (states.RESOLVABLE).

# Reply kinds the page offers.
ANSWER_QUESTION = "answer_question"
FOLLOW_UP = "follow_up"
CHECK_IN = "check_in"  # the dermatologist's check-in email came: how is it going, with new photos

NOTHING_TO_SEND = _l("Write your reply, or add a photo.")
CANNOT_REPLY = _l(
    "This consultation is not waiting for a message from you at the moment, so nothing was sent. "
    "Your text is still below."
)
CANNOT_RESOLVE = _l("This consultation cannot be marked as resolved now.")
CANNOT_WITHDRAW = _l("This request can no longer be withdrawn.")

# Control characters other than tab and line breaks (NUL above all) have no place in a message,
# and PostgreSQL refuses NUL in text outright.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class PatientActionRefused(Exception):
    """The patient cannot do this now; the message says why, in words fit for them."""


# --- What the patient sees and may do ----------------------------------------------------------


@dataclass(frozen=True)
class ThreadEntry:
    """One message in the thread as the patient sees it."""

    message: Message
    photos: list[Photo]
    author_name: str | None  # the dermatologist's name; None for the patient's own replies

    @property
    def kind(self) -> str:
        return self.message.kind


def patient_thread(consultation: ConsultationRequest, messages: Iterable[Message] | None = None) -> list[ThreadEntry]:
    """The messages the patient may read, in thread order, each with its photos. Never internal notes."""
    chosen = consultation.messages if messages is None else messages
    entries = []
    for message in (m for m in chosen if m.kind in PATIENT_VISIBLE_KINDS):
        photos = [p for p in consultation.photos if p.message_id is not None and p.message_id == message.id]
        author = message.author.name if message.author is not None and message.kind != PATIENT_REPLY else None
        entries.append(ThreadEntry(message=message, photos=photos, author_name=author))
    return entries


def follow_up_until(consultation: ConsultationRequest, follow_up: FollowUpPolicy) -> datetime | None:
    """Until when a follow-up may be written after the latest answer (None: no answer yet)."""
    return follow_up.until(consultation.answered_at)


@dataclass(frozen=True)
class PatientChoices:
    """What the private page offers: a reply (to a question, or a follow-up), resolve, withdraw."""

    reply: str | None
    resolve: bool
    withdraw: bool
    follow_up_until: datetime | None


def patient_choices(
    consultation: ConsultationRequest,
    now: datetime,
    follow_up: FollowUpPolicy,
    check_in_policy: CheckInPolicy | None = None,
) -> PatientChoices:
    status = consultation.status
    until = follow_up_until(consultation, follow_up)
    check_in = check_ins.open_for_reply(consultation, now, check_in_policy) if check_in_policy else None
    reply = None
    if status == Status.AWAITING_PATIENT:
        reply = ANSWER_QUESTION
    elif status == Status.ANSWERED and check_in is not None:
        reply = CHECK_IN
        until = check_in_policy.reply_until(check_in.sent_at) if check_in_policy else until
    elif status == Status.ANSWERED and until is not None and as_utc(now) <= until:
        reply = FOLLOW_UP
    answered = consultation.answered_at is not None or status == Status.ANSWERED
    return PatientChoices(
        reply=reply,
        resolve=answered and status in RESOLVABLE,
        withdraw=not answered and status in WITHDRAWABLE,
        follow_up_until=until if status == Status.ANSWERED else None,
    )


# --- Replying ------------------------------------------------------------------------------------


def clean_text(text: str | None) -> str:
    """The reply as it will be stored: control characters removed, surrounding space trimmed."""
    return _CONTROL_CHARACTERS.sub("", text or "").strip()


def reply_draft_key(request_id: int, reference: str) -> str:
    """The key of the folder that keeps a reply's photos while the form is being corrected.

    Derived from the request, so the one place to look is known when the reply is sent or the
    request erased; only ever used server-side, behind the private link.
    """
    return hashlib.sha256(f"reply:{request_id}:{reference}".encode()).hexdigest()


def collect_reply_photos(
    files: Iterable[FileStorage],
    kept_ids: Iterable[str],
    draft: PendingPhotos,
    limits: PhotoLimits,
    max_photos: int,
    slotted: Sequence[tuple[FileStorage, Slot]] = (),
) -> uploads.PhotoBatch:
    """The reply's photos through the intake pipeline; unlike intake, a reply may have none.

    A check-in reply sends them in guided slots (`slotted`), the same areas and views as the first ones."""
    chosen = uploads.chosen_files(files)
    available = set(draft.ids())
    kept = [photo_id for photo_id in dict.fromkeys(kept_ids) if photo_id in available]
    if not chosen and not kept and not slotted:
        draft.keep_only([])
        return uploads.PhotoBatch()
    return uploads.collect(chosen, kept, draft, limits, max_photos, slotted=slotted)


@dataclass(frozen=True)
class ReplyResult:
    message: Message
    duplicate: bool  # the same reply had just been stored (a double press of "Send")


def reply(
    consultation: ConsultationRequest,
    text: str,
    photos: Sequence[CleanPhoto],
    *,
    now: datetime,
    policies: Policies,
    storage: PhotoStorage,
    address: str | None = None,
    progress: str | None = None,
) -> ReplyResult:
    """Store the patient's reply and its photos, send the request back to the dermatologist, commit.

    Within a check-in's window the reply answers the check-in (`progress`: better, same or worse).

    All or nothing: on any failure the transaction is rolled back and the photo files written are
    removed. Raises PatientActionRefused when the request is not waiting for the patient.
    """
    body = clean_text(text)
    if not body and not photos:
        raise PatientActionRefused(NOTHING_TO_SEND)
    written: list[str] = []
    try:
        if not _back_to_the_dermatologist(consultation, now, policies):
            db.session.rollback()
            earlier = _same_reply_just_sent(consultation, body, now)
            if earlier is not None:
                return ReplyResult(earlier, duplicate=True)
            raise PatientActionRefused(CANNOT_REPLY)
        stored = uploads.write_photos(photos, storage, written)
        message = _record_reply(consultation, body, stored, now, policies, Actor.patient(address), progress)
        db.session.commit()
        return ReplyResult(message, duplicate=False)
    except BaseException:
        db.session.rollback()
        uploads.remove_files(storage, written)
        raise


def _back_to_the_dermatologist(consultation: ConsultationRequest, now: datetime, policies: Policies) -> bool:
    """Move the request back to the queue, if it is (still) waiting for the patient.

    The dermatologist holding it keeps it (in_review); if nobody does, it waits for one (submitted),
    as a released request does.
    """
    allowed = ConsultationRequest.status == Status.AWAITING_PATIENT
    if check_ins.open_for_reply(consultation, now, policies.check_ins) is not None:
        allowed = allowed | (ConsultationRequest.status == Status.ANSWERED)
    elif consultation.answered_at is not None:
        since = as_utc(now) - timedelta(days=policies.follow_up.days)
        allowed = allowed | (
            (ConsultationRequest.status == Status.ANSWERED) & (ConsultationRequest.answered_at >= since)
        )
    status = Status.IN_REVIEW if consultation.claimed_by_id is not None else Status.SUBMITTED
    # The new status depends on who holds the request: a claim or release in between means start again.
    return update_if(consultation, [allowed, same_holder(consultation)], {"status": status.value, "updated_at": now})


def _record_reply(
    consultation: ConsultationRequest,
    body: str,
    stored: Sequence[tuple[CleanPhoto, str, str]],
    now: datetime,
    policies: Policies,
    actor: Actor,
    progress: str | None = None,
) -> Message:
    message = Message(kind=PATIENT_REPLY, author_id=None, body=body or None, created_at=now)
    consultation.messages.append(message)
    db.session.flush()  # the message id, for its photos, the audit row and the email's dedupe key
    consultation.photos.extend(uploads.photo_rows(stored, now, message_id=message.id))
    check_ins.attach_reply(consultation, message, progress, now, policies)  # before the round's clock starts
    clock.next_round(consultation, now, policies.response)
    detail = f"message {message.id}, {len(stored)} photos"
    audit.record(AuditAction.PATIENT_REPLIED, actor, consultation=consultation, detail=detail)
    notify.patient_replied(consultation, policies.alerts, message)
    return message


def reply_just_sent(consultation: ConsultationRequest, text: str | None, now: datetime) -> Message | None:
    """The patient's reply with this text stored moments ago (a second press of "Send"), if any."""
    return _same_reply_just_sent(consultation, clean_text(text), now)


def _same_reply_just_sent(consultation: ConsultationRequest, body: str, now: datetime) -> Message | None:
    db.session.refresh(consultation)
    replies = [m for m in consultation.messages if m.kind == PATIENT_REPLY]
    if not replies:
        return None
    latest = max(replies, key=lambda m: m.id)
    recent = as_utc(now) - as_utc(latest.created_at) <= DUPLICATE_WINDOW
    return latest if recent and (latest.body or "") == body else None


# --- Resolved and withdrawn ----------------------------------------------------------------------


def resolve(consultation: ConsultationRequest, now: datetime, *, address: str | None = None) -> None:
    """The patient is done after an answer: closed, and any follow-up clock still running stops."""
    moved = update_if(
        consultation,
        [
            ConsultationRequest.status.in_(RESOLVABLE),
            (ConsultationRequest.answered_at.is_not(None)) | (ConsultationRequest.status == Status.ANSWERED),
        ],
        _ended(Status.CLOSED, now),
    )
    if not moved:
        db.session.rollback()
        raise PatientActionRefused(CANNOT_RESOLVE)
    audit.record(AuditAction.RESOLVED, Actor.patient(address), consultation=consultation)
    db.session.commit()


def withdraw(consultation: ConsultationRequest, now: datetime, *, address: str | None = None) -> None:
    """The patient no longer wants an answer: withdrawn, out of the queue, no more alerts; a paid
    request's price goes back (refunds.refund_withdrawn), as nobody has answered yet.

    The round's clock keeps no stop time: it was cancelled, not met or missed (see app.staff.figures.RoundFacts).
    """
    moved = update_if(
        consultation,
        [ConsultationRequest.status.in_(WITHDRAWABLE), ConsultationRequest.answered_at.is_(None)],
        _ended(Status.WITHDRAWN, now),
    )
    if not moved:
        db.session.rollback()
        raise PatientActionRefused(CANNOT_WITHDRAW)
    audit.record(AuditAction.WITHDRAWN, Actor.patient(address), consultation=consultation)
    refunds.refund_withdrawn(consultation, now)  # paid and not yet answered: the money goes back
    db.session.commit()


def _ended(status: Status, now: datetime) -> dict:
    # closed_at for a withdrawal too: retention counts from the moment a request ended, however it ended.
    return {"status": status.value, "closed_at": now, "due_at": None, "clock_started_at": None, "updated_at": now}
