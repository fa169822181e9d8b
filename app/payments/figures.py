"""Money on the staff dashboard: payments and refunds per month, and what lateness cost.

A payment counts in the month it was paid (only payments that queued a request); a refund in the
month it was recorded, whether or not the provider has paid it yet (it is owed either way).
Months are calendar months in the clinic's time zone, the current one last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.extensions import db
from app.models import Payment, PaymentStatus, Refund, RefundReason, RefundStatus
from app.timeutil import as_utc

MONTHS = 12


@dataclass
class MonthFigures:
    month: date  # the first day of the month
    paid: int = 0
    takings_cents: int = 0
    late_refunds: int = 0
    late_refunded_cents: int = 0  # the cost of lateness
    other_refunds: int = 0  # by hand, duplicates, payments for requests that were gone
    other_refunded_cents: int = 0

    @property
    def lateness_share(self) -> float | None:
        """The cost of lateness as a percent of the month's takings."""
        return round(100 * self.late_refunded_cents / self.takings_cents, 1) if self.takings_cents else None


@dataclass
class PaymentFigures:
    months: list[MonthFigures] = field(default_factory=list)  # newest first
    attention: int = 0  # refunds the provider refused, or still unpaid after a try

    @property
    def this_month(self) -> MonthFigures:
        return self.months[0]


def _month(moment: datetime, zone: ZoneInfo) -> date:
    return as_utc(moment).astimezone(zone).date().replace(day=1)


def _months_back(today: date, count: int) -> list[date]:
    months, year, month = [], today.year, today.month
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months


def build(now: datetime, zone: ZoneInfo, months: int = MONTHS) -> PaymentFigures:
    keys = _months_back(_month(now, zone), months)
    table = {key: MonthFigures(key) for key in keys}
    since = datetime.combine(keys[-1], datetime.min.time(), zone)
    paid = db.session.execute(
        select(Payment.paid_at, Payment.amount_cents).where(
            Payment.status == PaymentStatus.PAID.value, Payment.paid_at >= since
        )
    ).all()
    for paid_at, amount in paid:
        row = table.get(_month(paid_at, zone)) if paid_at is not None else None
        if row is not None:
            row.paid += 1
            row.takings_cents += amount
    refunds = db.session.execute(
        select(Refund.created_at, Refund.amount_cents, Refund.reason).where(Refund.created_at >= since)
    ).all()
    for created_at, amount, reason in refunds:
        row = table.get(_month(created_at, zone))
        if row is None:
            continue
        if reason == RefundReason.LATE:
            row.late_refunds += 1
            row.late_refunded_cents += amount
        else:
            row.other_refunds += 1
            row.other_refunded_cents += amount
    return PaymentFigures(months=[table[key] for key in keys], attention=len(needing_attention(now)))


def needing_attention(now: datetime) -> list[Refund]:
    """Refunds refused by the provider, or tried and still not paid: staff should know of each."""
    return list(
        db.session.execute(
            select(Refund)
            .where(
                (Refund.status == RefundStatus.FAILED.value)
                | (
                    (Refund.status == RefundStatus.PENDING.value)
                    & (Refund.attempts > 0)
                    & (Refund.next_attempt_at > now)
                )
            )
            .order_by(Refund.created_at)
        ).scalars()
    )
