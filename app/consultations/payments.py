"""Paid consultations: holding a request until it is paid, paying through the provider's Checkout,
queueing it exactly once when the payment is confirmed, letting unpaid ones lapse, and refunds.

- **Held for payment** (`holds_for_payment`): with PAYMENTS_ENABLED a new request is stored as
  awaiting_payment (in no queue, with no clock) with a `Payment` row for its tier, and the patient is
  sent to the provider's payment page (`start_checkout`; the private link offers to pay again).
- **Confirmed** (`settle_checkout`) by whichever comes first: the provider's signed webhook
  (`handle_event`), the return page asking the provider (`verify_return`), or the worker asking about
  sessions nobody came back from. A conditional UPDATE of the payment (awaiting -> paid) decides
  which one queues the request and starts its clock with the tier's target; every later one finds
  it done. A second payment for the same request, or a payment for a request that can no longer be
  queued (lapsed, erased), is refunded in full: nothing paid is ever queued twice, and nothing
  unpaid is ever queued.
- **Lapsed** (`check_unpaid`, by the worker): after an hour a reminder with a link to pay; after
  UNPAID_KEEP_HOURS (and once every payment page the patient was given has expired, and the provider
  confirms none was paid) the request is withdrawn and erased with its photos.
- **Refunds**: when the first reply misses the tier's target the worker refunds LATE_REFUND_PERCENT of
  the price (`refund_late`); staff can refund by hand (`refund_by_hand`). A refund is a row with a
  unique key, recorded once however many workers look, then sent (`attempt_refunds`) with an
  idempotency key, so the provider pays it once; a refusal is kept, shown to staff and retried with
  backoff, never dropped (app/consultations/refunds.py).

Rules take values and the provider (app/payments_provider.py) and never read the web request.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.consultations import audit, notify, payment_emails, privacy, refunds
from app.consultations.audit import Actor
from app.consultations.clock import start_clock
from app.consultations.policies import Policies
from app.consultations.refunds import PaymentRefused, charge_refund, payment_for, record_refund, update_payment
from app.consultations.states import Status, update_if
from app.consultations.submission import PatientDetails
from app.consultations.tiers import PaymentPolicy, Tier
from app.extensions import db
from app.models import (
    AuditAction,
    CheckoutSession,
    ConsultationRequest,
    Payment,
    PaymentEvent,
    PaymentStatus,
    Refund,
    RefundReason,
    SessionStatus,
)
from app.payments_provider import CheckoutFacts, CheckoutRequest, PaymentProvider, ProviderError, ProviderEvent
from app.storage import PhotoStorage
from app.timeutil import as_utc

log = logging.getLogger(__name__)

# The provider keeps a Checkout Session open from 30 minutes to 24 hours.
SESSION_SHORTEST = timedelta(minutes=30)
SESSION_LONGEST = timedelta(hours=24)
REMINDER_AFTER = timedelta(hours=1)  # an unpaid request gets one email with a link to pay
RECONCILE_EVERY = timedelta(minutes=10)  # ask the provider about a session nobody came back from
RECONCILE_LATER = timedelta(hours=1)  # after its first hour, less often
EXPIRY_MARGIN = timedelta(minutes=5)  # clocks differ: wait a little past a session's expiry
BATCH = 50

CHECKOUT_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
EXPIRED_EVENT = "checkout.session.expired"

PRODUCT_NAME = _l("Online dermatology consultation %(reference)s: %(tier)s, a reply within %(hours)s hours")
NOT_AWAITED = _l("This request does not need a payment.")
TOO_LATE = _l("This request waited too long for its payment and can no longer be paid. Please send a new request.")
PROVIDER_DOWN = _l("We could not open the payment page just now. Your request is saved: please try again in a moment.")


# --- Which requests wait for their payment ----------------------------------------------------------


def holds_for_payment(details: PatientDetails, policy: PaymentPolicy) -> bool:
    """Whether a new request waits for its payment before it is queued and its clock starts.

    Urgent requests (red-flag triage) are never held for payment: submission releases a request the
    triage finds urgent from its hold, so it keeps its own target and goes straight to the queue.
    """
    return policy.enabled


def tier_to_hold(details: PatientDetails, tier_name: str | None, policy: PaymentPolicy) -> Tier | None:
    """The tier a new request is held for, or None when it is not held (free, or never held)."""
    if not holds_for_payment(details, policy):
        return None
    tier = policy.tier(tier_name)
    if tier is None:  # the form offers only known tiers; anything else is the first one
        tier = policy.tiers[0]
    return tier


def deadline(payment: Payment, policy: PaymentPolicy) -> datetime:
    """Until when an unpaid request waits for its payment."""
    return as_utc(payment.created_at) + policy.keep_unpaid


@dataclass(frozen=True)
class PatientPayment:
    """What the patient sees of their payment: the tier and price, until when to pay, the refunds."""

    payment: Payment
    tier: Tier
    deadline: datetime
    refunds: list[Refund]

    @property
    def awaiting(self) -> bool:
        return self.payment.status == PaymentStatus.AWAITING


def patient_payment(consultation: ConsultationRequest, policy: PaymentPolicy) -> PatientPayment | None:
    payment = payment_for(consultation)
    if payment is None:
        return None
    tier = Tier(payment.tier, payment.target_hours, payment.amount_cents)
    return PatientPayment(payment, tier, deadline(payment, policy), list(payment.refunds))


# --- Paying: a trip to the provider's payment page ------------------------------------------------


@dataclass(frozen=True)
class ReturnUrls:
    success: str  # with {CHECKOUT_SESSION_ID}, which the provider fills in
    cancel: str


def start_checkout(
    payment: Payment, provider: PaymentProvider, *, urls: ReturnUrls, policy: PaymentPolicy, now: datetime
) -> str:
    """Open a payment page for a request waiting for its payment; record it, commit, return its URL.

    Raises PaymentRefused when the request does not wait for a payment (any more) or the provider
    cannot be reached (the request stays saved, and the patient can try again).
    """
    consultation = payment.request
    if payment.status != PaymentStatus.AWAITING or consultation is None:
        raise PaymentRefused(NOT_AWAITED)
    if consultation.status != Status.AWAITING_PAYMENT:
        raise PaymentRefused(NOT_AWAITED)
    until = deadline(payment, policy)
    if now >= until:
        raise PaymentRefused(TOO_LATE)
    expires = min(max(until, now + SESSION_SHORTEST), now + SESSION_LONGEST)
    order = CheckoutRequest(
        payment_id=payment.id,
        reference=payment.reference,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        product_name=str(
            PRODUCT_NAME % {"reference": payment.reference, "tier": _label(payment), "hours": payment.target_hours}
        ),
        customer_email=consultation.patient_email,
        locale=consultation.language or "en",
        success_url=urls.success,
        cancel_url=urls.cancel,
        expires_at=expires,
        # Unique per trip: the SDK's own retries reuse it, so a network hiccup opens one session, not two.
        idempotency_key=f"checkout-{payment.id}-{uuid.uuid4().hex}",
    )
    try:
        facts = provider.create_checkout(order)
    except ProviderError as error:
        db.session.rollback()
        log.warning("payments: the provider did not open a payment page (%s)", error)
        raise PaymentRefused(PROVIDER_DOWN) from None
    if not facts.url:
        db.session.rollback()
        raise PaymentRefused(PROVIDER_DOWN)
    payment.sessions.append(
        CheckoutSession(
            session_id=facts.id,
            status=SessionStatus.OPEN.value,
            created_at=now,
            expires_at=facts.expires_at or expires,
        )
    )
    db.session.commit()
    return facts.url


def _label(payment: Payment) -> str:
    return Tier(payment.tier, payment.target_hours, payment.amount_cents).label


# --- Confirmed: the request goes into the queue, exactly once -------------------------------------

QUEUED = "queued"  # this confirmation queued the request
ALREADY = "already"  # an earlier confirmation did
REFUNDING = "refunding"  # paid, but not for a request that can be queued: refunded in full
NOT_PAID_YET = "not_paid"
NOT_OURS = "not_ours"
UNREACHABLE = "unreachable"  # the provider could not be asked


def _closed(session_id: str, status: SessionStatus) -> None:
    """Record that a payment page was paid or expired (never undo a payment: only an open page changes)."""
    db.session.execute(
        update(CheckoutSession)
        .where(CheckoutSession.session_id == session_id, CheckoutSession.status == SessionStatus.OPEN.value)
        .values(status=status.value)
        .execution_options(synchronize_session="fetch")
    )


def find_payment(facts: CheckoutFacts) -> Payment | None:
    """Our payment a Checkout Session belongs to: by the session we recorded, or else by our mark on it."""
    session = db.session.execute(
        select(CheckoutSession).where(CheckoutSession.session_id == facts.id)
    ).scalar_one_or_none()
    if session is not None:
        return session.payment
    payment = db.session.get(Payment, facts.payment_id) if facts.payment_id is not None else None
    if payment is not None and facts.metadata.get("reference") == payment.reference:
        return payment
    return None


def settle_checkout(facts: CheckoutFacts, policies: Policies, now: datetime, *, actor: Actor) -> str:
    """A Checkout Session the provider reports: if it is paid, queue the request it paid for, exactly once.

    Safe to call any number of times, in any order, from the webhook, the return page and the worker
    at once: the conditional UPDATE of the payment (awaiting -> paid) lets exactly one of them queue
    the request, start its clock and send the receipt. Commits what it changed.
    """
    payment = find_payment(facts)
    if payment is None:
        return NOT_OURS
    if not facts.paid or facts.payment_intent is None:
        return NOT_PAID_YET
    _closed(facts.id, SessionStatus.COMPLETE)
    intent = facts.payment_intent
    if payment.payment_intent == intent or charge_refund(intent) is not None:
        db.session.commit()  # the page is recorded as paid, so the worker stops asking about it
        return ALREADY
    won = update_payment(
        payment,
        [Payment.status == PaymentStatus.AWAITING.value],
        {"status": PaymentStatus.PAID.value, "payment_intent": intent, "paid_at": now},
    )
    if won and _queue(payment, policies, now, actor):
        db.session.commit()
        return QUEUED
    if won:  # the request went before its payment arrived: nothing to queue, the money goes back
        update_payment(payment, [Payment.id == payment.id], {"status": PaymentStatus.ABANDONED.value})
        record_refund(payment, RefundReason.UNQUEUED, facts.amount_total or payment.amount_cents, intent, now)
        db.session.commit()
        return REFUNDING
    db.session.refresh(payment)
    if payment.payment_intent == intent:
        db.session.commit()
        return ALREADY
    # Paid again (another tab, an older payment page), or paid after the request lapsed: refund in full.
    reason = RefundReason.DUPLICATE if payment.status == PaymentStatus.PAID else RefundReason.UNQUEUED
    record_refund(payment, reason, facts.amount_total or payment.amount_cents, intent, now)
    db.session.commit()
    return REFUNDING


def _queue(payment: Payment, policies: Policies, now: datetime, actor: Actor) -> bool:
    """The paid request into the queue with its clock (the tier's target), confirmation and receipt."""
    consultation = payment.request
    if consultation is None:
        return False
    moved = update_if(
        consultation,
        [ConsultationRequest.status == Status.AWAITING_PAYMENT.value],
        {"status": Status.SUBMITTED.value, "updated_at": now},
    )
    if not moved:
        return False
    consultation.response_target_hours = payment.target_hours
    start_clock(consultation, now, policies.response)
    notify.request_submitted(consultation, consultation.issue_link(now), policies.alerts)
    payment_emails.receipt(consultation, payment, policies.zone, policies.clinic)
    audit.record(AuditAction.PAID, actor, consultation=consultation, detail=f"paid {payment.tier}")
    return True


def verify_return(session_id: str, provider: PaymentProvider, policies: Policies, now: datetime, *, actor: Actor):
    """The patient is back from the payment page: ask the provider (never trust the address) and settle.

    Returns (payment, outcome); payment is None for a session we never opened. A provider that cannot
    be reached is not an error here: the webhook or the worker confirms the payment later.
    """
    session = db.session.execute(
        select(CheckoutSession).where(CheckoutSession.session_id == session_id[:255])
    ).scalar_one_or_none()
    if session is None:
        return None, NOT_OURS
    payment = session.payment
    try:
        facts = provider.retrieve_checkout(session.session_id)
    except ProviderError as error:
        log.warning("payments: the provider could not confirm a returning patient's payment (%s)", error)
        return payment, NOT_PAID_YET
    return payment, settle_checkout(facts, policies, now, actor=actor)


# --- The provider's webhook ------------------------------------------------------------------------

DUPLICATE_EVENT = "duplicate"
IGNORED = "ignored"


def handle_event(event: ProviderEvent, policies: Policies, now: datetime) -> str:
    """A verified webhook event, handled once: its id is recorded with what it changed, in one commit.

    Events may come twice, late, or out of order (an expiry after a payment, an older session's payment
    after a newer one's): each is judged by the state of the payment, never by the order of arrival.
    An error rolls everything back, the event stays unrecorded, and the provider sends it again.
    """
    if not event.id:
        return IGNORED
    try:
        with db.session.begin_nested():
            db.session.add(PaymentEvent(event_id=event.id[:255], type=event.type[:100], received_at=now))
    except IntegrityError:
        db.session.rollback()
        return DUPLICATE_EVENT
    try:
        outcome = IGNORED
        if event.type in CHECKOUT_EVENTS and event.checkout is not None:
            outcome = settle_checkout(event.checkout, policies, now, actor=Actor.system())
        elif event.type == EXPIRED_EVENT and event.checkout is not None:
            _closed(event.checkout.id, SessionStatus.EXPIRED)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return outcome


# --- Unpaid requests: reminded, then deleted with their photos ---------------------------------------


def check_sessions(policies: Policies, provider: PaymentProvider, now: datetime) -> int:
    """Ask the provider about payment pages nobody came back from (the worker: every RECONCILE_EVERY in a
    page's first hour, then every RECONCILE_LATER, until it is paid or expired): a payment whose webhook
    was lost, or a second payment for a request already paid, is settled here. Returns how many
    requests this queued."""
    page = CheckoutSession
    due = db.session.execute(
        select(page.id)
        .where(
            page.status == SessionStatus.OPEN.value,
            page.created_at <= now - RECONCILE_EVERY,
            or_(
                page.checked_at.is_(None),
                and_(page.created_at > now - RECONCILE_LATER, page.checked_at <= now - RECONCILE_EVERY),
                page.checked_at <= now - RECONCILE_LATER,
            ),
        )
        .order_by(CheckoutSession.created_at)
        .limit(BATCH)
    ).scalars()
    queued = 0
    for session_id in list(due):
        session = db.session.get(CheckoutSession, session_id)
        if session is None or session.status != SessionStatus.OPEN:
            continue
        outcome = _ask_about(session, provider, policies, now)
        if outcome == UNREACHABLE:
            break  # the rest waits for the next round
        queued += outcome == QUEUED
    return queued


def _ask_about(session: CheckoutSession, provider: PaymentProvider, policies: Policies, now: datetime) -> str:
    """What the provider says of one payment page, recorded (and settled, if it was paid)."""
    try:
        facts = provider.retrieve_checkout(session.session_id)
    except ProviderError as error:
        db.session.rollback()
        log.warning("payments: could not ask the provider about a payment page (%s)", error)
        return UNREACHABLE
    session.checked_at = now
    if facts.paid:
        return settle_checkout(facts, policies, now, actor=Actor.system())
    if facts.status == "expired":
        session.status = SessionStatus.EXPIRED.value
    db.session.commit()
    return NOT_PAID_YET


def check_unpaid(policies: Policies, provider: PaymentProvider, storage: PhotoStorage, now: datetime) -> dict[str, int]:
    """The worker's round over requests waiting for their payment: a reminder after REMINDER_AFTER;
    once their time is up, after a last word with the provider about every payment page they were
    given, deletion with their photos. Each step commits on its own."""
    counts = {"reminders": 0, "unpaid_deleted": 0}
    waiting = db.session.execute(
        select(Payment.id)
        .where(Payment.status == PaymentStatus.AWAITING.value)
        .order_by(Payment.created_at)
        .limit(BATCH)
    ).scalars()
    for payment_id in list(waiting):
        payment = db.session.get(Payment, payment_id)
        if payment is None or payment.status != PaymentStatus.AWAITING:
            continue
        until = deadline(payment, policies.payments)
        # Time is up once the patient's time to pay is over and every payment page they had has expired.
        last_expiry = max((as_utc(session.expires_at) for session in payment.sessions), default=None)
        if now >= until and (last_expiry is None or now >= last_expiry + EXPIRY_MARGIN):
            if _none_paid(payment, provider, policies, now):
                counts["unpaid_deleted"] += _abandon(payment, policies, storage, now)
        elif now < until:
            counts["reminders"] += _remind(payment, until, policies, now)
    return counts


def _none_paid(payment: Payment, provider: PaymentProvider, policies: Policies, now: datetime) -> bool:
    """True only when the provider confirms that none of the payment's pages still open in our books was paid."""
    for session in [session for session in payment.sessions if session.status == SessionStatus.OPEN]:
        if _ask_about(session, provider, policies, now) != NOT_PAID_YET:
            return False  # paid after all (now settled), or the provider cannot say: never delete it
    db.session.refresh(payment)
    return payment.status == PaymentStatus.AWAITING


def _remind(payment: Payment, until: datetime, policies: Policies, now: datetime) -> bool:
    consultation = payment.request
    if payment.reminded_at is not None or consultation is None:
        return False
    if now - as_utc(payment.created_at) < REMINDER_AFTER or until - now < SESSION_SHORTEST:
        return False
    if not update_payment(payment, [Payment.reminded_at.is_(None)], {"reminded_at": now}):
        db.session.rollback()
        return False
    payment_emails.payment_reminder(consultation, payment, until, now, policies.zone)
    db.session.commit()
    return True


def _abandon(payment: Payment, policies: Policies, storage: PhotoStorage, now: datetime) -> bool:
    """The time to pay is over and every payment page has expired: withdraw the request, then erase it
    with its photos. The payment row stays (abandoned) for the books; a payment arriving later is refunded."""
    if not update_payment(
        payment, [Payment.status == PaymentStatus.AWAITING.value], {"status": PaymentStatus.ABANDONED.value}
    ):
        db.session.rollback()
        return False
    consultation = payment.request
    if consultation is not None:
        update_if(
            consultation,
            [ConsultationRequest.status == Status.AWAITING_PAYMENT.value],
            {"status": Status.WITHDRAWN.value, "closed_at": now, "updated_at": now},
        )
    db.session.commit()
    if consultation is not None and consultation.status == Status.WITHDRAWN:
        privacy.erase_consultation(
            consultation, storage, policies.upload_dir, actor=Actor.system(), action=AuditAction.ABANDONED
        )
    return True


# --- The worker's round -------------------------------------------------------------------------------


def run(policies: Policies, provider: PaymentProvider, storage: PhotoStorage, now: datetime) -> dict[str, int]:
    """Everything the worker does about money, in order: unpaid requests, late refunds, sending refunds."""
    if not policies.payments.enabled:
        return {}
    counts = {"payments_confirmed": check_sessions(policies, provider, now)}
    counts.update(check_unpaid(policies, provider, storage, now))
    counts["late_refunds"] = refunds.refund_late(policies, now)
    counts.update(refunds.attempt_refunds(provider, policies, now))
    return counts
