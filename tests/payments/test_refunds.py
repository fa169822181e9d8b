"""Refunds: a late first reply is refunded by the worker exactly once, even with two workers at the
same moment; a refund the provider refuses stays visible, is retried with backoff and goes through;
staff refund by hand (audited); the patient is told and sees it; the dashboard counts it."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.consultations import refunds
from app.consultations import staff_actions as actions
from app.consultations.lateness import LateExplanation, LateReason
from app.extensions import db
from app.models import AuditEvent, Refund
from app.outbox import render
from app.runtime import payment_provider
from tests.conftest import ON_POSTGRES, build_app, empty_database, reset_database
from tests.factories import login_as, make_user, use_settings
from tests.payments.conftest import paid_settings
from tests.payments.helpers import (
    emails,
    latest_request,
    payment_of,
    post_event,
    run_worker,
    send_paid_form,
    session_from,
)

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def paid_request(client, standin, tier: str = "standard", when: datetime = T0):
    """A patient sends the form and pays at `when`; returns the queued request."""
    with at(when):
        session_id = session_from(send_paid_form(client, tier=tier))
        assert post_event(client, standin, standin.pay(session_id)).get_json()["outcome"] == "queued"
    return latest_request()


def refund_rows() -> list[Refund]:
    db.session.expire_all()
    return list(db.session.execute(select(Refund).order_by(Refund.id)).scalars())


# --- Late: refunded by the worker, once --------------------------------------------------------------


def test_an_answer_in_time_is_not_refunded_and_a_late_one_is(client, standin):
    derm = make_user("dermatologist")
    on_time = paid_request(client, standin, tier="express")
    late = paid_request(client, standin, tier="express")
    with at(T0 + timedelta(hours=11, minutes=59)):
        for consultation in (on_time, late):
            actions.claim(consultation, derm, T0)
        actions.answer(on_time, derm, actions.Answer("Eczema.", "Emollient."), T0 + timedelta(hours=11, minutes=59))
    with at(T0 + timedelta(hours=13)):
        actions.answer(
            late,
            derm,
            actions.Answer("Eczema.", "Emollient."),
            T0 + timedelta(hours=13),
            late=LateExplanation(LateReason.WORKLOAD),
        )
        counts = run_worker(T0 + timedelta(hours=13))
    assert counts["late_refunds"] == 1 and counts["refunds_paid"] == 1
    (refund,) = refund_rows()
    assert (refund.payment_id, refund.reason, refund.amount_cents, refund.status) == (
        payment_of(late).id,
        "late",
        5900,
        "succeeded",
    )
    assert [r["amount"] for r in standin.refunded(payment_of(late).payment_intent)] == [5900]
    assert standin.refunded(payment_of(on_time).payment_intent) == []


def test_an_unanswered_request_is_refunded_when_its_due_moment_passes_and_only_then(client, standin):
    consultation = paid_request(client, standin)  # standard: 24 hours
    with at(T0 + timedelta(hours=23, minutes=59)):
        assert run_worker(T0 + timedelta(hours=23, minutes=59))["late_refunds"] == 0
    with at(T0 + timedelta(hours=24)):
        assert run_worker(T0 + timedelta(hours=24))["late_refunds"] == 1
    with at(T0 + timedelta(hours=30)):
        assert run_worker(T0 + timedelta(hours=30))["late_refunds"] == 0
    assert len(refund_rows()) == 1 and len(standin.refunded(payment_of(consultation).payment_intent)) == 1
    (email,) = emails("payments/refund")
    subject, body, _html = render(email)
    assert subject == f"We have refunded €39.00 for your request {consultation.reference}"
    assert "within 24 hours" in body and "full price" in body and "still get your answer" in body
    assert latest_request().status == "submitted", "the patient still gets an answer"


def test_a_request_withdrawn_before_its_due_moment_is_not_refunded_for_lateness(client, standin):
    from app.consultations import conversation

    consultation = paid_request(client, standin)
    with at(T0 + timedelta(hours=2)):
        conversation.withdraw(consultation, T0 + timedelta(hours=2))
    with at(T0 + timedelta(hours=30)):
        assert run_worker(T0 + timedelta(hours=30))["late_refunds"] == 0


# --- Withdrawn before any reply: what is left of the price goes back ----------------------------------


def test_a_paid_request_withdrawn_before_any_reply_is_refunded_in_full_once(client, standin):
    from app.consultations import conversation

    consultation = paid_request(client, standin)
    with at(T0 + timedelta(hours=2)):
        conversation.withdraw(consultation, T0 + timedelta(hours=2))
        counts = run_worker(T0 + timedelta(hours=2))
    assert counts["refunds_paid"] == 1
    (refund,) = refund_rows()
    assert (refund.reason, refund.amount_cents, refund.status, refund.key) == (
        "withdrawn",
        3900,
        "succeeded",
        f"withdrawn:{payment_of(consultation).id}",
    )
    assert [r["amount"] for r in standin.refunded(payment_of(consultation).payment_intent)] == [3900]
    with at(T0 + timedelta(hours=30)):
        assert run_worker(T0 + timedelta(hours=30))["late_refunds"] == 0  # nothing left to give back
    assert len(refund_rows()) == 1
    events = db.session.execute(select(AuditEvent).where(AuditEvent.action == "refunded")).scalars().all()
    assert [event.detail for event in events] == ["withdrawn refund of 3900 eur cents"]
    (email,) = emails("payments/refund")
    subject, body, _html = render(email)
    assert subject == f"We have refunded €39.00 for your request {consultation.reference}"
    assert "We have refunded €39.00 to the card you paid with" in body


def test_withdrawn_after_a_partial_late_refund_the_rest_goes_back(app, client, standin, monkeypatch):
    from app.consultations import conversation

    use_settings(app, monkeypatch, LATE_REFUND_PERCENT=50)
    consultation = paid_request(client, standin)
    with at(T0 + timedelta(hours=25)):
        run_worker(T0 + timedelta(hours=25))  # late: half back
        conversation.withdraw(consultation, T0 + timedelta(hours=25))
        run_worker(T0 + timedelta(hours=25))
    assert [(r.reason, r.amount_cents, r.status) for r in refund_rows()] == [
        ("late", 1950, "succeeded"),
        ("withdrawn", 1950, "succeeded"),
    ]
    assert payment_of(consultation).refunded_cents == 3900


def test_an_answered_request_cannot_be_withdrawn_so_nothing_is_refunded(client, standin):
    from app.consultations import conversation
    from app.consultations.conversation import PatientActionRefused

    derm = make_user("dermatologist")
    consultation = paid_request(client, standin)
    with at(T0 + timedelta(hours=3)):
        actions.claim(consultation, derm, T0 + timedelta(hours=3))
        actions.answer(consultation, derm, actions.Answer("Eczema.", "Emollient."), T0 + timedelta(hours=3))
        with pytest.raises(PatientActionRefused):
            conversation.withdraw(consultation, T0 + timedelta(hours=3))
    assert refund_rows() == []


def test_late_refund_percent_refunds_part_of_the_price(app, client, standin, monkeypatch):
    use_settings(app, monkeypatch, LATE_REFUND_PERCENT=50)
    consultation = paid_request(client, standin)
    with at(T0 + timedelta(hours=25)):
        run_worker(T0 + timedelta(hours=25))
    (refund,) = refund_rows()
    assert refund.amount_cents == 1950 and payment_of(consultation).refunded_cents == 1950
    _subject, body, _html = render(emails("payments/refund")[0])
    assert "€19.50 of the price" in body


def _worker(app, start: threading.Barrier, now: datetime, results: list):
    with app.app_context():
        start.wait(timeout=30)
        try:
            results.append(run_worker(now))
        except Exception as error:  # a failing worker must fail the test, not vanish with its thread
            results.append(error)
        finally:
            db.session.remove()
            db.engine.dispose()


def build_app_for(database_url, upload_dir, standin):
    from app import create_app

    return create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": database_url, "UPLOAD_DIR": upload_dir, **paid_settings(standin)}
    )


def test_two_workers_at_the_same_moment_refund_each_late_request_exactly_once(tmp_path, standin):
    """The refunds table's unique key and the claim on each row: one refund recorded, one paid."""
    url = os.environ["TEST_DATABASE_URL"] if ON_POSTGRES else f"sqlite:///{tmp_path / 'two-workers.sqlite'}"
    upload_dir = str(tmp_path / "uploads")
    app = build_app(tmp_path, SQLALCHEMY_DATABASE_URI=url, **paid_settings(standin))
    reset_database(app)
    try:
        with app.app_context():
            client = app.test_client()
            late = [paid_request(client, standin, when=T0 + timedelta(minutes=n)) for n in range(6)]
            intents = [payment_of(consultation).payment_intent for consultation in late]
            db.session.remove()
        past_target = T0 + timedelta(hours=25)
        for _round in range(2):  # the same moment twice: the second round finds nothing left to do
            start, results = threading.Barrier(2), []
            # Each worker its own app, built here: Python 3.11's compiler (werkzeug compiles every
            # route) is not safe to run in two threads at once.
            apps = [build_app_for(url, upload_dir, standin) for _ in range(2)]
            with at(past_target):
                threads = [
                    threading.Thread(target=_worker, args=(worker_app, start, past_target, results))
                    for worker_app in apps
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=120)
            assert len(results) == 2 and not [r for r in results if isinstance(r, Exception)], results
        with app.app_context():
            rows = list(db.session.execute(select(Refund).order_by(Refund.id)).scalars())
            assert sorted(r.payment_intent for r in rows) == sorted(intents)
            assert all((r.reason, r.status, r.attempts) == ("late", "succeeded", 1) for r in rows)
            sent = db.session.execute(
                select(func.count()).select_from(emails_table()).where(emails_table().c.template == "payments/refund")
            ).scalar_one()
            assert sent == len(late)
            db.session.remove()
        for intent in intents:
            assert [r["amount"] for r in standin.refunded(intent)] == [3900], "paid once by the provider"
    finally:
        empty_database(app)


