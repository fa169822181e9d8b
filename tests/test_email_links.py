"""Every link in every email leads to a real page: the emails are produced by the real flows, rendered
as the worker renders them, and each link is opened as soon as its email is queued (a later "lost
your link?" replaces earlier private links by design), patient links as the patient and staff
links signed in as staff."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import time_machine
from sqlalchemy import select

from app import accounts
from app.consultations import assignment, forecast, notify, rota, summary
from app.consultations import staff_actions as actions
from app.consultations.alerts import check
from app.consultations.audit import Actor
from app.consultations.check_ins import send_due
from app.consultations.submission import send_requested_links
from app.extensions import db
from app.models import OutboundEmail
from app.outbox import render
from app.runtime import policies
from tests.factories import login_as, make_consultation, make_user, use_settings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "emails"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
URL = re.compile(r"https?://[^\s<>\"']+")


class Inbox:
    """Opens the links of every email queued since it last looked."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: set[int] = set()
        self.templates: set[str] = set()
        self.desk = make_user("staff", email="desk@clinic.example")

    def open_new_links(self) -> None:
        for email in db.session.execute(select(OutboundEmail).order_by(OutboundEmail.id)).scalars():
            if email.id in self.seen:
                continue
            self.seen.add(email.id)
            self.templates.add(email.template)
            _subject, text, html = render(email)
            links = sorted(set(URL.findall(text)) | set(URL.findall(html)))
            assert links, f"{email.template} has no link"
            for link in links:
                self._open(email.template, link)

    def _open(self, template: str, link: str) -> None:
        parts = urlsplit(link)
        assert (parts.scheme, parts.netloc) == ("http", "localhost"), f"{template}: {link} is off PUBLIC_BASE_URL"
        browser = self.app.test_client()
        if parts.path.startswith(("/queue", "/staff")):
            login_as(browser, self.desk)  # signed in at the moment the email is read
        response = browser.get(parts.path)
        assert response.status_code == 200, f"{template}: {link} answered {response.status_code}"


def test_every_link_in_every_email_opens_a_real_page(app, client, monkeypatch):
    inbox = Inbox(app)
    derm = make_user("dermatologist", email="ona@clinic.example")
    with time_machine.travel(T0, tick=False):
        consultation, token = make_consultation(created_at=T0)
        notify.request_submitted(consultation, token, policies().alerts)  # confirmation and team alert
        db.session.commit()
        inbox.open_new_links()
        urgent, urgent_token = make_consultation(created_at=T0, urgent=True, triage_level="today")
        notify.request_submitted(urgent, urgent_token, policies().alerts)  # the urgent alert
        db.session.commit()
        inbox.open_new_links()
        actions.claim(consultation, derm, T0)
        actions.ask(consultation, derm, "Is it itchy?", T0)
        inbox.open_new_links()
        assert client.post(f"/c/{token}/reply", data={"body": "Yes, at night."}).status_code == 303
        inbox.open_new_links()
        actions.answer(
            consultation,
            derm,
            actions.Answer("Eczema.", "Emollient twice a day."),
            T0,
            check_in_weeks=2,
            check_in_policy=policies().check_ins,
        )
        inbox.open_new_links()
        assert client.post("/consultation/link", data={"email": consultation.patient_email}).status_code in (200, 303)
        send_requested_links()  # the worker's part
        inbox.open_new_links()
        make_consultation(created_at=T0)  # left unclaimed: at risk tomorrow morning, then overdue
    lead = make_user("staff", email="lead@clinic.example")
    accounts.set_medical_lead(lead, True)
    db.session.commit()
    for hours in (21, 25, 29):  # at risk, overdue, and still overdue: the medical lead
        with time_machine.travel(T0 + timedelta(hours=hours), tick=False):
            check(policies())
            inbox.open_new_links()
    settings = use_settings(app, monkeypatch, AUTO_ASSIGN=True, WEEKLY_SUMMARY=True)
    friday_evening = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # 18:00 in Vilnius
    with time_machine.travel(friday_evening, tick=False):
        consultation, _ = make_consultation(created_at=friday_evening)
        assignment.offer_new(consultation, friday_evening, settings)  # nobody holds it: given to Ona
        inbox.open_new_links()
        # Ona works weekdays; it is due on Saturday evening with nobody on duty before then.
        rota.set_weekly(derm, rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
        forecast.alert_gaps(settings, friday_evening)
        inbox.open_new_links()
    monday_morning = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # 08:00 in Vilnius
    with time_machine.travel(monday_morning, tick=False):
        summary.send_weekly(settings, monday_morning)
        inbox.open_new_links()
    with time_machine.travel(T0 + timedelta(weeks=2, hours=1), tick=False):
        send_due(policies(), T0 + timedelta(weeks=2, hours=1))  # the check-in email, with a fresh link
        inbox.open_new_links()
    kinds = {path.stem for path in TEMPLATES.glob("*.txt")} - {"base"}
    assert inbox.templates == kinds, "a kind of email was never produced"
