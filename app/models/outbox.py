"""The outbox: emails written in the same transaction as the change that causes them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime
from app.timeutil import utcnow

PENDING = "pending"
SENT = "sent"
FAILED = "failed"


class OutboundEmail(Model):
    __tablename__ = "outbound_emails"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        UniqueConstraint("message_id", name="uq_outbound_emails_message_id"),
        # Staff see the latest sent emails and how many went out lately, however long the history.
        Index("ix_outbox_status_sent", "status", "sent_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    template: Mapped[str] = mapped_column(String(80))
    language: Mapped[str] = mapped_column(String(5), default="en")
    # Plain values the template needs (never health data).
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    # Values that must not rest in the database in clear (the patient's private link), encrypted
    # with a key derived from SECRET_KEY and wiped once the email is sent or given up.
    sealed_context: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("consultation_requests.id", ondelete="SET NULL"), index=True
    )
    # Made once when queued, on the clinic's domain, and sent with every retry: receivers drop the
    # duplicate if a worker dies after the server accepted the message (see app/outbox.py).
    message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LinkRequest(Model):
    """A "lost your link?" request waiting for the worker.

    The request itself only writes this row, whether or not the address is known, so its answer
    takes the same path and time either way; the worker looks the address up and queues the email.
    The address is sealed like an email's private link (app/outbox.seal) and the row goes once done.
    """

    __tablename__ = "link_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    sealed_email: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(64))  # who asked, for the audit log
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
