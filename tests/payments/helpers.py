"""Helpers that read like what happens around a paid consultation: a patient sends the form and
pays (or not), the provider calls the webhook, the worker runs."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select

from app.consultations import payments
from app.extensions import db
from app.models import CheckoutSession, ConsultationRequest, OutboundEmail, Payment, ResponseClock
from app.runtime import payment_provider, policies, storage
from tests.factories import submit_request
from tests.stripe_standin import StripeStandIn


def send_paid_form(client, tier: str = "standard", **answers):
    """Fill in the form with a tier, press "Continue to payment", then "Pay" on the page that follows;
    returns the answer to "Pay" (a 303 to the payment page, or back to that page if none could be opened)."""
    sent = submit_request(client, tier=tier, **answers)
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/consultation/received"), sent.status_code
    return client.post(pay_action(client), data={"from": "received"})


def pay_action(client) -> str:
    """Where the "Pay" button on the page after the form posts."""
    page = client.get("/consultation/received").get_data(as_text=True)
    match = re.search(r'action="(/c/[^"]+/pay)"', page)
    assert match, "the page offers no payment"
    return match.group(1)


def latest_request() -> ConsultationRequest:
    db.session.expire_all()
    return db.session.execute(select(ConsultationRequest).order_by(ConsultationRequest.id.desc()).limit(1)).scalar_one()


def payment_of(consultation: ConsultationRequest) -> Payment:
    db.session.expire_all()
    return db.session.execute(select(Payment).where(Payment.request_id == consultation.id)).scalar_one()


def session_ids(payment: Payment) -> list[str]:
    return list(
        db.session.execute(
            select(CheckoutSession.session_id)
            .where(CheckoutSession.payment_id == payment.id)
            .order_by(CheckoutSession.id)
        ).scalars()
    )


def session_from(response) -> str:
    """The Checkout Session a 303 to the payment page leads to."""
    location = response.headers["Location"]
    assert "/pay/cs_test_" in location, location
    return location.rsplit("/", 1)[1]


def post_event(client, standin: StripeStandIn, event: dict, **signing):
    payload, header = standin.signed(event, **signing)
    return client.post(
        "/payments/webhook", data=payload, headers={"Stripe-Signature": header}, content_type="application/json"
    )


def run_worker(now: datetime) -> dict[str, int]:
    """One round of the worker's money step, as `flask worker` runs it."""
    return payments.run(policies(), payment_provider(), storage(), now)


def emails(template: str, request_id: int | None = None) -> list[OutboundEmail]:
    query = select(OutboundEmail).where(OutboundEmail.template == template)
    if request_id is not None:
        query = query.where(OutboundEmail.request_id == request_id)
    return list(db.session.execute(query.order_by(OutboundEmail.id)).scalars())


def clocks(consultation: ConsultationRequest) -> int:
    return db.session.execute(
        select(func.count(ResponseClock.id)).where(ResponseClock.request_id == consultation.id)
    ).scalar_one()