def emails_table():
    from app.models import OutboundEmail

    return OutboundEmail.__table__


# --- Refused by the provider: kept, shown, retried --------------------------------------------------


def test_a_refused_refund_stays_visible_is_retried_with_backoff_and_goes_through(app, client, standin):
    consultation = paid_request(client, standin)
    intent = payment_of(consultation).payment_intent
    standin.fail_next("refunds.create", status=400, code="balance_insufficient", times=2)
    due = T0 + timedelta(hours=24, minutes=1)
    with at(due):
        counts = run_worker(due)
    assert (counts["late_refunds"], counts["refunds_refused"]) == (1, 1)
    (refund,) = refund_rows()
    assert (refund.status, refund.refusals, refund.next_attempt_at) == ("failed", 1, due + timedelta(minutes=5))
    assert refund.last_error.startswith("balance_insufficient")
    (alert,) = emails("payments/refund_refused")
    assert alert.recipient == "alerts@clinic.example"
    assert emails("payments/refund") == [], "the patient hears of it once it is paid"

    staff = app.test_client()
    with at(due):
        login_as(staff, make_user("staff"))
        dashboard = staff.get("/staff/").get_data(as_text=True)
        listing = staff.get("/staff/payments/").get_data(as_text=True)
    assert "1 refund needs attention" in dashboard
    assert f'id="refund-{refund.id}"' in listing and "balance_insufficient" in listing and "Try again now" in listing

    with at(due + timedelta(minutes=4)):
        assert run_worker(due + timedelta(minutes=4))["refunds_refused"] == 0  # still backing off
    with at(due + timedelta(minutes=5)):
        assert run_worker(due + timedelta(minutes=5))["refunds_refused"] == 1
    (refund,) = refund_rows()
    assert (refund.refusals, refund.next_attempt_at) == (2, due + timedelta(minutes=15)), "the wait doubles"
    assert len(emails("payments/refund_refused")) == 1, "staff are told once"
    with at(due + timedelta(minutes=15)):
        assert run_worker(due + timedelta(minutes=15))["refunds_paid"] == 1
    (refund,) = refund_rows()
    assert (refund.status, refund.attempts, refund.last_error) == ("succeeded", 3, None)
    assert [r["amount"] for r in standin.refunded(intent)] == [3900]
    assert len(emails("payments/refund")) == 1
    with at(due + timedelta(minutes=16)):
        login_as(staff, make_user("staff"))
        assert "needs attention" not in staff.get("/staff/").get_data(as_text=True)


