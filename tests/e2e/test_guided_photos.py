"""Guided three-view photos sized on the phone, and the red-flag advice before sending, in a real
Chromium on a 390 px phone screen against a live server.

The 12 MP photos are real camera-sized JPEGs made with Pillow (4000 x 3000 with sensor-like noise,
several MB each); what the browser actually posts is read from Playwright's request events.
"""

from __future__ import annotations

import io
import re
from email.parser import BytesParser
from email.policy import HTTP

import pytest
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.models import ConsultationRequest, OutboundEmail
from tests.e2e.helpers import AccessibilityReport
from tests.e2e.test_patient_journey import PHONE, fill_in_the_form, unexpected

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect

POSTED_LIMIT = 1.2 * 1024 * 1024
VIEWS = ("far", "medium", "close")


def camera_jpeg(seed: int) -> bytes:
    """A 12 MP phone photo: skin tones with a reddish patch and grain, quality 92 (several MB)."""
    base = Image.new("RGB", (4000, 3000), (214 - seed * 5, 170, 150))
    base.paste((190, 90, 80), (1400 + seed * 100, 1000, 2600, 2000))
    grain = Image.effect_noise((4000, 3000), 40).convert("RGB")
    buffer = io.BytesIO()
    Image.blend(base, grain, 0.18).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def twelve_megapixel_photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("camera")
    paths = []
    for number, view in enumerate(VIEWS, start=1):
        path = folder / f"IMG_40{number:02d}_{view}.jpg"
        path.write_bytes(camera_jpeg(number))
        paths.append(path)
    return paths


def posted_files(body: bytes, content_type: str) -> dict[str, int]:
    """{form field: bytes} of every file part in a multipart POST body the browser sent."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    sizes = {}
    for part in message.iter_parts():
        if part.get_filename():
            sizes[part.get_param("name", header="content-disposition")] = len(part.get_payload(decode=True))
    return sizes


def test_three_12mp_photos_go_up_resized_through_the_guided_slots(
    live_server, page, twelve_megapixel_photos, console_errors
):
    originals = [path.stat().st_size for path in twelve_megapixel_photos]
    assert min(originals) > 3 * 1024 * 1024  # really camera-sized files
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/consultation/new")
    fill_in_the_form(page)
    for view, path in zip(VIEWS, twelve_megapixel_photos, strict=True):
        page.locator(f"#photo-1-{view}").set_input_files(str(path))
    for view in VIEWS:
        expect(page.locator(f"#photo-1-{view}-status")).to_contain_text("Photo added", timeout=30_000)
    expect(page.locator(".slot-preview .photo-preview")).to_have_count(3)
    expect(page.locator(".slot-preview").first).to_contain_text("made smaller for sending")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    posts = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and "/consultation/new" in r.url else None)
    bodies = []

    def keep_body(route):
        # Chromium leaves file parts out of the request event's post data; the routed request has them all.
        bodies.append((route.request.post_data_buffer, route.request.headers["content-type"]))
        route.continue_()

    page.route("**/consultation/new", keep_body)
    with page.expect_response(lambda r: r.request.method == "POST" and r.request.resource_type == "xhr") as sent:
        page.get_by_role("button", name="Send to a dermatologist").click()
    assert sent.value.status == 303
    expect(page).to_have_url(f"{live_server.url}/consultation/received")

    body, content_type = bodies[0]
    assert posts[0].sizes()["requestBodySize"] == len(body)  # the bytes that went over the wire
    sizes = posted_files(body, content_type)
    assert set(sizes) == {f"photo-1-{view}" for view in VIEWS}
    for view, original in zip(VIEWS, originals, strict=True):
        assert sizes[f"photo-1-{view}"] < POSTED_LIMIT, (view, sizes)
        assert sizes[f"photo-1-{view}"] < original * 0.3
    with live_server.app.app_context():
        stored = db.session.execute(select(ConsultationRequest)).scalar_one()
        kept = sorted((p.area, p.body_site, p.view, max(p.width, p.height)) for p in stored.photos)
        assert kept == [(1, "hands", "close", 2048), (1, "hands", "far", 2048), (1, "hands", "medium", 2048)]
        assert stored.urgent is False
        db.session.remove()
    assert unexpected(console_errors) == []


def small_photo(folder) -> str:
    path = folder / "rash.jpg"
    Image.new("RGB", (1200, 900), (200, 120, 110)).save(path, "JPEG")
    return str(path)


def test_a_red_flag_shows_the_advice_before_anything_is_uploaded_and_the_patient_may_still_send(
    live_server, page, console_errors, tmp_path
):
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/consultation/new")
    fill_in_the_form(page)
    page.locator("#photo-1-far").set_input_files(small_photo(tmp_path))
    expect(page.locator("#photo-1-far-status")).to_contain_text("Photo added")
    page.get_by_label(re.compile("Swelling of the lips, tongue or face")).check()
    expect(page.get_by_label("None of these")).not_to_be_checked()
    expect(page.locator("[data-triage-live]")).to_contain_text("call 112")

    posts = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.get_by_role("button", name="Send to a dermatologist").click()
    panel = page.locator('[data-triage-panel="emergency"]')
    expect(panel).to_be_visible()
    expect(panel).to_be_focused()
    expect(panel.get_by_role("link", name="Call 112")).to_have_attribute("href", "tel:112")
    assert posts == []  # nothing sent yet
    report = AccessibilityReport()
    report.check(page, "red-flag advice before sending (phone)")
    report.assert_clean()

    panel.get_by_role("button", name="Send my request anyway").click()
    expect(page).to_have_url(f"{live_server.url}/consultation/received")
    with live_server.app.app_context():
        stored = db.session.execute(select(ConsultationRequest)).scalar_one()
        assert stored.urgent and stored.triage_level == "emergency" and stored.response_target_hours == 4
        assert stored.triage_flags == ["face_swelling_breathing"]
        templates = set(db.session.execute(select(OutboundEmail.template)).scalars())
        assert "urgent_request" in templates
        db.session.remove()
    assert unexpected(console_errors) == []


def test_without_javascript_the_advice_page_comes_first_and_the_form_still_submits(live_server, browser, tmp_path):
    photo = small_photo(tmp_path)
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/consultation/new")
        fill_in_the_form(page)
        page.get_by_label(re.compile("A mole or spot that bleeds")).check()
        page.get_by_label("None of these").uncheck()
        page.locator("#photo-1-close").set_input_files(photo)
        page.get_by_role("button", name="Send to a dermatologist").click()

        expect(page.get_by_role("heading", level=1)).to_have_text("Please see a doctor in person today")
        expect(page.locator(".triage-reasons")).to_contain_text("A mole or spot that bleeds")
        expect(page.locator(".kept-in-slot img")).to_have_count(1)  # the photo waits on the server
        page.get_by_role("button", name="Send my request anyway").click()
        expect(page).to_have_url(f"{live_server.url}/consultation/received")
    finally:
        context.close()
    with live_server.app.app_context():
        stored = db.session.execute(select(ConsultationRequest)).scalar_one()
        assert stored.urgent and stored.triage_level == "today"
        assert [(p.area, p.body_site, p.view) for p in stored.photos] == [(1, "hands", "close")]
        db.session.remove()
