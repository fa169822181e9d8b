"""A worried patient on a phone goes from a condition article through the form with photos to the
confirmation and their private page, in a real Chromium against a live server."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.models import ConsultationRequest
from tests.factories import phone_jpeg_with_gps, photo_bytes

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone_photos(tmp_path):
    """Two photos as they sit on a phone: a sideways JPEG with GPS, and a PNG screenshot."""
    sideways = tmp_path / "IMG_2041.jpg"
    sideways.write_bytes(phone_jpeg_with_gps(size=(800, 400)))
    close_up = tmp_path / "close-up.png"
    close_up.write_bytes(photo_bytes("PNG", size=(600, 600), colour=(190, 120, 110)))
    return [sideways, close_up]


def fill_in_the_form(page, *, consent: bool = True) -> None:
    page.get_by_label("Full name").fill("Ona Petraitienė")
    page.get_by_label("Email").fill("ona@example.com")
    page.get_by_label("Date of birth").fill("1986-04-12")
    page.get_by_label("Female").check()
    page.get_by_label("Hands or palms").check()
    page.get_by_label("Feet or soles").check()
    page.get_by_label("1 to 12 months").check()
    page.get_by_label("Itching").check()
    page.get_by_label("Describe the problem in your own words").fill(
        "Small yellow pustules on both palms that come back every few weeks."
    )
    page.get_by_label("None of these").check()
    page.locator("#area-1-site").select_option("hands")
    if consent:
        agree_to_everything(page)


def agree_to_everything(page) -> None:
    page.get_by_label(re.compile("keeps and uses my health information")).check()
    page.get_by_label(re.compile("accept the terms")).check()


def add_photos(page, paths) -> None:
    """Put photos in the first area's guided slots, in view order (far, medium, close-up)."""
    for view, path in zip(("far", "medium", "close"), paths, strict=False):
        page.locator(f"#photo-1-{view}").set_input_files(str(path))


def unexpected(errors: list[str]) -> list[str]:
    """Console errors other than the form coming back with corrections (an HTTP 422 is how it says so)."""
    return [error for error in errors if "status of 422" not in error]


def image_loaded(locator) -> bool:
    return locator.evaluate("img => img.complete && img.naturalWidth > 0")


def test_patient_sends_photos_from_a_condition_page_and_reads_the_confirmation(
    live_server, page, phone_photos, console_errors
):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/conditions/palmoplantar-pustulosis")
    page.get_by_role("link", name="Send photos to a dermatologist").first.click()

    expect(page).to_have_url(re.compile(r"/consultation/new\?condition=palmoplantar-pustulosis$"))
    expect(page.locator(".condition-chosen")).to_contain_text("Palmoplantar pustulosis")
    expect(page.get_by_label("Which condition are you asking about?")).to_have_value("palmoplantar-pustulosis")
    expect(page.get_by_text("One from a distance")).to_be_visible()

    fill_in_the_form(page)
    add_photos(page, phone_photos)
    previews = page.locator(".slot-preview .photo-preview")
    expect(previews).to_have_count(2)
    expect(previews.first).to_contain_text("IMG_2041.jpg")
    assert image_loaded(previews.first.locator("img"))

    # Sent with XMLHttpRequest, so the progress bar can follow the upload.
    with page.expect_response(lambda r: r.request.method == "POST" and r.request.resource_type == "xhr") as sent:
        page.get_by_role("button", name="Send to a dermatologist").click()
    assert sent.value.status == 303  # stored, then on to the confirmation
    expect(page).to_have_url(f"{live_server.url}/consultation/received")

    expect(page.get_by_role("heading", name="Thank you. Your request has been sent.")).to_be_visible()
    reference = page.locator("#reference").inner_text()
    assert re.fullmatch(r"DRM-[2-9A-HJKMNP-Z]{6}", reference)
    expect(page.get_by_text("A dermatologist will answer by")).to_be_visible()
    private_link = page.locator("#private-link")
    expect(private_link).to_have_attribute("href", re.compile(rf"^{re.escape(live_server.url)}/c/[\w-]{{40,}}$"))

    private_link.click()
    expect(page.get_by_role("heading", name=re.compile(f"Your consultation {reference}"))).to_be_visible()
    expect(page.locator("#status")).to_have_text("Received")
    expect(page.locator("#due-at")).to_be_visible()
    thumbnails = page.locator(".photo-grid img")
    expect(thumbnails).to_have_count(2)
    for index in range(2):
        thumbnails.nth(index).scroll_into_view_if_needed()
        expect(thumbnails.nth(index)).to_have_js_property("complete", True)
        assert image_loaded(thumbnails.nth(index))

    with live_server.app.app_context():
        stored = db.session.execute(select(ConsultationRequest)).scalar_one()
        assert stored.reference == reference and stored.condition_slug == "palmoplantar-pustulosis"
        first = Image.open(f"{live_server.app.config['UPLOAD_DIR']}/{stored.photos[0].storage_key}")
        assert first.size == (400, 800) and dict(first.getexif()) == {}  # upright, no GPS
        db.session.remove()
    assert console_errors == []


def test_form_with_a_mistake_keeps_the_answers_and_the_photos(live_server, page, phone_photos, console_errors):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/consultation/new")
    fill_in_the_form(page, consent=False)
    add_photos(page, phone_photos[:1])
    expect(page.locator(".slot-preview .photo-preview")).to_have_count(1)
    page.get_by_role("button", name="Send to a dermatologist").click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("We need your permission")
    expect(page.get_by_label("Full name")).to_have_value("Ona Petraitienė")
    expect(page.get_by_label("Hands or palms")).to_be_checked()
    kept = page.locator(".kept-in-slot img")
    expect(kept).to_have_count(1)
    expect(kept.first).to_have_js_property("complete", True)
    assert image_loaded(kept.first)

    agree_to_everything(page)
    page.get_by_role("button", name="Send to a dermatologist").click()
    expect(page).to_have_url(f"{live_server.url}/consultation/received")
    with live_server.app.app_context():
        assert len(db.session.execute(select(ConsultationRequest)).scalar_one().photos) == 1
        db.session.remove()
    assert unexpected(console_errors) == []


def test_form_works_without_javascript(live_server, browser, phone_photos):
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/consultation/new")
        fill_in_the_form(page)
        add_photos(page, phone_photos)
        page.get_by_role("button", name="Send to a dermatologist").click()
        expect(page).to_have_url(f"{live_server.url}/consultation/received")
        expect(page.locator("#private-link")).to_be_visible()
    finally:
        context.close()
    with live_server.app.app_context():
        assert len(db.session.execute(select(ConsultationRequest)).scalar_one().photos) == 2
        db.session.remove()