def test_staff_can_try_a_refused_refund_again_at_once(app, client, standin):
    consultation = paid_request(client, standin)
    standin.fail_next("refunds.create", status=400, code="balance_insufficient")
    due = T0 + timedelta(hours=24, minutes=1)
    with at(due):
        run_worker(due)
    (refund,) = refund_rows()
    staff = app.test_client()
    with at(due + timedelta(minutes=1)):
        login_as(staff, make_user("staff"))
        response = staff.post(f"/staff/payments/refunds/{refund.id}/retry")
    assert response.status_code == 303
    assert refund_rows()[0].status == "succeeded"
    assert len(standin.refunded(payment_of(consultation).payment_intent)) == 1


def test_a_worker_that_died_after_the_provider_paid_does_not_pay_twice(client, standin):
    consultation = paid_request(client, standin)
    due = T0 + timedelta(hours=24, minutes=1)
    with at(due):
        refunds.refund_late(policies_now(), due)
        (refund,) = refund_rows()
        claimed = refunds.claim_refund(refund.id, due)
        # The worker asks the provider, which pays, and dies before it records the answer.
        payment_provider().refund(
            payment_intent=claimed.payment_intent,
            amount_cents=claimed.amount_cents,
            idempotency_key=f"refund-{claimed.id}-0",
            reference=consultation.reference,
        )
    with at(due + timedelta(minutes=4)):
        assert run_worker(due + timedelta(minutes=4))["refunds_paid"] == 0, "another worker waits for the lease"
    with at(due + timedelta(minutes=5)):
        assert run_worker(due + timedelta(minutes=5))["refunds_paid"] == 1
    assert refund_rows()[0].status == "succeeded"
    assert len(standin.refunded(payment_of(consultation).payment_intent)) == 1


