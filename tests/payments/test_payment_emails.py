"""Every payment email (templates/emails/payments/) is produced by the real flows, renders in both
languages with money written the reader's way, carries no health data, and every link in it opens
a real page: patient links as the patient, staff links signed in as staff."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import time_machine
from sqlalchemy import select

from app.extensions import db
from app.models import OutboundEmail
from app.outbox import render
from tests.factories import login_as, make_user
from tests.payments.helpers import latest_request, post_event, run_worker, send_paid_form, session_from

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "emails" / "payments"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
URL = re.compile(r"https?://[^\s<>\"']+")
DESCRIPTION = "Weeping red patches behind both knees since the summer."


@pytest.mark.parametrize("language", ["en", "lt"])
def test_every_payment_email_is_produced_renders_and_its_links_open(app, standin, language):
    patient = app.test_client()
    with time_machine.travel(T0, tick=False):
        patient.get(f"/consultation/new?lang={language}")
        unpaid = session_from(send_paid_form(patient, description=DESCRIPTION))
    with time_machine.travel(T0 + timedelta(hours=1, minutes=1), tick=False):
        run_worker(T0 + timedelta(hours=1, minutes=1))  # the reminder
        post_event(patient, standin, standin.pay(unpaid))  # the receipt
    standin.fail_next("refunds.create", code="balance_insufficient")
    late = T0 + timedelta(hours=26)
    with time_machine.travel(late, tick=False):
        run_worker(late)  # a late refund, refused: staff are told
    with time_machine.travel(late + timedelta(minutes=5), tick=False):
        run_worker(late + timedelta(minutes=5))  # retried: paid, the patient is told
        desk = make_user("staff", email="desk@clinic.example")
        made = set()
        for email in db.session.execute(
            select(OutboundEmail).where(OutboundEmail.template.like("payments/%"))
        ).scalars():
            made.add(email.template.removeprefix("payments/"))
            subject, text, html = render(email)
            assert email.language == (language if email.recipient != "alerts@clinic.example" else "en")
            assert "DESCRIPTION" not in text and DESCRIPTION not in text + html and "knees" not in text + html
            money = "€39.00" if email.language == "en" else "39,00\xa0€"
            assert money in text and money in html, f"{email.template}: {text}"
            assert latest_request().reference in subject
            for link in sorted(set(URL.findall(text)) | set(URL.findall(html))):
                parts = urlsplit(link)
                assert (parts.scheme, parts.netloc) == ("http", "localhost"), link
                browser = app.test_client()
                if parts.path.startswith("/staff"):
                    login_as(browser, desk)
                assert browser.get(parts.path).status_code == 200, f"{email.template}: {link}"
    assert made == {path.stem for path in TEMPLATES.glob("*.txt")}
