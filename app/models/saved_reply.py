"""Saved replies: a dermatologist's reusable answers (their own, or clinic-wide ones kept by admins)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime
from app.timeutil import utcnow


class SavedReply(Model):
    """The text of the four answer fields, with placeholders such as {first_name} filled in when used.

    `owner_id` is the dermatologist whose reply it is; None makes it clinic-wide (admins manage those).
    """

    __tablename__ = "saved_replies"
    __table_args__ = (Index("ix_saved_replies_owner", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(5))
    condition_slug: Mapped[str | None] = mapped_column(String(80))
    assessment: Mapped[str] = mapped_column(Text, default="")
    treatment: Mapped[str] = mapped_column(Text, default="")
    prescription_note: Mapped[str] = mapped_column(Text, default="")
    follow_up: Mapped[str] = mapped_column(Text, default="")
    usage_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner = relationship("User")

    @property
    def clinic_wide(self) -> bool:
        return self.owner_id is None

    def __repr__(self) -> str:
        return f"<SavedReply {self.id} {self.language}>"