def policies_now():
    from app.runtime import policies

    return policies()


# --- By hand, by staff ------------------------------------------------------------------------------


def test_staff_refund_by_hand_audited_within_what_was_paid(app, client, standin):
    consultation = paid_request(client, standin)
    staff_user = make_user("staff", name="Rasa Desk")
    staff = app.test_client()
    with at(T0 + timedelta(hours=2)):
        login_as(staff, staff_user)
        page = staff.get(f"/staff/payments/{consultation.reference}").get_data(as_text=True)
        response = staff.post(
            f"/staff/payments/{consultation.reference}/refund", data={"amount": "10,50 €", "confirm": "y"}
        )
    assert 'value="39.00"' in page and "Refund by hand" in page
    assert response.status_code == 303
    (refund,) = refund_rows()
    assert (refund.reason, refund.amount_cents, refund.status, refund.requested_by_id) == (
        "manual",
        1050,
        "succeeded",
        staff_user.id,
    )
    assert payment_of(consultation).refunded_cents == 1050
    trail = db.session.execute(select(AuditEvent).where(AuditEvent.action == "refunded")).scalar_one()
    assert (trail.actor_user_id, trail.request_id) == (staff_user.id, consultation.id)
    assert len(emails("payments/refund")) == 1

    with at(T0 + timedelta(hours=2)):
        target = f"/staff/payments/{consultation.reference}/refund"
        too_much = staff.post(target, data={"amount": "30", "confirm": "y"})
        unconfirmed = staff.post(target, data={"amount": "1"})
        nonsense = staff.post(target, data={"amount": "ten", "confirm": "y"})
    assert too_much.status_code == 409 and "up to what is left" in too_much.get_data(as_text=True)
    assert (unconfirmed.status_code, nonsense.status_code) == (422, 422)
    assert len(refund_rows()) == 1

    derm = app.test_client()
    with at(T0 + timedelta(hours=2)):
        login_as(derm, make_user("dermatologist"))
        assert derm.post(target, data={"amount": "1"}).status_code == 403
        assert derm.get("/staff/payments/").status_code == 403


