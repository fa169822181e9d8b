"""The duty rota: each dermatologist's weekly working hours and dated exceptions (time off, extra
shifts), and the escalation steps already taken for a request's round."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime
from app.timeutil import utcnow

MINUTES_PER_DAY = 24 * 60


class WeeklyShift(Model):
    """One weekday's working hours in the clinic's time zone, as wall-clock minutes after midnight.

    `ends_minute` at or before `starts_minute` means the shift runs past midnight into the next day
    (22:00-06:00); 00:00-24:00 is the whole day. At most one shift per person and weekday.
    """

    __tablename__ = "rota_weekly_shifts"
    __table_args__ = (
        Index("ix_rota_weekly_user_day", "user_id", "weekday", unique=True),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_rota_weekday"),
        CheckConstraint(f"starts_minute BETWEEN 0 AND {MINUTES_PER_DAY - 1}", name="ck_rota_starts"),
        CheckConstraint(f"ends_minute BETWEEN 1 AND {MINUTES_PER_DAY}", name="ck_rota_ends"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)  # 0 Monday … 6 Sunday
    starts_minute: Mapped[int] = mapped_column(Integer)
    ends_minute: Mapped[int] = mapped_column(Integer)


class ExceptionKind(StrEnum):
    OFF = "off"  # leave, sickness, training: weekly hours in this period do not count
    EXTRA = "extra"  # an extra shift: on duty in this period whatever the weekly hours say


class RotaException(Model):
    """A dated change to someone's weekly hours, stored as UTC moments (shown in the clinic's zone)."""

    __tablename__ = "rota_exceptions"
    __table_args__ = (
        Index("ix_rota_exceptions_user_ends", "user_id", "ends_at"),
        CheckConstraint("kind IN ('off', 'extra')", name="ck_rota_exception_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User")


class EscalationStep(Model):
    """An escalation step taken for one round of a request (at risk, overdue, medical lead).

    The unique index makes each step happen once per round, however many workers run the check:
    the step's row and its emails commit together, and the loser of a race inserts nothing.
    """

    __tablename__ = "escalation_steps"
    __table_args__ = (Index("ix_escalation_request_round_step", "request_id", "round", "step", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("consultation_requests.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(20))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
