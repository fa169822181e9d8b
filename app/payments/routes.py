"""The provider's webhook, and the patient's way back from the payment page.

POST /payments/webhook: the provider's signed events (CSRF does not apply: the signature, checked with
STRIPE_WEBHOOK_SECRET, is the proof). 400 for a bad signature; 503 when the event could not be stored,
so that the provider sends it again; 200 otherwise, duplicates included.
GET /payments/return: the provider sends the patient here after paying; the payment is checked with
the provider, never taken from the address. GET /payments/cancelled: the patient left the payment page.
"""

from __future__ import annotations

import logging
import re

from flask import abort, current_app, flash, jsonify, redirect, request, url_for
from flask_babel import gettext
from sqlalchemy.exc import SQLAlchemyError

from app.consultations import payments
from app.extensions import csrf, db, limiter
from app.payments import bp
from app.payments_provider import BadSignature
from app.runtime import current_actor, payment_provider, policies
from app.timeutil import utcnow

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,250}")


def _enabled() -> None:
    if not policies().payments.enabled:
        abort(404)


@bp.post("/payments/webhook")
@limiter.exempt  # the provider's own delivery, signed; its retries must never be refused
@csrf.exempt
def webhook():
    _enabled()
    try:
        event = payment_provider().parse_event(request.get_data(), request.headers.get("Stripe-Signature"))
    except BadSignature:
        log.warning("payments: a webhook with a bad signature was refused")
        return jsonify(error="bad signature"), 400
    try:
        outcome = payments.handle_event(event, policies(), utcnow())
    except SQLAlchemyError as error:  # the type only: the provider retries, nothing is lost
        db.session.rollback()
        log.error("payments: a webhook event could not be stored (%s)", type(error).__name__)
        return jsonify(error="try again"), 503
    return jsonify(received=True, outcome=outcome)


def _return_limit() -> str:
    return current_app.config["PRIVATE_LINK_RATE_LIMIT"]


@bp.get("/payments/return")
@limiter.limit(_return_limit)  # each visit asks the provider: as many as the private pages allow
def checkout_return():
    _enabled()
    session_id = request.args.get("session_id", "")
    if not SESSION_ID.fullmatch(session_id):
        return redirect(url_for("intake.received"), code=303)
    payment, outcome = payments.verify_return(
        session_id, payment_provider(), policies(), utcnow(), actor=current_actor(patient=True)
    )
    if payment is None:
        return redirect(url_for("intake.received"), code=303)
    if outcome in (payments.QUEUED, payments.ALREADY):
        flash(gettext("Thank you: your payment is confirmed, and your request is with our dermatologists."), "success")
    elif outcome == payments.REFUNDING:
        flash(
            gettext(
                "This request had already been paid for, or could no longer be sent, so this payment "
                "will be refunded to you in full."
            ),
            "error",
        )
    else:
        flash(
            gettext(
                "We are waiting for the payment to be confirmed. This usually takes a few seconds: "
                "reload this page, or look for our email."
            )
        )
    return redirect(url_for("intake.received"), code=303)


@bp.get("/payments/cancelled")
def checkout_cancelled():
    _enabled()
    flash(
        gettext(
            "The payment was not completed, so your request has not been sent to a dermatologist yet. "
            "You can pay now, or later with your private link."
        ),
        "error",
    )
    return redirect(url_for("intake.received"), code=303)