def test_a_full_refund_by_hand_leaves_nothing_for_the_late_refund(client, standin, app):
    consultation = paid_request(client, standin)
    staff = app.test_client()
    with at(T0 + timedelta(hours=1)):
        login_as(staff, make_user("staff"))
        staff.post(f"/staff/payments/{consultation.reference}/refund", data={"amount": "39", "confirm": "y"})
    with at(T0 + timedelta(hours=30)):
        assert run_worker(T0 + timedelta(hours=30))["late_refunds"] == 0
    assert [r.reason for r in refund_rows()] == ["manual"]
    assert [r["amount"] for r in standin.refunded(payment_of(consultation).payment_intent)] == [3900]


# --- What the patient and staff see -----------------------------------------------------------------


def test_the_private_page_and_the_dashboard_show_a_late_refund(app, client, standin):
    consultation = paid_request(client, standin, tier="express")
    with at(T0):
        received = client.get("/consultation/received").get_data(as_text=True)
    token = received.split('id="private-link" href="http://localhost/c/', 1)[1].split('"', 1)[0]
    with at(T0 + timedelta(hours=13)):
        run_worker(T0 + timedelta(hours=13))
    with at(T0 + timedelta(hours=14)):
        page = client.get(f"/c/{token}").get_data(as_text=True)
    assert "Refunded €59.00 on" in page and "Our first reply came later than promised" in page
    assert "Paid" in page and "€59.00" in page
    staff = app.test_client()
    with at(T0 + timedelta(hours=14)):
        login_as(staff, make_user("staff"))
        dashboard = staff.get("/staff/").get_data(as_text=True)
        listing = staff.get("/staff/payments/").get_data(as_text=True)
    assert 'id="payments-by-month"' in dashboard
    this_month = dashboard.split('<time datetime="2026-11">', 1)[1].split("</tr>", 1)[0]
    cells = [cell.split(">", 1)[1].split("<", 1)[0] for cell in this_month.split("<td")[1:]]
    assert cells[:6] == ["1", "€59.00", "1", "€59.00", "100.0 %", "0"]
    assert consultation.reference in listing


def test_the_patient_is_told_before_and_after_withdrawing_that_the_money_goes_back(client, standin):
    consultation = paid_request(client, standin)
    with at(T0):
        received = client.get("/consultation/received").get_data(as_text=True)
    token = received.split('id="private-link" href="http://localhost/c/', 1)[1].split('"', 1)[0]
    with at(T0 + timedelta(hours=1)):
        confirm = client.get(f"/c/{token}/withdraw").get_data(as_text=True)
        assert "Nobody has answered yet, so we will refund €39.00 to the card you paid with." in confirm
        done = client.post(f"/c/{token}/withdraw", follow_redirects=True)
    page = done.get_data(as_text=True)
    assert "We are refunding €39.00 to the card you paid with." in page
    db.session.refresh(consultation)
    assert consultation.status == "withdrawn"
    assert [(r.reason, r.amount_cents, r.status) for r in refund_rows()] == [("withdrawn", 3900, "pending")]
    with at(T0 + timedelta(hours=2)):
        run_worker(T0 + timedelta(hours=2))
        page = client.get(f"/c/{token}").get_data(as_text=True)
    assert "Refunded €39.00 on" in page and "Withdrawn before our first reply" in page


@pytest.mark.parametrize("language", ["en", "lt"])
def test_refund_emails_in_the_patients_language(client, standin, language):
    with at(T0):
        client.get(f"/consultation/new?lang={language}")
    paid_request(client, standin)
    with at(T0 + timedelta(hours=25)):
        run_worker(T0 + timedelta(hours=25))
    (email,) = emails("payments/refund")
    assert email.language == language
    _subject, body, _html = render(email)
    assert ("€39.00" if language == "en" else "39,00\xa0€") in body
