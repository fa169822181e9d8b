"""A staff member signs in and sees the 24-hour target: what is at risk or overdue right now, and the
emails waiting in the outbox, in English and in Lithuanian, in a real Chromium against a live server."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import DESKTOP, PHONE, fits_width, open_clinic, sign_in

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect

WORDS = {
    "en": {
        "title": "The 24-hour target",
        "open_now": "Open requests now",
        "at_risk": "At risk",
        "overdue": "Overdue",
        "outbox": "Outbox",
        "waiting": "Waiting to be sent",
        "reply_ready": "Reply ready (to the patient)",
        "reassign": "Reassign",
    },
    "lt": {
        "title": "24 valandų terminas",
        "open_now": "Šiuo metu atviros užklausos",
        "at_risk": "Gresia vėlavimas",
        "overdue": "Vėluoja",
        "outbox": "Siunčiami laiškai",
        "waiting": "Laukia išsiuntimo",
        "reply_ready": "Atsakymas parengtas (pacientui)",
        "reassign": "Perduoti",
    },
}


@pytest.mark.parametrize("language", ["en", "lt"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_staff_member_sees_the_target_and_the_outbox(live_server, page, console_errors, language, viewport):
    clinic = open_clinic(live_server.app)
    words = WORDS[language]
    page.set_viewport_size(viewport)
    sign_in(page, live_server.url, clinic.staff, language)
    page.goto(f"{live_server.url}/staff/")
    expect(page.get_by_role("heading", level=1)).to_have_text(words["title"])

    open_now = page.locator("#open-now")
    expect(open_now.get_by_role("heading", name=words["open_now"])).to_be_visible()
    expect(open_now.locator(".stat-at_risk .stat-value")).to_have_text("1")
    expect(open_now.locator(".stat-overdue .stat-value")).to_have_text("1")
    urgent = open_now.get_by_role("row").filter(has_text=clinic.urgent_reference)
    expect(urgent.locator(".badge")).to_have_text(words["at_risk"])
    expect(open_now.locator(".badge-overdue")).to_have_text(words["overdue"])

    outbox = page.locator("#outbox")
    expect(outbox.get_by_role("heading", name=words["outbox"], exact=True)).to_be_visible()
    expect(outbox.get_by_role("heading", name=words["waiting"])).to_be_visible()
    expect(outbox.get_by_role("link", name=words["reply_ready"]).first).to_be_visible()
    if viewport is PHONE:
        assert fits_width(page), "the dashboard scrolls sideways on a phone"

    # From the dashboard straight to the request that needs someone, to give it to a dermatologist.
    urgent.get_by_role("link", name=clinic.urgent_reference).click()
    expect(page.get_by_role("heading", name=clinic.urgent_reference)).to_be_visible()
    expect(page.get_by_role("button", name=words["reassign"])).to_be_visible()
    assert console_errors == []
