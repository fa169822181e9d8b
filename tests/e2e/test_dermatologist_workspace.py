"""The dermatologist's workspace in a real Chromium, in English and Lithuanian: from the queue to a
sent answer by keyboard and a saved reply in a handful of key presses and clicks, shortcuts that
stay out of the way while typing, two photos compared with one zoom, and no serious axe finding."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.consultations import saved_replies
from app.extensions import db
from app.models import ConsultationRequest, SavedReply
from app.timeutil import utcnow
from tests.e2e.helpers import AccessibilityReport, sign_in
from tests.factories import make_consultation, make_photo, make_user

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect

MOST_ACTIONS = 6  # key presses and clicks from the queue page to a sent answer
REPLY = {
    "en": ("Mild acne", "Dear {first_name}, this looks like mild {condition}."),
    "lt": ("Lengva aknė", "{first_name}, panašu į lengvą ligą: {condition}."),
}


@pytest.fixture
def workday(live_server, request):
    language = request.node.callspec.params.get("language", "en") if hasattr(request.node, "callspec") else "en"
    with live_server.app.app_context():
        derm = make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta Kazlauskienė")
        now = utcnow()
        first, _ = make_consultation(
            created_at=now - timedelta(hours=20), patient_name="Ona Petraitienė", language=language
        )
        make_photo(first, size=(800, 600))
        make_photo(first, size=(600, 800), colour=(120, 80, 60))
        second, _ = make_consultation(created_at=now - timedelta(hours=2), language=language)
        title, text = REPLY[language]
        saved_replies.create(
            derm,
            saved_replies.ReplyContent(
                title=title,
                language=language,
                condition_slug="acne",
                text=saved_replies.ReplyText(assessment=text, treatment="Azelaic acid gel every evening."),
            ),
            ("en", "lt"),
        )
        details = {"email": derm.email, "first": first.reference, "second": second.reference, "title": title}
        db.session.remove()
    return details


class Counter:
    """Key presses and clicks, counted as a person would make them."""

    def __init__(self, page) -> None:
        self.page = page
        self.actions: list[str] = []

    def press(self, key: str) -> None:
        self.actions.append(f"key {key}")
        self.page.keyboard.press(key)

    def click(self, locator) -> None:
        self.actions.append("click")
        locator.click()


def arrived(page, url: str) -> None:
    """The page at `url` has loaded, its scripts (the shortcuts among them) ready for the next key."""
    expect(page).to_have_url(url)
    page.wait_for_load_state("load")


@pytest.mark.parametrize("language", ["en", "lt"])
def test_from_the_queue_to_a_sent_answer_in_a_few_actions(live_server, page, console_errors, workday, language):
    base = live_server.url
    sign_in(page, base, workday["email"], language)
    arrived(page, f"{base}/queue/")
    counter = Counter(page)

    counter.press("c")  # claims the most urgent unclaimed request and opens it
    expect(page).to_have_url(f"{base}/queue/{workday['first']}")
    expect(page.locator("form.answer-form")).to_be_visible()

    counter.click(page.get_by_role("button", name=re.compile(re.escape(workday["title"]))))
    first_name_filled = "Dear Ona, this looks like mild Acne." if language == "en" else "Ona, panašu į lengvą ligą:"
    expect(page.locator("#assessment")).to_have_value(re.compile("^" + re.escape(first_name_filled)))
    expect(page.locator("#treatment")).to_have_value("Azelaic acid gel every evening.")
    page.locator("#treatment").fill("Azelaic acid gel every evening; sun cream by day.")  # still editable

    counter.click(page.locator("[data-send-next]"))  # "Answer and open the next unclaimed request"
    expect(page).to_have_url(f"{base}/queue/{workday['second']}")
    assert len(counter.actions) <= MOST_ACTIONS, counter.actions

    with live_server.app.app_context():
        answered = db.session.execute(
            select(ConsultationRequest).where(ConsultationRequest.reference == workday["first"])
        ).scalar_one()
        assert answered.status == "answered"
        answer = answered.messages[-1]
        assert answer.assessment.startswith(first_name_filled)
        assert answer.treatment == "Azelaic acid gel every evening; sun cream by day."
        assert db.session.execute(select(SavedReply.usage_count)).scalar_one() == 1
        db.session.remove()
    assert console_errors == []


def test_shortcuts_move_claim_focus_and_explain_themselves(live_server, page, console_errors, workday):
    base = live_server.url
    sign_in(page, base, workday["email"], "en")
    arrived(page, f"{base}/queue/")

    # Typing in the search field types; it never triggers a shortcut.
    page.locator("#q").fill("")
    page.locator("#q").press_sequentially("jkc")
    expect(page.locator("#q")).to_have_value("jkc")
    expect(page).to_have_url(f"{base}/queue/")
    page.locator("#q").blur()

    page.keyboard.press("j")
    expect(page.locator(f"a.reference[href='/queue/{workday['first']}']")).to_be_focused()
    page.keyboard.press("j")
    expect(page.locator(f"a.reference[href='/queue/{workday['second']}']")).to_be_focused()
    page.keyboard.press("k")
    expect(page.locator(f"a.reference[href='/queue/{workday['first']}']")).to_be_focused()

    page.keyboard.press("?")
    dialog = page.locator("#shortcuts-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.keyboard.press("Enter")  # the focused request opens, as a link does
    arrived(page, f"{base}/queue/{workday['first']}")
    page.keyboard.press("j")
    arrived(page, f"{base}/queue/{workday['second']}")
    page.keyboard.press("k")
    arrived(page, f"{base}/queue/{workday['first']}")
    page.keyboard.press("c")
    expect(page.get_by_text("You have claimed this request.")).to_be_visible()
    page.keyboard.press("a")
    expect(page.locator("#assessment")).to_be_focused()
    page.keyboard.type("jack")  # typed into the answer, not taken as shortcuts
    expect(page.locator("#assessment")).to_have_value("jack")
    expect(page).to_have_url(f"{base}/queue/{workday['first']}")

    # The mouse and screen readers have the same: a shortcuts button and previous/next links.
    page.locator("#assessment").blur()
    page.get_by_role("button", name="Keyboard shortcuts").click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(page.get_by_role("link", name="Next request")).to_have_attribute("href", f"/queue/{workday['second']}")
    assert console_errors == []


def test_two_photos_zoom_and_move_together_by_keyboard(live_server, page, console_errors, workday):
    base = live_server.url
    sign_in(page, base, workday["email"], "en")
    page.goto(f"{base}/queue/{workday['first']}")
    compare = page.locator("[data-compare]")
    expect(compare).to_be_visible()
    left, right = page.locator("[data-compare-image=left]"), page.locator("[data-compare-image=right]")
    expect(left).to_have_attribute("src", re.compile(r"/photos/"))
    assert left.get_attribute("src") != right.get_attribute("src")

    panes = page.locator("[data-compare-panes]")
    panes.focus()
    page.keyboard.press("+")
    page.keyboard.press("+")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    transform = left.evaluate("e => e.style.transform")
    assert "scale(1.5625)" in transform and "translate(-40px, -40px)" in transform
    assert right.evaluate("e => e.style.transform") == transform
    expect(page.locator("[data-compare-level]")).to_have_text("156 %")
    page.keyboard.press("0")
    assert right.evaluate("e => e.style.transform") == "translate(0px, 0px) scale(1)"

    # Either photo can be any of the request's photos; the buttons zoom both as well.
    page.get_by_label("Right photo").select_option(index=0)
    assert left.get_attribute("src") == right.get_attribute("src")
    page.get_by_role("button", name="Zoom in").click()
    assert "scale(1.25)" in left.evaluate("e => e.style.transform") == right.evaluate("e => e.style.transform")
    assert console_errors == []


@pytest.mark.parametrize("language", ["en", "lt"])
def test_workspace_pages_have_no_serious_accessibility_problems(live_server, page, workday, language):
    base = live_server.url
    report = AccessibilityReport()
    sign_in(page, base, workday["email"], language)
    page.goto(f"{base}/queue/{workday['first']}")
    report.check(page, "request page with two photos compared")
    page.locator("[data-shortcut-claim] button").click()
    expect(page.locator("form.answer-form")).to_be_visible()
    report.check(page, "request page with saved replies")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts-dialog")).to_be_visible()
    report.check(page, "shortcuts list")
    page.goto(f"{base}/queue/replies/")
    report.check(page, "saved replies")
    page.goto(f"{base}/queue/replies/new")
    report.check(page, "new saved reply")
    report.assert_clean()
