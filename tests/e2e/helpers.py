"""Helpers for the browser tests that read like what a person does: sign in, check a page with
axe-core, check that a page fits a phone, and a clinic with requests in every state.

axe-core is the copy shipped inside axe-playwright-python (no network); it is injected into the
page by Playwright, so the Content-Security-Policy does not get in its way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app.consultations import staff_actions as actions
from app.extensions import db
from app.models import ConsultationRequest
from app.timeutil import utcnow
from tests.catalogs import compile_catalogs
from tests.factories import DEFAULT_PASSWORD, make_consultation, make_photo, make_user

compile_catalogs()  # a bare `pytest tests/e2e` must see the Lithuanian pages too

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# WCAG 2.0, 2.1 and 2.2 at levels A and AA, plus axe's best practices (landmarks, headings...).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]
BLOCKING_IMPACTS = {"serious", "critical"}

# The words a person clicks, in each language.
WORDS = {
    "en": {"email": "Email", "password": "Password", "sign_in": "Sign in", "send": "Send to a dermatologist"},
    "lt": {"email": "El. paštas", "password": "Slaptažodis", "sign_in": "Prisijungti", "send": "Siųsti dermatologui"},
}

_axe = None


def axe():
    global _axe
    if _axe is None:
        from axe_playwright_python.sync_playwright import Axe

        _axe = Axe()
    return _axe


def serious_violations(page) -> list[dict]:
    """axe-core's serious and critical findings on the page as it is now."""
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
    results = axe().run(page, options=options)
    return [v for v in results.response["violations"] if v["impact"] in BLOCKING_IMPACTS]


def describe_violations(where: str, violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"{where}: {violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>"
        )
        for node in violation["nodes"][:5]:
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


class AccessibilityReport:
    """Collects axe findings page by page, so that one run shows every page's problems."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.checked: list[str] = []

    def check(self, page, where: str) -> None:
        page.wait_for_load_state("load")
        violations = serious_violations(page)
        self.checked.append(where)
        if violations:
            self.found.append(describe_violations(where, violations))

    def assert_clean(self) -> None:
        report = "\n".join(self.found)
        if report:
            print(report)
        assert not self.found, "serious or critical accessibility violations:\n" + report


def fits_width(page, width: int = PHONE["width"]) -> bool:
    """No sideways scrolling: the page is no wider than the screen."""
    return page.evaluate("document.documentElement.scrollWidth") <= width


def sign_out(page) -> None:
    """Forget who is signed in. Waits for the page's last requests first: a signed-in response
    still in flight (a favicon, say) would otherwise set the session cookie again."""
    page.wait_for_load_state("networkidle")
    page.context.clear_cookies()


def sign_in(page, base_url: str, email: str, language: str = "en", password: str = DEFAULT_PASSWORD) -> None:
    words = WORDS[language]
    page.goto(f"{base_url}/login?lang={language}")
    page.get_by_label(words["email"], exact=True).fill(email)
    page.get_by_label(words["password"], exact=True).fill(password)
    page.get_by_role("button", name=words["sign_in"], exact=True).click()
    page.wait_for_load_state("load")


@dataclass
class Clinic:
    """Who works at the clinic and what is waiting, as the browser tests need it."""

    dermatologist: str
    staff: str
    asked_token: str
    asked_reference: str
    answered_token: str
    urgent_reference: str


def open_clinic(app, patient_language: str = "en") -> Clinic:
    """A dermatologist, a staff member, and requests in the states pages show differently:
    one with a question for the patient, one answered, one at risk and one overdue."""
    with app.app_context():
        derm = make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta Kazlauskienė")
        staff = make_user("staff", email="jonas@clinic.example", name="Jonas Petrauskas")
        now = utcnow()
        asked, asked_token = make_consultation(created_at=now - timedelta(hours=3), language=patient_language)
        make_photo(asked, size=(800, 600))
        actions.claim(asked, derm, now)
        actions.ask(asked, derm, "Could you send a close-up of the left palm, in daylight?", now)
        answered, answered_token = make_consultation(created_at=now - timedelta(hours=10), language=patient_language)
        make_photo(answered)
        actions.claim(answered, derm, now)
        answer = actions.Answer(
            assessment="This looks like mild atopic dermatitis.",
            treatment="A thick emollient twice a day; hydrocortisone 1% for up to a week on flares.",
            follow_up="Write to us if it is not better in four weeks.",
        )
        actions.answer(answered, derm, answer, now)
        urgent, _ = make_consultation(created_at=now - timedelta(hours=21), condition_slug="pityriasis-rosea")
        make_photo(urgent)
        make_consultation(created_at=now - timedelta(hours=30), condition_slug="hand-eczema")
        db.session.commit()
        clinic = Clinic(
            dermatologist=derm.email,
            staff=staff.email,
            asked_token=asked_token,
            asked_reference=asked.reference,
            answered_token=answered_token,
            urgent_reference=urgent.reference,
        )
        db.session.remove()
    return clinic


def stored_request(app, reference: str) -> ConsultationRequest:
    """The request as the database has it now (detached: read its columns, not its relations)."""
    from sqlalchemy import select

    with app.app_context():
        found = db.session.execute(
            select(ConsultationRequest).where(ConsultationRequest.reference == reference)
        ).scalar_one()
        db.session.expunge(found)
        db.session.remove()
    return found
