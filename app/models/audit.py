"""The audit log: who looked at or changed which request, and when."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime
from app.timeutil import utcnow


class AuditAction(StrEnum):
    """Everything the audit log records; details never carry health data."""

    VIEWED = "viewed"
    PHOTO_VIEWED = "photo_viewed"
    CLAIMED = "claimed"
    RELEASED = "released"
    REASSIGNED = "reassigned"
    ASSIGNED = "assigned"  # given to an on-duty dermatologist automatically (AUTO_ASSIGN)
    ANSWERED = "answered"
    ASKED = "asked"
    NOTED = "noted"
    PATIENT_REPLIED = "patient_replied"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"
    EXPORTED = "exported"
    ERASED = "erased"
    LOGIN = "login"
    FAILED_LOGIN = "failed_login"
    LOGOUT = "logout"
    LINK_RESENT = "link_resent"
    USER_CREATED = "user_created"
    USER_UPDATED = "user_updated"
    TOTP_ENABLED = "totp_enabled"
    PURGED = "purged"
    LETTER_DOWNLOADED = "letter_downloaded"
    SAVED_REPLY_CREATED = "saved_reply_created"
    SAVED_REPLY_UPDATED = "saved_reply_updated"
    SAVED_REPLY_DELETED = "saved_reply_deleted"
    SAVED_REPLY_USED = "saved_reply_used"
    PAID = "paid"  # a payment put the request in the queue
    REFUNDED = "refunded"  # a refund was recorded (by the worker, or by hand by staff)
    ABANDONED = "abandoned"  # an unpaid request was deleted with its photos when its time was up
    ROTA_CHANGED = "rota_changed"
    CHECK_IN_SENT = "check_in_sent"
    CHECK_IN_CANCELLED = "check_in_cancelled"
    FEEDBACK_GIVEN = "feedback_given"


AUDIT_ACTIONS = tuple(AuditAction)


class ActorKind(StrEnum):
    USER = "user"  # a signed-in staff account
    PATIENT = "patient"  # the holder of a private link
    ANONYMOUS = "anonymous"  # a visitor, e.g. a failed sign-in
    SYSTEM = "system"  # the CLI or the worker


class AuditEvent(Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_kind: Mapped[str] = mapped_column(String(12))
    action: Mapped[str] = mapped_column(String(30))
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("consultation_requests.id", ondelete="SET NULL"), index=True
    )
    detail: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(45))

    actor = relationship("User")
