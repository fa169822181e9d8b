"""Paying for a consultation: the tier on the form, the request held (in no queue, with no clock)
until the payment is confirmed by a signed webhook or by the return page, whichever comes first,
exactly once; bad signatures refused; duplicate and out-of-order events harmless."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import func, select

from app.consultations import payments
from app.consultations.alerts import check
from app.extensions import db
from app.models import (
    AuditEvent,
    ConsultationRequest,
    OutboundEmail,
    Payment,
    PaymentEvent,
    Refund,
    ResponseClock,
)
from app.outbox import render
from app.runtime import policies
from tests.factories import login_as, make_user, open_consultation_form, submit_request, use_settings
from tests.payments.helpers import (
    clocks,
    emails,
    latest_request,
    payment_of,
    post_event,
    run_worker,
    send_paid_form,
    session_from,
    session_ids,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def text(response) -> str:
    return response.get_data(as_text=True)


# --- The form ---------------------------------------------------------------------------------------


def test_the_form_shows_each_tier_with_its_price_and_promise_in_the_readers_language(client):
    page = text(client.get("/consultation/new?lang=en"))
    assert "€39.00" in page and "€59.00" in page
    assert "A written answer within 24 hours" in page and "A written answer within 12 hours" in page
    assert re.search(r'name="tier" type="radio" value="standard" checked', page) or re.search(
        r'checked[^>]*name="tier"[^>]*value="standard"', page
    )
    assert "Continue to payment" in page and "Send to a dermatologist" not in page
    lithuanian = text(client.get("/consultation/new?lang=lt"))
    assert "39,00\xa0€" in lithuanian and "59,00\xa0€" in lithuanian


def test_a_form_sent_back_for_correction_keeps_the_chosen_tier(client, standin):
    response = submit_request(client, tier="express", description="")
    assert response.status_code == 422
    page = text(response)
    express = re.search(r'<input[^>]*value="express"[^>]*>', page).group(0)
    assert "checked" in express
    assert db.session.execute(select(func.count(ConsultationRequest.id))).scalar_one() == 0
    assert standin.sessions == {}


# --- Held until paid ---------------------------------------------------------------------------------


@time_machine.travel(T0, tick=False)
def test_sending_the_form_stores_the_request_unpaid_and_sends_the_patient_to_pay(client, standin):
    response = send_paid_form(client, tier="express", description="A very private rash on my hands.")
    assert response.status_code == 303
    session_id = session_from(response)
    assert response.headers["Location"].startswith(standin.url)

    consultation = latest_request()
    payment = payment_of(consultation)
    assert consultation.status == "awaiting_payment"
    assert (consultation.response_target_hours, consultation.due_at, clocks(consultation)) == (12, None, 0)
    assert (payment.tier, payment.amount_cents, payment.currency, payment.status) == (
        "express",
        5900,
        "eur",
        "awaiting",
    )
    assert session_ids(payment) == [session_id]
    assert db.session.execute(select(func.count(OutboundEmail.id))).scalar_one() == 0, "no email before payment"

    sent = standin.sessions[session_id]
    assert (sent["amount_total"], sent["currency"], sent["mode"]) == (5900, "eur", "payment")
    assert sent["metadata"] == {"skin_clinic_payment": str(payment.id), "reference": consultation.reference}
    assert sent["customer_email"] == "ona.patient@example.com" and sent["locale"] == "en"
    assert sent["expires_at"] == int((T0 + timedelta(hours=24)).timestamp())
    assert "{CHECKOUT_SESSION_ID}" in sent["success_url"] and "/c/" not in sent["success_url"] + sent["cancel_url"]
    # The provider learns the price and the reference, never what the patient wrote.
    assert "rash" not in str(sent) and "Hydrocortisone" not in str(sent)


@time_machine.travel(T0, tick=False)
def test_an_unpaid_request_is_in_no_queue_no_search_no_alert_and_no_figure(app, client, standin):
    send_paid_form(client)
    consultation = latest_request()
    staff = app.test_client()
    login_as(staff, make_user("staff"))
    row = f'href="/queue/{consultation.reference}"'
    assert row not in text(staff.get("/queue/"))
    search = staff.get("/queue/", query_string={"q": consultation.reference})
    assert search.status_code == 200 and row not in text(search) and "No request has a reference" in text(search)
    assert staff.get(f"/queue/{consultation.reference}").status_code == 404
    assert staff.get(f"/staff/payments/{consultation.reference}").status_code == 404
    dashboard = text(staff.get("/staff/"))
    assert re.search(r'stat-on_track">\s*<span class="stat-value">0<', dashboard)
    with time_machine.travel(T0 + timedelta(hours=30), tick=False):
        assert check(policies())["emails"] == 0
    assert db.session.execute(select(func.count(ResponseClock.id))).scalar_one() == 0


# --- Confirmed exactly once ------------------------------------------------------------------------


@time_machine.travel(T0, tick=False)
def test_a_signed_webhook_queues_the_paid_request_once_with_the_tiers_clock(client, standin):
    session_id = session_from(send_paid_form(client, tier="express"))
    consultation = latest_request()
    with time_machine.travel(T0 + timedelta(minutes=3), tick=False):
        event = standin.pay(session_id)
        response = post_event(client, standin, event)
        assert response.status_code == 200 and response.get_json()["outcome"] == "queued"
    consultation = latest_request()
    payment = payment_of(consultation)
    paid_at = T0 + timedelta(minutes=3)
    assert consultation.status == "submitted"
    assert consultation.due_at == paid_at + timedelta(hours=12), "the express tier's clock, from the payment"
    assert (payment.status, payment.paid_at, payment.payment_intent) == (
        "paid",
        paid_at,
        event["data"]["object"]["payment_intent"],
    )
    assert clocks(consultation) == 1
    assert [e.template for e in emails("request_received")] == ["request_received"]
    assert len(emails("staff_new_request")) == 1 and len(emails("payments/receipt")) == 1

    again = post_event(client, standin, event)  # the provider sends the same event again
    assert again.status_code == 200 and again.get_json()["outcome"] == "duplicate"
    late_twin = standin.make_event("checkout.session.async_payment_succeeded", standin.sessions[session_id])
    assert post_event(client, standin, late_twin).get_json()["outcome"] == "already"
    assert clocks(latest_request()) == 1
    assert len(emails("request_received")) == 1 and len(emails("payments/receipt")) == 1
    assert db.session.execute(select(func.count(PaymentEvent.id))).scalar_one() == 2
    paid_audit = db.session.execute(select(AuditEvent).where(AuditEvent.action == "paid")).scalars().all()
    assert len(paid_audit) == 1 and paid_audit[0].request_id == consultation.id


@time_machine.travel(T0, tick=False)
def test_the_confirmation_email_and_receipt_promise_the_tiers_hours(client, standin):
    session_id = session_from(send_paid_form(client, tier="express"))
    post_event(client, standin, standin.pay(session_id))
    _subject, confirmation, _html = render(emails("request_received")[0])
    assert "within 12 hours" in confirmation
    subject, receipt, html = render(emails("payments/receipt")[0])
    reference = latest_request().reference
    assert subject == f"Receipt for your consultation {reference}"
    for expected in ("Express", "12 hours", "€59.00", reference, payment_of(latest_request()).payment_intent):
        assert expected in receipt and expected in html


@time_machine.travel(T0, tick=False)
def test_the_receipt_names_the_seller_as_the_clinic_has_set_it(app, client, standin, monkeypatch):
    use_settings(
        app,
        monkeypatch,
        CLINIC_NAME="Odos klinika UAB",
        CLINIC_ADDRESS="Gedimino pr. 1, Vilnius",
        CLINIC_COMPANY_CODE="304123456",
        CLINIC_VAT_NUMBER="LT100012345678",
    )
    post_event(client, standin, standin.pay(session_from(send_paid_form(client))))
    _subject, receipt, html = render(emails("payments/receipt")[0])
    for expected in (
        "Seller: Odos klinika UAB, Gedimino pr. 1, Vilnius",
        "Company code: 304123456",
        "VAT payer code: LT100012345678",
    ):
        assert expected in receipt
    assert "Odos klinika UAB" in html and "LT100012345678" in html and "Seller: Skin Clinic" not in receipt


@time_machine.travel(T0, tick=False)
def test_a_receipt_without_registration_codes_leaves_those_lines_out(client, standin):
    post_event(client, standin, standin.pay(session_from(send_paid_form(client))))
    _subject, receipt, _html = render(emails("payments/receipt")[0])
    assert "Seller: Skin Clinic, Vilnius, Lithuania" in receipt
    assert "Company code" not in receipt and "VAT" not in receipt


@time_machine.travel(T0, tick=False)
def test_the_return_page_confirms_the_payment_when_it_comes_before_the_webhook(client, standin):
    session_id = session_from(send_paid_form(client))
    event = standin.pay(session_id, deliver=False)  # the webhook is on its way, not here yet
    response = client.get(f"/payments/return?session_id={session_id}")
    assert response.status_code == 303 and response.headers["Location"].endswith("/consultation/received")
    page = text(client.get("/consultation/received"))
    assert "your payment is confirmed" in page and "Paid: €39.00 (Standard)" in page
    assert latest_request().status == "submitted" and clocks(latest_request()) == 1
    assert post_event(client, standin, event).get_json()["outcome"] == "already"
    assert client.get(f"/payments/return?session_id={session_id}").status_code == 303  # a reload
    assert clocks(latest_request()) == 1 and len(emails("payments/receipt")) == 1


@time_machine.travel(T0, tick=False)
def test_the_return_page_never_takes_the_address_for_proof(client, standin):
    session_id = session_from(send_paid_form(client))
    response = client.get(f"/payments/return?session_id={session_id}")  # back without paying
    assert response.status_code == 303
    assert "waiting for the payment to be confirmed" in text(client.get("/consultation/received"))
    assert latest_request().status == "awaiting_payment"
    calls = len(standin.calls)
    client.get("/payments/return?session_id=cs_test_made_up")
    client.get("/payments/return?session_id=<script>")
    assert len(standin.calls) == calls, "a session we never opened is not even asked about"
    assert latest_request().status == "awaiting_payment"


# --- Webhooks that are not what they claim ----------------------------------------------------------


@time_machine.travel(T0, tick=False)
def test_webhooks_with_a_bad_signature_are_refused_and_change_nothing(client, standin):
    session_id = session_from(send_paid_form(client))
    event = standin.pay(session_id, deliver=False)
    payload, header = standin.signed(event)
    forged = payload.replace(b'"paid"', b'"paid" ')
    old = int(time.time()) - 600
    attempts = [
        post_event(client, standin, event, secret="whsec_someone_else"),
        post_event(client, standin, event, timestamp=old),  # replayed 10 minutes later
        client.post("/payments/webhook", data=forged, headers={"Stripe-Signature": header}),
        client.post("/payments/webhook", data=payload),
        client.post("/payments/webhook", data=b"not json", headers={"Stripe-Signature": header}),
    ]
    assert [response.status_code for response in attempts] == [400] * 5
    assert latest_request().status == "awaiting_payment"
    assert db.session.execute(select(func.count(PaymentEvent.id))).scalar_one() == 0


@time_machine.travel(T0, tick=False)
def test_an_event_about_someone_elses_payment_is_acknowledged_and_ignored(client, standin):
    send_paid_form(client)
    foreign = {
        "id": "cs_test_foreign",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "payment_intent": "pi_foreign",
        "amount_total": 1000,
        "currency": "eur",
        "metadata": {},
    }
    response = post_event(client, standin, standin.make_event("checkout.session.completed", foreign))
    assert response.status_code == 200 and response.get_json()["outcome"] == "not_ours"
    assert latest_request().status == "awaiting_payment"
    assert db.session.execute(select(func.count(Refund.id))).scalar_one() == 0


# --- Paying again, out of order ------------------------------------------------------------------------


@time_machine.travel(T0, tick=False)
def test_left_the_payment_page_then_paid_from_the_confirmation_page(client, standin):
    first = session_from(send_paid_form(client))
    response = client.get("/payments/cancelled")
    assert response.status_code == 303
    page = text(client.get("/consultation/received"))
    assert "The payment was not completed" in page and "One step left: the payment" in page
    pay_action = re.search(r'action="(/c/[^"]+/pay)"', page).group(1)
    second = session_from(client.post(pay_action))
    assert second != first and session_ids(payment_of(latest_request())) == [first, second]
    post_event(client, standin, standin.pay(second))
    assert latest_request().status == "submitted"
    assert "Paid: €39.00" in text(client.get("/consultation/received"))


@time_machine.travel(T0, tick=False)
def test_two_payment_pages_both_paid_and_their_events_out_of_order_queue_once_and_refund_the_second(client, standin):
    send_paid_form(client, tier="express")
    consultation = latest_request()
    token_page = text(client.get("/consultation/received"))
    pay_action = re.search(r'action="(/c/[^"]+/pay)"', token_page).group(1)
    older, newer = session_ids(payment_of(consultation))[0], session_from(client.post(pay_action))
    newer_event = standin.pay(newer, deliver=False)
    older_event = standin.pay(older, deliver=False)  # a second tab: paid twice
    expired = standin.make_event("checkout.session.expired", {**standin.sessions[older], "status": "expired"})
    for event in (newer_event, expired, older_event, newer_event, older_event):
        assert post_event(client, standin, event).status_code == 200
    consultation = latest_request()
    payment = payment_of(consultation)
    assert consultation.status == "submitted" and clocks(consultation) == 1
    assert payment.payment_intent == newer_event["data"]["object"]["payment_intent"]
    refunds = db.session.execute(select(Refund)).scalars().all()
    assert [(r.reason, r.amount_cents, r.payment_intent) for r in refunds] == [
        ("duplicate", 5900, older_event["data"]["object"]["payment_intent"])
    ]
    assert payment.refunded_cents == 0, "the consultation's own payment is untouched"
    run_worker(T0)
    assert [r["amount"] for r in standin.refunded(older_event["data"]["object"]["payment_intent"])] == [5900]
    assert standin.refunded(payment.payment_intent) == []


# --- When the provider cannot help --------------------------------------------------------------------


@time_machine.travel(T0, tick=False)
def test_the_form_lands_on_a_page_that_offers_to_pay_with_the_price(client, standin):
    sent = submit_request(client, tier="express")
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/consultation/received")
    page = text(client.get("/consultation/received"))
    assert "One step left: the payment" in page and "Pay €59.00" in page and "within 12 hours" in page
    assert latest_request().status == "awaiting_payment" and standin.sessions == {}
    assert "Thank you. Your request has been sent." not in page


@time_machine.travel(T0, tick=False)
def test_when_no_payment_page_can_be_opened_the_request_is_kept_and_paying_later_works(client, standin):
    standin.fail_next("checkout.create", status=503, code="api_error")
    response = send_paid_form(client)
    assert response.status_code == 303 and response.headers["Location"].endswith("/consultation/received")
    page = text(client.get("/consultation/received"))
    assert "We could not open the payment page just now" in page
    consultation = latest_request()
    assert consultation.status == "awaiting_payment" and session_ids(payment_of(consultation)) == []
    pay_action = re.search(r'action="(/c/[^"]+/pay)"', page).group(1)
    session_id = session_from(client.post(pay_action))
    post_event(client, standin, standin.pay(session_id))
    assert latest_request().status == "submitted"


@time_machine.travel(T0, tick=False)
def test_a_double_click_on_send_opens_one_request(client, standin):
    _, key = open_consultation_form(client)
    first = submit_request(client, submission_key=key, tier="standard")
    second = submit_request(client, submission_key=key, tier="standard")
    assert first.headers["Location"] == second.headers["Location"]
    assert "Pay €39.00" in text(client.get("/consultation/received"))
    assert db.session.execute(select(func.count(ConsultationRequest.id))).scalar_one() == 1
    assert db.session.execute(select(func.count(Payment.id))).scalar_one() == 1


# --- Urgent requests: never held ----------------------------------------------------------------------


@time_machine.travel(T0, tick=False)
def test_a_request_that_is_not_held_goes_straight_to_the_queue_free(client, standin, monkeypatch):
    """holds_for_payment is the one place that decides; the triage rules make it False for urgent ones."""
    monkeypatch.setattr(payments, "holds_for_payment", lambda details, policy: False)
    response = submit_request(client, tier="express")
    assert response.headers["Location"].endswith("/consultation/received")
    assert "Thank you. Your request has been sent." in text(client.get("/consultation/received"))
    consultation = latest_request()
    assert consultation.status == "submitted" and consultation.due_at is not None
    assert consultation.response_target_hours is None, "its own target, not a tier's"
    assert db.session.execute(select(func.count(Payment.id))).scalar_one() == 0
    assert standin.sessions == {}
