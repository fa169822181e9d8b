"""A patient on a phone reads the dermatologist's question on the private page, replies with a photo,
later reads the answer and marks the consultation resolved, in a real Chromium against a live server."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.consultations import staff_actions as actions
from app.extensions import db
from app.models import ConsultationRequest, Message
from app.timeutil import utcnow
from tests.factories import make_consultation, make_photo, make_user, photo_bytes

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect

PHONE = {"width": 390, "height": 844}
QUESTION = "Could you send a close-up of the left palm, in daylight?"
NOTE = "Internal: compare with the photo from last year before answering."


@pytest.fixture
def asked(live_server):
    """A request the dermatologist has claimed, noted on, and asked a question about."""
    with live_server.app.app_context():
        derm = make_user("dermatologist", name="Dr Rūta Kazlauskienė", email="ruta@clinic.example")
        consultation, token = make_consultation(created_at=utcnow() - timedelta(hours=2))
        make_photo(consultation)
        now = utcnow()
        actions.claim(consultation, derm, now)
        actions.add_note(consultation, derm, NOTE, now)
        actions.ask(consultation, derm, QUESTION, now)
        db.session.commit()
        ids = consultation.id, derm.id
        db.session.remove()
    return ids, token


def dermatologist_answers(live_server, request_id: int, derm_id: int) -> None:
    with live_server.app.app_context():
        consultation = db.session.get(ConsultationRequest, request_id)
        derm = db.session.get(type(consultation.claimed_by), derm_id)
        answer = actions.Answer(
            assessment="This looks like dyshidrotic hand eczema.",
            treatment="Mometasone cream once a day for two weeks, then a thick emollient.",
            follow_up="Write to us here if it is not better in four weeks.",
        )
        actions.answer(consultation, derm, answer, utcnow())
        db.session.commit()
        db.session.remove()


def fits_the_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def image_loaded(locator) -> bool:
    return locator.evaluate("img => img.complete && img.naturalWidth > 0")


def test_patient_replies_with_a_photo_then_reads_the_answer_and_closes(
    live_server, page, asked, tmp_path, console_errors
):
    (request_id, derm_id), token = asked
    close_up = tmp_path / "close-up.jpg"
    close_up.write_bytes(photo_bytes(size=(900, 700), colour=(196, 120, 110)))
    page.set_viewport_size(PHONE)

    page.goto(f"{live_server.url}/c/{token}")
    expect(page.locator("#status")).to_have_text("Question for you")
    expect(page.get_by_text(QUESTION)).to_be_visible()
    expect(page.locator(".message-question")).to_contain_text("Dr Rūta Kazlauskienė")
    assert "Internal:" not in page.content()
    assert fits_the_phone(page)

    page.get_by_role("link", name="Answer the question").click()
    expect(page).to_have_url(re.compile(r"#reply$"))
    page.get_by_label("Your message").fill("Here is the close-up. It itches most at night.")
    page.locator("#photos").set_input_files(str(close_up))
    expect(page.locator("#photos-chosen")).to_contain_text("close-up.jpg")
    send = page.get_by_role("button", name="Send my reply")
    assert send.bounding_box()["height"] >= 44 and send.bounding_box()["width"] >= 300  # a big tap target
    send.click()

    expect(page).to_have_url(re.compile(rf"/c/{re.escape(token)}#message-\d+$"))
    expect(page.get_by_text("Your message has been sent to Dr Rūta Kazlauskienė")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Being reviewed")
    reply = page.locator(".message-patient_reply")
    expect(reply).to_contain_text("It itches most at night.")
    reply_photo = reply.locator("img")
    expect(reply_photo).to_have_count(1)
    reply_photo.scroll_into_view_if_needed()
    expect(reply_photo).to_have_js_property("complete", True)
    assert image_loaded(reply_photo)
    expect(page.locator("#reply-form")).to_have_count(0)
    assert fits_the_phone(page)

    with live_server.app.app_context():
        stored = db.session.execute(select(Message).where(Message.kind == "patient_reply")).scalar_one()
        assert len(stored.photos) == 1 and stored.photos[0].width == 900
        assert db.session.get(ConsultationRequest, request_id).claimed_by_id == derm_id
        db.session.remove()

    dermatologist_answers(live_server, request_id, derm_id)
    page.reload()
    expect(page.locator("#status")).to_have_text("Answered")
    answer = page.locator(".message-answer")
    expect(answer.get_by_role("heading", name="Assessment and likely diagnosis")).to_be_visible()
    expect(answer).to_contain_text("dyshidrotic hand eczema")
    expect(answer).to_contain_text("Mometasone cream once a day")
    expect(page.get_by_role("heading", name="Send a follow-up message")).to_be_visible()
    assert fits_the_phone(page)

    page.get_by_role("link", name="Mark as resolved").click()
    expect(page.get_by_role("heading", name="Close your consultation?")).to_be_visible()
    expect(page.locator("#reference")).to_have_text(re.compile(r"^DRM-"))
    assert fits_the_phone(page)
    page.get_by_role("button", name="Yes, mark as resolved").click()
    expect(page.locator("#status")).to_have_text("Closed")
    expect(page.get_by_text("Your consultation is closed.")).to_be_visible()
    expect(page.get_by_text("dyshidrotic hand eczema")).to_be_visible()  # still there to read
    assert console_errors == []
