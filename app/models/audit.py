"""The audit log: who looked at or changed which request, and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime
from app.timeutil import utcnow

# Actions recorded; details never carry health data.
AUDIT_ACTIONS = (
    "viewed",
    "photo_viewed",
    "claimed",
    "released",
    "reassigned",
    "answered",
    "asked",
    "noted",
    "patient_replied",
    "resolved",
    "withdrawn",
    "exported",
    "erased",
    "login",
    "failed_login",
    "logout",
    "link_resent",
    "user_created",
    "user_updated",
    "totp_enabled",
    "purged",
)


class AuditEvent(Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # "user", "patient" (holder of the private link), "system" or "anonymous".
    actor_kind: Mapped[str] = mapped_column(String(12))
    action: Mapped[str] = mapped_column(String(30))
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("consultation_requests.id", ondelete="SET NULL"), index=True
    )
    detail: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(45))

    actor = relationship("User")
