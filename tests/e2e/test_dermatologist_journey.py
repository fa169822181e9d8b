"""A dermatologist signs in, finds the most urgent request, claims it, looks at a photo and
answers, in a real Chromium against a live server."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ConsultationRequest, OutboundEmail
from app.timeutil import utcnow
from tests.factories import DEFAULT_PASSWORD, make_consultation, make_photo, make_user

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def waiting_request(live_server):
    """A dermatologist's account and two requests; the older one (at risk) is the most urgent."""
    with live_server.app.app_context():
        derm = make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta Kazlauskienė")
        urgent, _ = make_consultation(
            created_at=utcnow() - timedelta(hours=21),
            email="ona@example.com",
            description="Red, itchy patches on both palms for three weeks.",
            condition_slug="hand-eczema",
        )
        make_photo(urgent, size=(1200, 900))
        make_photo(urgent, size=(900, 1200))
        newer, _ = make_consultation(created_at=utcnow() - timedelta(hours=1))
        details = {"email": derm.email, "urgent": urgent.reference, "newer": newer.reference, "urgent_id": urgent.id}
        db.session.remove()
    return details


@pytest.mark.parametrize(
    "viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}], ids=["desktop", "phone"]
)
def test_dermatologist_signs_in_claims_and_answers(live_server, page, console_errors, waiting_request, viewport):
    page.set_viewport_size(viewport)
    # The queue is behind the sign-in page, which brings them back afterwards.
    page.goto(f"{live_server.url}/queue/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(waiting_request["email"])
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/queue/")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()

    # Most urgent first, with a live countdown badge that says how long is left.
    references = page.locator("a.reference")
    expect(references.first).to_have_text(waiting_request["urgent"])
    expect(references.nth(1)).to_have_text(waiting_request["newer"])
    first_badge = page.locator("[data-countdown]").first
    expect(first_badge).to_have_class(re.compile(r"badge-at_risk"))
    expect(first_badge).to_contain_text(re.compile(r"at risk · 2 h \d+ min left"))

    references.first.click()
    expect(page.get_by_role("heading", name=waiting_request["urgent"])).to_be_visible()
    expect(page.get_by_text("Red, itchy patches on both palms for three weeks.")).to_be_visible()
    expect(page.get_by_role("button", name="Send the answer")).to_have_count(0)  # claim first

    page.get_by_role("button", name="Claim this request").click()
    expect(page.get_by_text("You have claimed this request.")).to_be_visible()

    # A photo opens at full size and closes again with Escape.
    page.locator("a[data-zoom]").first.click()
    dialog = page.locator("#photo-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_label("Assessment and likely diagnosis").fill("This looks like irritant hand eczema.")
    page.get_by_label("Recommended treatment").fill("A thick emollient after every hand wash; cotton-lined gloves.")
    page.get_by_label("Follow-up advice").fill("Send new photos in four weeks if it is no better.")
    page.get_by_role("button", name="Send the answer").click()

    expect(page.get_by_text("Your answer is on the patient's page")).to_be_visible()
    expect(page.locator(".message-answer")).to_contain_text("This looks like irritant hand eczema.")
    expect(page.locator("[data-status]")).to_have_text("Answered")

    with live_server.app.app_context():
        stored = db.session.get(ConsultationRequest, waiting_request["urgent_id"])
        assert stored.status == "answered" and stored.due_at is None
        email = db.session.execute(
            select(OutboundEmail).where(OutboundEmail.template == "patient_reply_ready")
        ).scalar_one()
        assert email.recipient == "ona@example.com"
        db.session.remove()

    # Back in the queue the answered request has left the open list and shows under "Answered".
    page.get_by_role("link", name="Back to the queue").click()
    expect(page.locator("a.reference")).to_have_count(1)
    page.get_by_role("link", name="Answered").click()
    expect(page.locator("a.reference").first).to_have_text(waiting_request["urgent"])
    assert console_errors == []  # no script errors and no Content-Security-Policy violations
