"""Sending a patient to the provider's payment page, from the form and from the private page."""

from __future__ import annotations

from flask import flash, redirect, url_for
from werkzeug.wrappers import Response

from app.consultations import payments
from app.consultations.refunds import PaymentRefused
from app.links import external_url
from app.models import Payment
from app.runtime import payment_provider, policies
from app.timeutil import utcnow


def checkout_urls() -> payments.ReturnUrls:
    """Where the provider sends the patient back: on PUBLIC_BASE_URL, never with the private link in it."""
    return payments.ReturnUrls(
        success=external_url("payments.checkout_return") + "?session_id={CHECKOUT_SESSION_ID}",
        cancel=external_url("payments.checkout_cancelled"),
    )


def send_to_checkout(payment: Payment, *, fallback: str) -> Response:
    """303 to a new payment page; if none can be opened, back to `fallback` with the reason."""
    try:
        url = payments.start_checkout(
            payment, payment_provider(), urls=checkout_urls(), policy=policies().payments, now=utcnow()
        )
    except PaymentRefused as refused:
        flash(str(refused), "error")
        return redirect(fallback, code=303)
    return redirect(url, code=303)


def received_page() -> str:
    return url_for("intake.received")
