"""Requests never paid: one reminder with a link to pay, then, after UNPAID_KEEP_HOURS and once every
payment page is closed, deleted with their photos. A payment that slipped through unseen is found by
the worker; one that arrives for a request that is gone is refunded in full."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import time_machine
from sqlalchemy import func, select

from app.consultations.submission import send_requested_links
from app.extensions import db
from app.models import AuditEvent, ConsultationRequest, OutboundEmail, Payment, Photo, Refund
from app.outbox import render
from tests.factories import stored_files
from tests.payments.helpers import (
    clocks,
    emails,
    latest_request,
    payment_of,
    post_event,
    run_worker,
    send_paid_form,
    session_from,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def at(delta: timedelta):
    return time_machine.travel(T0 + delta, tick=False)


def requests_stored() -> int:
    return db.session.execute(select(func.count(ConsultationRequest.id))).scalar_one()


def test_an_unpaid_request_gets_one_reminder_with_a_link_to_pay(client, standin):
    with at(timedelta(0)):
        send_paid_form(client, tier="express")
    with at(timedelta(minutes=59)):
        assert run_worker(T0 + timedelta(minutes=59))["reminders"] == 0
    with at(timedelta(minutes=61)):
        assert run_worker(T0 + timedelta(minutes=61))["reminders"] == 1
    with at(timedelta(hours=3)):
        assert run_worker(T0 + timedelta(hours=3))["reminders"] == 0
    reminders = emails("payments/reminder")
    assert len(reminders) == 1 and reminders[0].recipient == "ona.patient@example.com"
    subject, body, _html = render(reminders[0])
    reference = latest_request().reference
    assert subject == f"Your request {reference} is not sent yet"
    assert "€59.00" in body and "2026-11-25 11:00" in body, "the price, and the deadline in clinic time"
    link = re.search(r"http://localhost(/c/\S+)", body).group(1)
    with at(timedelta(hours=3)):
        page = client.get(link).get_data(as_text=True)
    assert "Waiting for payment" in page and 'id="pay-button"' in page and "Pay €59.00" in page


def test_after_the_keep_time_the_unpaid_request_goes_with_its_photos(app, client, standin):
    with at(timedelta(0)):
        send_paid_form(client)
    consultation = latest_request()
    reference, upload_dir = consultation.reference, app.config["UPLOAD_DIR"]
    assert [name for name in stored_files(upload_dir) if not name.startswith("pending")], "photos are stored"
    with at(timedelta(hours=2)):
        run_worker(T0 + timedelta(hours=2))  # the reminder
    with at(timedelta(hours=24, minutes=2)):  # the payment page expires at 24 h; a margin for clocks
        assert run_worker(T0 + timedelta(hours=24, minutes=2))["unpaid_deleted"] == 0
        assert requests_stored() == 1
    with at(timedelta(hours=24, minutes=6)):
        counts = run_worker(T0 + timedelta(hours=24, minutes=6))
    assert counts["unpaid_deleted"] == 1 and requests_stored() == 0
    assert db.session.execute(select(func.count(Photo.id))).scalar_one() == 0
    assert [name for name in stored_files(upload_dir) if not name.startswith("pending")] == []
    assert db.session.execute(select(func.count(OutboundEmail.id))).scalar_one() == 0, "the reminder went too"
    payment = db.session.execute(select(Payment)).scalar_one()
    assert (payment.status, payment.request_id, payment.reference) == ("abandoned", None, reference)
    trail = db.session.execute(select(AuditEvent.detail).where(AuditEvent.action == "abandoned")).scalars().all()
    assert trail == [f"abandoned {reference}"]


def test_a_payment_page_still_open_keeps_the_request_and_its_payment_counts(client, standin):
    with at(timedelta(0)):
        send_paid_form(client)
        page = client.get("/consultation/received").get_data(as_text=True)
    pay_action = re.search(r'action="(/c/[^"]+/pay)"', page).group(1)
    with at(timedelta(hours=23, minutes=50)):  # paying again just before the time is up
        late_page = session_from(client.post(pay_action))
    assert standin.sessions[late_page]["expires_at"] == int((T0 + timedelta(hours=24, minutes=20)).timestamp())
    with at(timedelta(hours=24, minutes=10)):
        assert run_worker(T0 + timedelta(hours=24, minutes=10))["unpaid_deleted"] == 0
    with at(timedelta(hours=24, minutes=15)):
        assert post_event(client, standin, standin.pay(late_page)).get_json()["outcome"] == "queued"
    assert latest_request().status == "submitted"
    with at(timedelta(hours=25)):
        assert run_worker(T0 + timedelta(hours=25))["unpaid_deleted"] == 0
    assert requests_stored() == 1


def test_after_the_keep_time_the_private_link_offers_no_payment(client, standin):
    with at(timedelta(0)):
        send_paid_form(client)
        page = client.get("/consultation/received").get_data(as_text=True)
    pay_action = re.search(r'action="(/c/[^"]+/pay)"', page).group(1)
    sessions = len(standin.sessions)
    with at(timedelta(hours=24, minutes=1)):
        response = client.post(pay_action, follow_redirects=True)
    assert "can no longer be paid" in response.get_data(as_text=True)
    assert len(standin.sessions) == sessions


def test_a_payment_whose_webhook_never_came_and_whose_patient_never_returned_is_found(client, standin):
    with at(timedelta(0)):
        session_id = session_from(send_paid_form(client))
    with at(timedelta(minutes=4)):
        standin.pay(session_id, deliver=False)  # paid, then the browser closed; the webhook was lost
        assert run_worker(T0 + timedelta(minutes=4))["payments_confirmed"] == 0  # too early to ask
    with at(timedelta(minutes=11)):
        assert run_worker(T0 + timedelta(minutes=11))["payments_confirmed"] == 1
    consultation = latest_request()
    assert consultation.status == "submitted" and clocks(consultation) == 1
    assert consultation.due_at == T0 + timedelta(minutes=11, hours=24)
    assert len(emails("payments/receipt")) == 1


def test_when_the_provider_cannot_be_asked_at_the_deadline_nothing_is_deleted(client, standin):
    with at(timedelta(0)):
        send_paid_form(client)
    standin.unavailable = True
    with at(timedelta(hours=24, minutes=10)):
        assert run_worker(T0 + timedelta(hours=24, minutes=10))["unpaid_deleted"] == 0
        assert requests_stored() == 1
    standin.unavailable = False
    with at(timedelta(hours=24, minutes=11)):
        assert run_worker(T0 + timedelta(hours=24, minutes=11))["unpaid_deleted"] == 1
    assert requests_stored() == 0


def test_a_payment_for_a_request_erased_meanwhile_is_refunded_in_full(client, standin):
    with at(timedelta(0)):
        session_id = session_from(send_paid_form(client, tier="express"))
        page = client.get("/consultation/received").get_data(as_text=True)
        token = re.search(r'action="/c/([^"/]+)/pay"', page).group(1)
        erase = client.post(f"/c/{token}/erase", data={"confirm": "y"})
        assert erase.status_code == 303 and requests_stored() == 0
        event = standin.pay(session_id)  # the payment page was still open in another tab
        assert post_event(client, standin, event).get_json()["outcome"] == "refunding"
        assert post_event(client, standin, event).get_json()["outcome"] == "duplicate"
        run_worker(T0)
    intent = event["data"]["object"]["payment_intent"]
    refund = db.session.execute(select(Refund)).scalar_one()
    assert (refund.reason, refund.amount_cents, refund.status) == ("unqueued", 5900, "succeeded")
    assert [r["amount"] for r in standin.refunded(intent)] == [5900]
    assert requests_stored() == 0
    payment = db.session.execute(select(Payment)).scalar_one()
    assert (payment.status, payment.request_id) == ("abandoned", None)


def test_the_patient_can_ask_for_the_private_link_of_an_unpaid_request(client, standin):
    with at(timedelta(0)):
        send_paid_form(client)
        response = client.post("/consultation/link", data={"email": "ona.patient@example.com"})
        send_requested_links()  # the worker answers "lost your link?" after the page has answered
    assert response.status_code == 303
    (email,) = emails("link_resent")
    _subject, body, _html = render(email)
    link = urlsplit(re.search(r"http://localhost/c/\S+", body).group(0)).path
    with at(timedelta(minutes=5)):
        assert 'id="pay-button"' in client.get(link).get_data(as_text=True)
    assert payment_of(latest_request()).status == "awaiting"


def test_the_worker_stops_asking_about_a_payment_page_once_it_is_known_to_be_paid(client, standin):
    with at(timedelta(0)):
        session_id = session_from(send_paid_form(client))
    with at(timedelta(minutes=2)):
        post_event(client, standin, standin.pay(session_id))  # paid, and the webhook said so
        client.get(f"/payments/return?session_id={session_id}")  # and the return page asked again
    asked = len(standin.calls)
    for hours in (1, 3, 30):
        with at(timedelta(hours=hours)):
            run_worker(T0 + timedelta(hours=hours))
    assert [call for call in standin.calls[asked:] if "checkout/sessions" in call[1]] == []
