"""Refunds: money going back to a patient, recorded once and paid once.

- A refund is a row with a unique key ("late:<payment>", "manual:<payment>:<n>", "duplicate:<charge>",
  "unqueued:<charge>"), so however many workers find the same late request at the same moment, one
  refund is recorded; refunds of the payment's own charge also count against what it can still give
  back (a conditional UPDATE), so two at once can never give back more than was paid.
- It is then sent (`attempt_refunds`, by the worker) with an idempotency key, so the provider pays it
  once even if a worker dies half-way; a refusal is kept with the provider's reason, shown to staff
  (and emailed to them once) and retried with backoff, never dropped.
- Late: when a paid request's first reply misses its tier's target (`refund_late`), LATE_REFUND_PERCENT
  of the price. Withdrawn: a patient who withdraws a paid request before any reply gets back all that
  is left of the price (`refund_withdrawn`), as nobody worked on it. By hand: staff (`refund_by_hand`),
  audited.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import cast

from flask_babel import lazy_gettext as _l
from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.consultations import audit, payment_emails
from app.consultations.audit import Actor
from app.consultations.policies import Policies
from app.extensions import db
from app.models import (
    AuditAction,
    ConsultationRequest,
    Payment,
    PaymentStatus,
    Refund,
    RefundReason,
    RefundStatus,
    ResponseClock,
)
from app.payments_provider import PaymentProvider, ProviderError

log = logging.getLogger(__name__)

REFUND_LEASE = timedelta(minutes=5)  # a worker sending a refund holds it this long
REFUND_BACKOFF = timedelta(minutes=5)  # after a refusal; doubled each time, at most REFUND_BACKOFF_MAX
REFUND_BACKOFF_MAX = timedelta(hours=6)
BATCH = 50

NOT_PAID = _l("This request has no payment to refund.")
NOTHING_LEFT = _l("There is nothing left to refund on this payment.")
BAD_AMOUNT = _l("Enter an amount from 0.01 up to what is left to refund.")


class PaymentRefused(Exception):
    """The payment action cannot be done now; the message says why, in words fit for the reader."""


def update_payment(payment: Payment, conditions: list, values: dict) -> bool:
    """UPDATE the payment only if `conditions` still hold in the database (as states.update_if); True if it did."""
    result = cast(
        CursorResult,
        db.session.execute(
            update(Payment)
            .where(Payment.id == payment.id, *conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.refresh(payment)
    return result.rowcount == 1


def charge_refund(intent: str) -> Refund | None:
    """A refund of a whole charge that queued nothing (a duplicate or an unqueued payment)."""
    keys = [f"{reason.value}:{intent}" for reason in (RefundReason.DUPLICATE, RefundReason.UNQUEUED)]
    return db.session.execute(select(Refund).where(Refund.key.in_(keys))).scalars().first()


def record_refund(
    payment: Payment,
    reason: RefundReason,
    amount_cents: int,
    intent: str,
    now: datetime,
    *,
    key: str | None = None,
    actor: Actor | None = None,
) -> Refund | None:
    """Record a refund to send, once per key (None: already recorded, or nothing left to refund).

    Late and manual refunds are of the payment's own charge and count against what it can still give
    back (a conditional UPDATE, so two at once can never give back more than was paid); duplicate and
    unqueued ones are of another charge, refunded whole.
    """
    own_charge = reason in (RefundReason.LATE, RefundReason.WITHDRAWN, RefundReason.MANUAL)
    key = key or (f"{reason.value}:{payment.id}" if own_charge else f"{reason.value}:{intent}")
    try:
        with db.session.begin_nested():
            if own_charge and not update_payment(
                payment,
                [Payment.refunded_cents + amount_cents <= Payment.amount_cents],
                {"refunded_cents": Payment.refunded_cents + amount_cents},
            ):
                raise _NothingLeft
            refund = Refund(
                key=key[:300],
                payment_id=payment.id,
                reason=reason.value,
                amount_cents=amount_cents,
                payment_intent=intent,
                status=RefundStatus.PENDING.value,
                next_attempt_at=now,
                requested_by_id=actor.user.id if actor is not None and actor.user is not None else None,
                created_at=now,
            )
            db.session.add(refund)
            db.session.flush()
    except (IntegrityError, _NothingLeft):
        db.session.refresh(payment)
        return None
    detail = f"{reason.value} refund of {amount_cents} {payment.currency} cents"
    audit.record(AuditAction.REFUNDED, actor or Actor.system(), consultation=payment.request, detail=detail)
    return refund


class _NothingLeft(Exception):
    pass


def late_payments(now: datetime) -> list[int]:
    """Paid requests whose first reply missed the tier's target and which have no late refund yet.

    Missed: the first reply came at or after its due moment, or it is past due with no reply while the
    request was still open (a request withdrawn before its due moment never missed it).
    """
    clock = ResponseClock
    request = ConsultationRequest
    late_refund = select(Refund.id).where(Refund.payment_id == Payment.id, Refund.reason == RefundReason.LATE.value)
    rows = db.session.execute(
        select(Payment.id)
        .join(request, request.id == Payment.request_id)
        .join(clock, and_(clock.request_id == request.id, clock.round == 1))
        .where(
            Payment.status == PaymentStatus.PAID.value,
            Payment.refunded_cents < Payment.amount_cents,
            clock.due_at <= now,
            or_(
                clock.stopped_at >= clock.due_at,
                and_(clock.stopped_at.is_(None), or_(request.closed_at.is_(None), request.closed_at >= clock.due_at)),
            ),
            ~late_refund.exists(),
        )
        .order_by(clock.due_at)
        .limit(BATCH)
    )
    return list(rows.scalars())


def refund_late(policies: Policies, now: datetime) -> int:
    """Record the late refunds that are due (the worker); returns how many were recorded by this call."""
    recorded = 0
    for payment_id in late_payments(now):
        payment = db.session.get(Payment, payment_id)
        if payment is None or payment.payment_intent is None:
            continue
        amount = min(policies.payments.late_refund_cents(payment.amount_cents), payment.refundable_cents)
        if amount <= 0:
            continue
        refund = record_refund(payment, RefundReason.LATE, amount, payment.payment_intent, now)
        db.session.commit()
        recorded += refund is not None
    return recorded


def payment_for(consultation: ConsultationRequest) -> Payment | None:
    return db.session.execute(select(Payment).where(Payment.request_id == consultation.id)).scalar_one_or_none()


def refundable_on_withdrawal(consultation: ConsultationRequest) -> Payment | None:
    """The payment a withdrawal of `consultation` would give money back from: paid, with some of the
    price left. None when nothing was paid or nothing is left."""
    payment = payment_for(consultation)
    if payment is None or payment.status != PaymentStatus.PAID or payment.payment_intent is None:
        return None
    return payment if payment.refundable_cents > 0 else None


def refund_withdrawn(consultation: ConsultationRequest, now: datetime) -> Refund | None:
    """Record the refund of a paid request the patient withdrew before any reply: all that is left of
    the price (a late refund already recorded keeps its share). Part of the withdrawal's transaction;
    the worker sends it. None when there is nothing to refund."""
    payment = refundable_on_withdrawal(consultation)
    if payment is None or payment.payment_intent is None:
        return None
    return record_refund(
        payment, RefundReason.WITHDRAWN, payment.refundable_cents, payment.payment_intent, now, actor=Actor.system()
    )


def refund_by_hand(payment: Payment, amount_cents: int, actor: Actor, now: datetime) -> Refund:
    """Staff give money back (up to what is left of the payment); audited as `actor`. Commits."""
    if payment.status != PaymentStatus.PAID or payment.payment_intent is None:
        raise PaymentRefused(NOT_PAID)
    if payment.refundable_cents <= 0:
        raise PaymentRefused(NOTHING_LEFT)
    if not 0 < amount_cents <= payment.refundable_cents:
        raise PaymentRefused(BAD_AMOUNT)
    done = db.session.execute(
        select(func.count(Refund.id)).where(Refund.payment_id == payment.id, Refund.reason == RefundReason.MANUAL.value)
    ).scalar_one()
    key = f"manual:{payment.id}:{done + 1}"  # a double click makes one refund, not two
    intent = payment.payment_intent
    refund = record_refund(payment, RefundReason.MANUAL, amount_cents, intent, now, key=key, actor=actor)
    if refund is None:
        db.session.rollback()
        raise PaymentRefused(NOTHING_LEFT)
    db.session.commit()
    return refund


def refund_backoff(refusals: int) -> timedelta:
    return min(REFUND_BACKOFF * 2 ** max(refusals - 1, 0), REFUND_BACKOFF_MAX)


def claim_refund(refund_id: int, now: datetime) -> Refund | None:
    """Take a due refund for this worker (attempts + 1, a lease on next_attempt_at) and commit."""
    result = cast(
        CursorResult,
        db.session.execute(
            update(Refund)
            .where(
                Refund.id == refund_id,
                Refund.status.in_((RefundStatus.PENDING.value, RefundStatus.FAILED.value)),
                Refund.next_attempt_at <= now,
            )
            .values(attempts=Refund.attempts + 1, next_attempt_at=now + REFUND_LEASE)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.get(Refund, refund_id, populate_existing=True)


def send_refund(refund: Refund, provider: PaymentProvider, policies: Policies, now: datetime) -> bool:
    """Ask the provider to pay a claimed refund; record the answer; commit. True when it was accepted.

    The idempotency key changes only after a definite refusal: a worker that died after the provider
    paid (but before this was recorded) sends the same key again and gets the same refund back.
    """
    payment = refund.payment
    try:
        facts = provider.refund(
            payment_intent=refund.payment_intent,
            amount_cents=refund.amount_cents,
            idempotency_key=f"refund-{refund.id}-{refund.refusals}",
            reference=payment.reference,
        )
        if facts.status in ("failed", "canceled"):
            raise ProviderError(f"refund_{facts.status}: the provider could not pay the refund", refused=True)
    except ProviderError as error:
        _refund_not_paid(refund, payment, error, policies, now)
        db.session.commit()
        return False
    refund.status = RefundStatus.SUCCEEDED.value
    refund.provider_refund_id = facts.id
    refund.succeeded_at = now
    refund.last_error = None
    if payment.request is not None:
        payment_emails.refund_issued(payment.request, payment, refund, now)
    db.session.commit()
    return True


def _refund_not_paid(refund: Refund, payment: Payment, error: ProviderError, policies: Policies, now) -> None:
    refund.last_error = str(error)[:300]
    if error.refused:
        refund.refusals += 1
        refund.status = RefundStatus.FAILED.value
        if refund.refusals == 1:
            payment_emails.refund_refused(payment, refund, policies.alerts)
    refund.next_attempt_at = now + refund_backoff(max(refund.refusals, 1))
    log.warning("payments: a refund was not paid (%s); retrying later", "refused" if error.refused else "unreachable")


def attempt_refunds(provider: PaymentProvider, policies: Policies, now: datetime) -> dict[str, int]:
    """Send every due refund (new ones, and refused ones whose backoff is over)."""
    counts = {"refunds_paid": 0, "refunds_refused": 0}
    due = db.session.execute(
        select(Refund.id)
        .where(
            Refund.status.in_((RefundStatus.PENDING.value, RefundStatus.FAILED.value)), Refund.next_attempt_at <= now
        )
        .order_by(Refund.next_attempt_at, Refund.id)
        .limit(BATCH)
    ).scalars()
    for refund_id in list(due):
        refund = claim_refund(refund_id, now)
        if refund is None:
            continue  # another worker has it
        paid = send_refund(refund, provider, policies, now)
        counts["refunds_paid" if paid else "refunds_refused"] += 1
    return counts


def retry_refund(refund: Refund, provider: PaymentProvider, policies: Policies, now: datetime) -> bool:
    """Staff's "try again now" for a refund that was refused or is waiting; True when it went through."""
    if refund.status == RefundStatus.SUCCEEDED:
        return True
    db.session.execute(
        update(Refund)
        .where(Refund.id == refund.id, Refund.status != RefundStatus.SUCCEEDED.value, Refund.next_attempt_at > now)
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    claimed = claim_refund(refund.id, now)
    return claimed is not None and send_refund(claimed, provider, policies, now)
