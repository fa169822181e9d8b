"""Paid consultations: what a request costs and how it was paid, each Checkout Session, each refund,
and the provider's webhook events already handled.

A payment row is a bookkeeping record, not health data: tier, amount, the request's reference and the
provider's ids. It outlives the request it paid for (an erased or purged request leaves it detached,
request_id NULL), as accounting records must.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime
from app.timeutil import utcnow


class PaymentStatus(StrEnum):
    AWAITING = "awaiting"  # the request waits for its payment
    PAID = "paid"  # paid, and that payment put the request in the queue
    ABANDONED = "abandoned"  # never paid in time (or the request was erased first); nothing to queue


class SessionStatus(StrEnum):
    OPEN = "open"  # as far as we know, the patient may still pay on it
    COMPLETE = "complete"  # paid
    EXPIRED = "expired"  # can no longer be paid


class RefundReason(StrEnum):
    LATE = "late"  # the first reply missed the tier's target: refunded by the worker
    MANUAL = "manual"  # refunded by hand by staff
    DUPLICATE = "duplicate"  # a second payment for a request already paid
    UNQUEUED = "unqueued"  # paid for a request that could no longer be queued (withdrawn, erased, lapsed)
    WITHDRAWN = "withdrawn"  # the patient withdrew the request before any reply: what is left, by the rule


class RefundStatus(StrEnum):
    PENDING = "pending"  # recorded; the provider has not (yet) accepted it
    SUCCEEDED = "succeeded"  # the provider accepted it
    FAILED = "failed"  # the provider refused it; retried later, and shown to staff until it goes through


def _in(values: type[StrEnum]) -> str:
    return "({})".format(", ".join(f"'{member.value}'" for member in values))


class Payment(Model):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="ck_payments_amount"),
        CheckConstraint("refunded_cents >= 0 AND refunded_cents <= amount_cents", name="ck_payments_refunded"),
        CheckConstraint(f"status IN {_in(PaymentStatus)}", name="ck_payments_status"),
        Index("ix_payments_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # One payment per request; kept (detached) when the request is erased or purged.
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("consultation_requests.id", ondelete="SET NULL"), unique=True
    )
    reference: Mapped[str] = mapped_column(String(12))  # the request's reference, for the books
    tier: Mapped[str] = mapped_column(String(20))
    target_hours: Mapped[int] = mapped_column(Integer)  # the tier's promise when it was bought
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="eur")
    status: Mapped[str] = mapped_column(String(12), default=PaymentStatus.AWAITING.value)
    payment_intent: Mapped[str | None] = mapped_column(String(255), unique=True)  # the provider's charge
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Refunds of this payment's charge so far; a conditional UPDATE keeps it within amount_cents.
    refunded_cents: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    request = relationship("ConsultationRequest")
    sessions: Mapped[list[CheckoutSession]] = relationship(
        back_populates="payment", cascade="all, delete-orphan", order_by="CheckoutSession.id"
    )
    refunds: Mapped[list[Refund]] = relationship(
        back_populates="payment", cascade="all, delete-orphan", order_by="Refund.id", foreign_keys="Refund.payment_id"
    )

    @property
    def refundable_cents(self) -> int:
        return self.amount_cents - (self.refunded_cents or 0)

    def __repr__(self) -> str:
        return f"<Payment {self.reference} {self.tier} {self.amount_cents} {self.status}>"


class CheckoutSession(Model):
    """One trip to the provider's payment page; paying again (the retry link) makes a new one."""

    __tablename__ = "checkout_sessions"
    __table_args__ = (
        CheckConstraint(f"status IN {_in(SessionStatus)}", name="ck_checkout_sessions_status"),
        Index("ix_checkout_sessions_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(String(255), unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(10), default=SessionStatus.OPEN.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last asked the provider about it

    payment: Mapped[Payment] = relationship(back_populates="sessions")


class Refund(Model):
    """Money going back. `key` is unique, so each refund is recorded once however many workers look."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="ck_refunds_amount"),
        CheckConstraint(f"reason IN {_in(RefundReason)}", name="ck_refunds_reason"),
        CheckConstraint(f"status IN {_in(RefundStatus)}", name="ck_refunds_status"),
        Index("ix_refunds_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # "late:<payment>", "withdrawn:<payment>", "manual:<payment>:<n>", "duplicate:<charge>", "unqueued:<charge>".
    key: Mapped[str] = mapped_column(String(300), unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(12))
    amount_cents: Mapped[int] = mapped_column(Integer)
    payment_intent: Mapped[str] = mapped_column(String(255))  # the charge refunded
    status: Mapped[str] = mapped_column(String(10), default=RefundStatus.PENDING.value)
    provider_refund_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    refusals: Mapped[int] = mapped_column(Integer, default=0)  # the provider's definite "no"s so far
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(300))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    payment: Mapped[Payment] = relationship(back_populates="refunds", foreign_keys=[payment_id])
    requested_by = relationship("User")

    def __repr__(self) -> str:
        return f"<Refund {self.key} {self.amount_cents} {self.status}>"


class PaymentEvent(Model):
    """A provider webhook event already handled: the provider may send one several times."""

    __tablename__ = "payment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
