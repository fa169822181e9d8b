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

from app.consultations import notify
from app.consultations import staff_actions as actions
from app.consultations.alerts import check
from app.consultations.check_ins import send_due
from app.extensions import db
from app.models import OutboundEmail
from app.outbox import render
from app.runtime import policies
from tests.factories import login_as, make_consultation, make_user

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


def test_every_link_in_every_email_opens_a_real_page(app, client):
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
        inbox.open_new_links()
        make_consultation(created_at=T0)  # left unclaimed: at risk tomorrow morning, then overdue
    for hours in (21, 25):
        with time_machine.travel(T0 + timedelta(hours=hours), tick=False):
            check(policies())
            inbox.open_new_links()
    with time_machine.travel(T0 + timedelta(weeks=2, hours=1), tick=False):
        send_due(policies(), T0 + timedelta(weeks=2, hours=1))  # the check-in email, with a fresh link
        inbox.open_new_links()
    kinds = {path.stem for path in TEMPLATES.glob("*.txt")} - {"base"}
    assert inbox.templates == kinds, "a kind of email was never produced"
