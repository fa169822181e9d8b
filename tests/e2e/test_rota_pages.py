"""The rota's pages in a real Chromium, in English and Lithuanian: an admin sets weekly hours on the
accounts page; a dermatologist answering late is asked why (refused without a reason, the text kept);
the dashboard shows who is on duty, the coverage forecast and the reasons. axe-core finds no serious
problem on any of them, and the account page fits a 390 px phone."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.consultations import rota
from app.consultations.audit import Actor
from app.extensions import db
from app.models import ExceptionKind
from app.timeutil import utcnow
from tests.e2e.helpers import PHONE, AccessibilityReport, fits_width, sign_in, sign_out, stored_request
from tests.factories import make_consultation, make_user

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect

WORDS = {
    "en": {
        "save_hours": "Save working hours",
        "saved": "Working hours saved",
        "send": "Send the answer",
        "late": "The reply is late, so nothing was sent yet",
        "workload": "Workload",
        "coverage": "Coverage, next 48 hours",
    },
    "lt": {
        "save_hours": "Išsaugoti darbo valandas",
        "saved": "Darbo valandos išsaugotos",
        "send": "Siųsti atsakymą",
        "late": "Atsakymas vėluoja, todėl kol kas nieko neišsiųsta",
        "workload": "Didelis darbo krūvis",
        "coverage": "Budėjimai, artimiausios 48 valandos",
    },
}


@pytest.fixture
def clinic(live_server):
    """Rūta is on duty now (an extra shift) and has no weekly hours yet; one request she holds is overdue."""
    with live_server.app.app_context():
        admin = make_user("admin", email="admin@clinic.example", name="Adomas Admin")
        ruta = make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta Kazlauskienė")
        now = utcnow()
        rota.add_exception(
            ruta, ExceptionKind.EXTRA, now - timedelta(hours=1), now + timedelta(hours=3), Actor.system()
        )
        overdue, _ = make_consultation(created_at=now - timedelta(hours=26), claimed_by=ruta, status="in_review")
        make_consultation(created_at=now - timedelta(hours=2))
        db.session.commit()
        found = {"admin": admin.email, "ruta": ruta.email, "ruta_id": ruta.id, "overdue": overdue.reference}
        db.session.remove()
    return found


@pytest.mark.parametrize("language", ["en", "lt"])
def test_rota_pages_work_and_have_no_serious_accessibility_problems(live_server, page, clinic, language):
    base, words, report = live_server.url, WORDS[language], AccessibilityReport()

    sign_in(page, base, clinic["ruta"], language)
    page.goto(f"{base}/queue/")
    report.check(page, "queue with who is on duty")
    page.goto(f"{base}/queue/{clinic['overdue']}")
    page.locator("#assessment").fill("Mild hand eczema.")
    page.locator("#treatment").fill("A thick emollient after every wash.")
    page.get_by_role("button", name=words["send"], exact=True).click()
    expect(page.locator(".flash, [role=alert]").first).to_contain_text(words["late"])
    expect(page.locator("#assessment")).to_have_value("Mild hand eczema.")  # nothing typed is lost
    report.check(page, "late answer refused for want of a reason")
    page.locator("#answer-late-reason").get_by_label(words["workload"], exact=True).check()
    page.get_by_role("button", name=words["send"], exact=True).click()
    expect(page.locator(".flash-success")).to_be_visible()  # back on the request page: the answer went
    stored = stored_request(live_server.app, clinic["overdue"])
    assert stored.status == "answered"

    sign_out(page)
    sign_in(page, base, clinic["admin"], language)
    page.goto(f"{base}/staff/users/{clinic['ruta_id']}")
    report.check(page, "account page with the rota")
    page.locator("#starts_0").fill("08:00")
    page.locator("#ends_0").fill("16:00")
    page.locator("#starts_5").fill("22:00")
    page.locator("#ends_5").fill("06:00")
    page.get_by_role("button", name=words["save_hours"], exact=True).click()
    expect(page.locator("body")).to_contain_text(words["saved"])
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/staff/users/{clinic['ruta_id']}")
    assert fits_width(page), "the account page scrolls sideways on a phone"
    report.check(page, "account page with the rota on a phone")

    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(f"{base}/staff/")
    expect(page.locator("#coverage-heading")).to_have_text(words["coverage"])
    report.check(page, "dashboard with the forecast and late replies")
    report.assert_clean()
