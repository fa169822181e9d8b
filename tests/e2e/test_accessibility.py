"""Accessibility in a real Chromium, in English and Lithuanian.

- axe-core finds no serious or critical WCAG 2.2 A/AA problem on the pages patients and staff use;
- the photo picker and the queue work with a keyboard alone, in a sensible order, with a visible focus;
- the intake form and the private page fit a 390 px phone without sideways scrolling;
- on a phone the form offers the camera (`capture`) and accepts the photo types we take (`accept`).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.helpers import (
    PHONE,
    WORDS,
    AccessibilityReport,
    fits_width,
    open_clinic,
    sign_in,
    sign_out,
)
from tests.factories import DEFAULT_PASSWORD, photo_bytes

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect

LANGUAGES = ["en", "lt"]
NARROWEST = 320  # the width WCAG's reflow criterion asks content to fit


@pytest.fixture
def clinic(live_server):
    return open_clinic(live_server.app)


def focused(page, selector: str) -> bool:
    return page.evaluate("selector => document.activeElement.matches(selector)", selector)


def focus_stop(page) -> str:
    """What has the keyboard focus, in words: its id, name or text."""
    return page.evaluate(
        """() => { const e = document.activeElement;
                   return e.id || e.getAttribute('name')
                          || (e.innerText || e.value || e.tagName).trim().slice(0, 60); }"""
    )


def tab_to(page, selector: str, limit: int = 150) -> list[str]:
    """Press Tab until the element matching `selector` has the focus; returns every stop on the way.
    A press after which the focus is where it was (a busy machine's browser still busy) is no stop."""
    stops: list[str] = []
    where = focus_stop(page)
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = focus_stop(page)
        if stop != where:
            stops.append(stop)
            where = stop
        if focused(page, selector):
            return stops
    raise AssertionError(f"Tab never reached {selector}; it went through: {stops}")


def focus_is_visible(page) -> bool:
    """The focused element shows the focus ring (a 3 px outline from app.css) to keyboard users."""
    return page.evaluate(
        """() => { const e = document.activeElement, style = getComputedStyle(e);
                   return e.matches(':focus-visible') && style.outlineStyle !== 'none'
                          && parseFloat(style.outlineWidth) >= 2; }"""
    )


# --- axe-core ------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_patient_pages_have_no_serious_accessibility_problems(live_server, page, clinic, language):
    page.set_viewport_size(PHONE)
    base = live_server.url
    report = AccessibilityReport()
    for path, where in [
        (f"/?lang={language}", "home"),
        ("/conditions/", "condition index"),
        ("/conditions/?q=eczema", "search results"),
        ("/conditions/atopic-dermatitis", "condition page"),
        ("/conditions/scabies", "condition page (English only)"),
        ("/consultation/link", "lost your link"),
        ("/login", "staff sign-in"),
        (f"/c/{clinic.asked_token}", "private page with a question and the reply form"),
        (f"/c/{clinic.answered_token}", "private page with the answer"),
        ("/consultation/new?condition=acne", "intake form"),
    ]:
        page.goto(base + path)
        report.check(page, where)
    page.get_by_role("button", name=WORDS[language]["send"]).click()
    expect(page.locator("#error-summary")).to_be_focused()
    report.check(page, "intake form with errors")
    report.assert_clean()
    assert len(report.checked) == 11


@pytest.mark.parametrize("language", LANGUAGES)
def test_staff_pages_have_no_serious_accessibility_problems(live_server, page, clinic, language):
    base = live_server.url
    report = AccessibilityReport()
    sign_in(page, base, clinic.dermatologist, language)
    expect(page).to_have_url(f"{base}/queue/")
    report.check(page, "queue")
    page.goto(f"{base}/queue/{clinic.urgent_reference}")
    report.check(page, "request page, unclaimed")
    page.locator(".request-actions button.button-primary").click()
    expect(page.locator("form.answer-form")).to_be_visible()
    report.check(page, "request page, claimed, with the answer forms")
    page.goto(f"{base}/queue/{clinic.asked_reference}")
    report.check(page, "request page with a conversation")
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/queue/")
    report.check(page, "queue on a phone")

    sign_out(page)
    sign_in(page, base, clinic.staff, language)
    page.goto(f"{base}/staff/")
    report.check(page, "staff dashboard")
    report.assert_clean()


# --- Keyboard ------------------------------------------------------------------------------------


def open_file_chooser_with_space(page):
    """Press Space on the focused file input until the chooser opens (at most twice).

    Headless Chromium under load now and then drops the first key press's user activation and opens
    no chooser; a person would simply press again, and the second press still proves the keyboard works.
    """
    assert page.evaluate("document.activeElement && document.activeElement.type === 'file'")
    for attempt in range(2):
        try:
            with page.expect_file_chooser(timeout=5_000) as chooser:
                page.keyboard.press("Space")
            return chooser.value
        except PlaywrightTimeoutError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def test_photo_picker_works_with_the_keyboard_alone(live_server, page, tmp_path):
    rash = tmp_path / "rash.jpg"
    rash.write_bytes(photo_bytes(size=(640, 480)))
    page.goto(f"{live_server.url}/consultation/new?lang=en")

    page.keyboard.press("Tab")
    assert focused(page, ".skip-link") and page.locator(".skip-link").is_visible()
    stops = tab_to(page, "#photo-1-far")
    # The form is met in reading order: is it urgent, about you, about the skin, health, then the photo slots.
    order = [
        "red_flags-0",
        "full_name",
        "email",
        "phone",
        "date_of_birth",
        "condition",
        "description",
        "medications",
        "area-1-site",
        "photo-1-far",
    ]
    # (A date input is three stops, day, month and year, in Chromium: count each field once.)
    assert [stop for stop in dict.fromkeys(stops) if stop in order] == order
    assert focus_is_visible(page)
    label = page.locator("label[for=photo-1-far]")
    expect(label).to_be_visible()
    expect(label).to_contain_text("From a distance")

    # Space on the picker opens the system's file chooser, as a click would.
    open_file_chooser_with_space(page).set_files(str(rash))
    previews = page.locator('[data-photo-slot="photo-1-far"] .slot-preview .photo-preview')
    expect(previews).to_have_count(1)

    # The chosen photo can be taken out again by keyboard, and the focus stays in the form.
    tab_to(page, '[data-photo-slot="photo-1-far"] .slot-preview button')
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    expect(previews).to_have_count(0)
    assert page.evaluate("document.activeElement !== document.body")

    # Past the photos come the consent boxes and the send button.
    tab_to(page, "#consent_health_data")
    tab_to(page, "#send-button")
    assert focus_is_visible(page)


def test_queue_works_with_the_keyboard_alone(live_server, page, clinic):
    base = live_server.url
    page.goto(f"{base}/login?lang=en")
    tab_to(page, "#email")
    page.keyboard.type(clinic.dermatologist)
    page.keyboard.press("Tab")
    assert focused(page, "#password")
    page.keyboard.type(DEFAULT_PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/queue/")

    # The skip link jumps past the site's menus to the queue itself.
    page.keyboard.press("Tab")
    assert focused(page, ".skip-link")
    page.keyboard.press("Enter")
    assert focused(page, "#main")
    stops = tab_to(page, "a.reference")
    assert len(stops) <= 10, f"too many stops before the first request: {stops}"
    assert focus_is_visible(page)
    first = focus_stop(page)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/queue/{first}")

    tab_to(page, ".request-actions button")
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    expect(page.get_by_text("You have claimed this request.")).to_be_visible()

    tab_to(page, "#assessment")
    page.keyboard.type("This looks like irritant hand eczema.")
    page.keyboard.press("Tab")
    assert focused(page, "#treatment")
    page.keyboard.type("A thick emollient after every hand wash.")
    # The most urgent request is overdue, so the answer asks why: a radio button takes a Space.
    tab_to(page, "#answer-late-reason-0")
    page.keyboard.press("Space")
    tab_to(page, "form.answer-form button[type=submit]")
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    expect(page.get_by_text("Your answer is on the patient's page")).to_be_visible()
    expect(page.locator("[data-status]")).to_have_text("Answered")


# --- Phones --------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_intake_form_and_private_page_fit_a_phone_without_sideways_scrolling(live_server, page, clinic, language):
    page.set_viewport_size(PHONE)
    base = live_server.url
    too_wide = []

    def look_at(where: str) -> None:
        """Measure at 390 px, then at 320 px too (WCAG 2.2 reflow), without sideways scrolling."""
        page.wait_for_load_state("load")
        for width in (PHONE["width"], NARROWEST):
            page.set_viewport_size({"width": width, "height": PHONE["height"]})
            if not fits_width(page, width):
                too_wide.append(
                    f"{where} at {width} px: {page.evaluate('document.documentElement.scrollWidth')} px wide"
                )
        page.set_viewport_size(PHONE)

    page.goto(f"{base}/consultation/new?condition=palmoplantar-pustulosis&lang={language}")
    look_at("intake form")
    page.get_by_role("button", name=WORDS[language]["send"]).click()
    expect(page.locator("#error-summary")).to_be_visible()
    look_at("intake form with errors")
    page.goto(f"{base}/c/{clinic.asked_token}")
    look_at("private page with a question and the reply form")
    page.goto(f"{base}/c/{clinic.answered_token}")
    look_at("private page with the answer")
    assert too_wide == []


def test_on_a_phone_each_view_has_its_own_labelled_photo_slot(live_server, browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="lt-LT")
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/consultation/new")
        expect(page.locator("html")).to_have_attribute("lang", "lt")  # from the phone's language
        for label in ("Iš toliau", "Iš vidutinio atstumo", "Iš arti"):
            slot = page.get_by_label(f"{label} · 1 sritis", exact=True)
            expect(slot).to_be_visible()
            # Images only (the phone offers its camera or its gallery), HEIC from iPhones included.
            expect(slot).to_have_attribute("accept", re.compile(r"image/jpeg.*image/heic"))
        expect(page.get_by_text("Pridėti kitą sritį").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()
