"""Consultation requests, their photos, the patient-dermatologist thread and the response clocks."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.consultations.states import OPEN, Status
from app.extensions import Model, db
from app.models.types import UTCDateTime
from app.timeutil import utcnow

# The statuses, their groups and the allowed moves live in app.consultations.states; these names
# are the same members, for code that reads better with a bare name.
SUBMITTED = Status.SUBMITTED
IN_REVIEW = Status.IN_REVIEW
AWAITING_PATIENT = Status.AWAITING_PATIENT
ANSWERED = Status.ANSWERED
CLOSED = Status.CLOSED
WITHDRAWN = Status.WITHDRAWN
STATUSES = tuple(Status)
OPEN_STATUSES = OPEN

# No 0/O, 1/I/L: a patient reading the reference over the phone should not have to guess.
STATUS_CHECK = "status IN ({})".format(", ".join(f"'{status.value}'" for status in Status))

REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_reference() -> str:
    """A short, human-readable, non-sequential reference such as DRM-7K3Q9X."""
    return "DRM-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))


def new_access_token() -> str:
    """The secret in the patient's private link; only its hash is stored."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ConsultationRequest(Model):
    __tablename__ = "consultation_requests"
    __table_args__ = (
        Index("ix_requests_status_due", "status", "due_at"),
        Index("ix_requests_claimed_status", "claimed_by_id", "status"),
        Index("ix_requests_created", "created_at"),
        # The queue's "awaiting patient" and "answered" tabs sort by these within a status.
        Index("ix_requests_status_updated", "status", "updated_at"),
        Index("ix_requests_status_answered", "status", "answered_at"),
        # Searching by the start of a reference (LIKE 'DRM-7K3%'): PostgreSQL uses an ordinary index for
        # that only under the C collation, so this one compares bytes whatever the database's collation.
        Index("ix_requests_reference_pattern", "reference", postgresql_ops={"reference": "varchar_pattern_ops"}),
        CheckConstraint(STATUS_CHECK, name="ck_requests_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    # The one-time key carried by the form, so a double click or a resent form makes one request.
    submission_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=Status.SUBMITTED.value)
    language: Mapped[str] = mapped_column(String(5), default="en")

    patient_name: Mapped[str] = mapped_column(String(120))
    patient_email: Mapped[str] = mapped_column(String(254), index=True)
    patient_phone: Mapped[str | None] = mapped_column(String(40))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(20))

    condition_slug: Mapped[str | None] = mapped_column(String(80))
    body_sites: Mapped[list] = mapped_column(JSON, default=list)
    duration: Mapped[str | None] = mapped_column(String(40))
    symptoms: Mapped[list] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    medications: Mapped[str | None] = mapped_column(Text)
    allergies: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list] = mapped_column(JSON, default=list)
    history_notes: Mapped[str | None] = mapped_column(Text)

    consent_health_data_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_terms_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_version: Mapped[str | None] = mapped_column(String(20))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The running response clock: set while a dermatologist owes a reply, cleared when one is sent.
    clock_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_round: Mapped[int] = mapped_column(Integer, default=1)
    # This request's own response target, when it differs from the clinic's RESPONSE_TARGET_HOURS
    # (an urgent request, a faster paid tier); None means the clinic's target.
    response_target_hours: Mapped[int | None] = mapped_column(Integer)
    # Red-flag triage (app.consultations.triage): the advice the patient saw ("emergency" or "today")
    # and the questions they ticked; urgent while the request is worked as one (it sorts first in the
    # queue and has URGENT_TARGET_HOURS). A check-in reply weeks later is routine again.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    triage_level: Mapped[str | None] = mapped_column(String(12))
    triage_flags: Mapped[list | None] = mapped_column(JSON)
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Ids of the dermatologists who gave this request back (or had it taken back): automatic
    # assignment passes them over for it.
    declined_by_ids: Mapped[list | None] = mapped_column(JSON)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    claimed_by = relationship("User", foreign_keys=[claimed_by_id])
    photos: Mapped[list[Photo]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="Photo.id"
    )
    messages: Mapped[list[Message]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="Message.id"
    )
    clocks: Mapped[list[ResponseClock]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="ResponseClock.round"
    )
    links: Mapped[list[PatientLink]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="PatientLink.id"
    )
    check_ins: Mapped[list[CheckIn]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="CheckIn.id"
    )
    feedback: Mapped[Feedback | None] = relationship(back_populates="request", cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def issue_link(self, now: datetime) -> str:
        """A new private link for the patient (earlier ones keep working); returns the token.

        Each email to the patient carries a link of its own, so the newest email always opens
        the page; only the token's hash is stored.
        """
        token = new_access_token()
        self.links.append(PatientLink(token_hash=hash_token(token), created_at=now))
        return token

    def revoke_links(self) -> None:
        """Every earlier private link stops working ('lost your link?' starts afresh)."""
        self.links.clear()

    def __repr__(self) -> str:
        return f"<ConsultationRequest {self.reference} {self.status}>"


class PatientLink(Model):
    """One private link to a request: the hash of the token in /c/<token>, never the token."""

    __tablename__ = "patient_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("consultation_requests.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    request: Mapped[ConsultationRequest] = relationship(back_populates="links")


def find_by_token(token: str) -> ConsultationRequest | None:
    """The request a private-link token opens, if any."""
    return db.session.execute(
        select(ConsultationRequest).join(PatientLink).where(PatientLink.token_hash == hash_token(token))
    ).scalar_one_or_none()


class Photo(Model):
    """A cleaned re-encode of an uploaded photo (the original upload is never stored)."""

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("consultation_requests.id", ondelete="CASCADE"), index=True)
    # Indexed: deleting a message (erasure, the retention purge) looks up the photos that name it.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    thumbnail_key: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Guided photos (app.consultations.photo_views): which problem area (1, 2, ...), where on the body
    # it is, and which view (far, medium, close); None for a photo sent without a slot.
    area: Mapped[int | None] = mapped_column(Integer)
    body_site: Mapped[str | None] = mapped_column(String(20))
    view: Mapped[str | None] = mapped_column(String(10))

    request: Mapped[ConsultationRequest] = relationship(back_populates="photos")


