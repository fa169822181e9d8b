"""A patient pays for an express consultation in a real Chromium: the tier with its price on the form,
one step to pay, the (stand-in) payment page of the provider, and back to a confirmed request, with
the provider's signed webhook and the return page both at work; then a patient who leaves the
payment page, comes back and pays with the webhook held back. Staff see the payment and refund by hand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import ConsultationRequest, Payment, PaymentEvent, ResponseClock
from tests.e2e.conftest import LiveServer, running_app
from tests.e2e.helpers import PHONE, AccessibilityReport, fits_width, sign_in
from tests.e2e.test_patient_journey import add_photos, fill_in_the_form, unexpected
from tests.factories import make_user, photo_bytes
from tests.payments.conftest import paid_settings
from tests.stripe_standin import StripeStandIn

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def standin() -> Iterator[StripeStandIn]:
    server = StripeStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def paid_clinic(tmp_path, standin) -> Iterator[LiveServer]:
    """The live server of tests/e2e/conftest.py, with paid consultations and the stand-in as Stripe."""
    with running_app(tmp_path, **paid_settings(standin)) as server:
        standin.webhook_url = f"{server.url}/payments/webhook"
        yield server


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "palm.jpg"
    path.write_bytes(photo_bytes("JPEG", size=(800, 600)))
    return path


def stored(app):
    with app.app_context():
        consultation = db.session.execute(select(ConsultationRequest)).scalar_one()
        payment = db.session.execute(select(Payment)).scalar_one()
        facts = {
            "status": consultation.status,
            "target": consultation.response_target_hours,
            "due_after_payment": (consultation.due_at - payment.paid_at) if consultation.due_at else None,
            "clocks": db.session.execute(select(func.count(ResponseClock.id))).scalar_one(),
            "events": db.session.execute(select(func.count(PaymentEvent.id))).scalar_one(),
            "payment": (payment.tier, payment.amount_cents, payment.status),
            "reference": consultation.reference,
        }
        db.session.remove()
    return facts


def test_a_patient_pays_for_an_express_answer_and_is_back_with_a_confirmed_request(
    paid_clinic, standin, page, photo, console_errors
):
    report = AccessibilityReport()
    page.set_viewport_size(PHONE)
    page.goto(f"{paid_clinic.url}/consultation/new")
    fill_in_the_form(page)
    add_photos(page, [photo])
    choice = page.get_by_role("group", name="How soon do you need the answer?")
    expect(choice).to_contain_text("€39.00")
    expect(choice).to_contain_text("A written answer within 12 hours")
    expect(page.get_by_label("Standard")).to_be_checked()
    page.get_by_label("Express").check()
    report.check(page, "the form with tiers")
    assert fits_width(page)

    page.get_by_role("button", name="Continue to payment").click()
    expect(page).to_have_url(f"{paid_clinic.url}/consultation/received")
    expect(page.get_by_role("heading", name="One step left: the payment")).to_be_visible()
    report.check(page, "the payment step")
    assert fits_width(page)
    assert stored(paid_clinic.app)["status"] == "awaiting_payment"

    page.get_by_role("button", name="Pay €59.00").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(standin.url)}/pay/cs_test_\w+$"))
    expect(page.get_by_role("heading", name="Pay 59.00 EUR")).to_be_visible()
    page.get_by_role("button", name="Pay 59.00 EUR").click()  # the webhook goes out, then the patient comes back

    expect(page).to_have_url(f"{paid_clinic.url}/consultation/received")
    expect(page.get_by_text("your payment is confirmed")).to_be_visible()
    expect(page.get_by_role("heading", name="Thank you. Your request has been sent.")).to_be_visible()
    expect(page.locator("#paid-line")).to_have_text("Paid: €59.00 (Express). Your receipt is on its way by email.")
    facts = stored(paid_clinic.app)
    assert facts["status"] == "submitted" and facts["payment"] == ("express", 5900, "paid")
    assert facts["due_after_payment"] == timedelta(hours=12) and facts["clocks"] == 1
    assert facts["events"] == 1, "the webhook came, and the return page found it done"

    page.locator("#private-link").click()
    expect(page.locator("#status")).to_have_text("Received")
    expect(page.locator("#payment")).to_contain_text("€59.00")
    report.check(page, "the private page, paid")
    report.assert_clean()
    assert unexpected(console_errors) == []


def test_a_patient_leaves_the_payment_page_comes_back_and_pays_with_the_webhook_late(
    paid_clinic, standin, page, photo, console_errors
):
    standin.webhook_url = None  # the provider's webhook is held back: the return page must do it alone
    page.goto(f"{paid_clinic.url}/consultation/new")
    fill_in_the_form(page)
    add_photos(page, [photo])
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("button", name="Pay €39.00").click()
    page.get_by_role("button", name="Cancel").click()

    expect(page).to_have_url(f"{paid_clinic.url}/consultation/received")
    expect(page.get_by_text("The payment was not completed")).to_be_visible()
    assert stored(paid_clinic.app)["status"] == "awaiting_payment"
    page.get_by_role("button", name="Pay €39.00").click()
    page.get_by_role("button", name="Pay 39.00 EUR").click()
    expect(page.get_by_role("heading", name="Thank you. Your request has been sent.")).to_be_visible()
    facts = stored(paid_clinic.app)
    assert (facts["status"], facts["clocks"], facts["events"]) == ("submitted", 1, 0)
    assert len(standin.sessions) == 2

    standin.deliver(standin.events[-1], url=f"{paid_clinic.url}/payments/webhook")  # the webhook, at last
    facts = stored(paid_clinic.app)
    assert (facts["status"], facts["clocks"], facts["events"]) == ("submitted", 1, 1)

    with paid_clinic.app.app_context():
        make_user("staff", email="desk@clinic.example")
        db.session.remove()
    sign_in(page, paid_clinic.url, "desk@clinic.example")
    page.goto(f"{paid_clinic.url}/staff/payments/{facts['reference']}")
    page.get_by_label("Amount to refund (EUR)").fill("10")
    page.get_by_label(re.compile("I have checked the amount")).check()
    page.get_by_role("button", name="Refund", exact=True).click()
    expect(page.get_by_text("The refund has been sent")).to_be_visible()
    expect(page.locator("#refunded")).to_have_text("€10.00")
    assert [refund["amount"] for refund in standin.refunds.values()] == [1000]
    assert unexpected(console_errors) == []