# Message kinds in the thread.
ANSWER = "answer"
QUESTION = "question"
PATIENT_REPLY = "patient_reply"
INTERNAL_NOTE = "internal_note"
MESSAGE_KINDS = (ANSWER, QUESTION, PATIENT_REPLY, INTERNAL_NOTE)


class Message(Model):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("consultation_requests.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the patient
    body: Mapped[str | None] = mapped_column(Text)
    # Structured answer.
    assessment: Mapped[str | None] = mapped_column(Text)
    treatment: Mapped[str | None] = mapped_column(Text)
    prescription_note: Mapped[str | None] = mapped_column(Text)
    follow_up: Mapped[str | None] = mapped_column(Text)
    # The author's licence number when they signed this answer: the letter prints it even if it changes.
    signed_licence_number: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    request: Mapped[ConsultationRequest] = relationship(back_populates="messages")
    author = relationship("User")
    photos: Mapped[list[Photo]] = relationship(foreign_keys=[Photo.message_id], viewonly=True)

    @property
    def visible_to_patient(self) -> bool:
        return self.kind != INTERNAL_NOTE


class ResponseClock(Model):
    """One 24-hour promise: from submission (or a patient's reply) to the dermatologist's next message."""

    __tablename__ = "response_clocks"
    __table_args__ = (
        Index("ix_clock_request_round", "request_id", "round", unique=True),
        # Arrival rates for the coverage forecast: rounds started in the last weeks.
        Index("ix_clock_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("consultation_requests.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Indexed: the dashboard reads the rounds answered lately (with due_at, for those that came due).
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    stopped_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Why a reply came after the due moment (app.consultations.lateness.LateReason), and the
    # dermatologist's own words for "other". Staff-only; never in an email.
    late_reason: Mapped[str | None] = mapped_column(String(20))
    late_note: Mapped[str | None] = mapped_column(String(500))
    # Whether this round was worked as urgent, so figures count urgent and routine rounds apart.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    request: Mapped[ConsultationRequest] = relationship(back_populates="clocks")
    stopped_by = relationship("User")


# How the patient says it is going, in a check-in reply.
PROGRESS = ("better", "same", "worse")


class CheckIn(Model):
    """A dermatologist's "check back in N weeks": one email at `due_at` asking for new photos and how it goes."""

    __tablename__ = "check_ins"
    __table_args__ = (Index("ix_check_ins_due", "sent_at", "cancelled_at", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("consultation_requests.id", ondelete="CASCADE"), index=True)
    answer_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    weeks: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The patient's reply to it (a new round of the same request), and how they said it is going.
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    progress: Mapped[str | None] = mapped_column(String(10))

    request: Mapped[ConsultationRequest] = relationship(back_populates="check_ins")
    set_by = relationship("User")


class Feedback(Model):
    """ "Was this helpful?": one rating (1-5) and an optional comment per request, after an answer."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("request_id", name="uq_feedback_request"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="ck_feedback_rating"),
        Index("ix_feedback_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("consultation_requests.id", ondelete="CASCADE"))
    # Who answered (the latest answer's author when the rating was given), for figures per dermatologist.
    dermatologist_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    request: Mapped[ConsultationRequest] = relationship(back_populates="feedback")
    dermatologist = relationship("User")
