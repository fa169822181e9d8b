"""The outbox: rendering, delivery to a real SMTP server (aiosmtpd), retries with backoff,
permanent failures, the sealed link, and two workers delivering at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.extensions import db
from app.models import FAILED, PENDING, SENT, OutboundEmail
from app.outbox import (
    CLAIM_LEASE,
    HIDDEN_VALUE,
    EmailTemplate,
    _claim_next,
    backoff,
    deliver,
    enqueue,
    render,
    retry,
    unseal,
)
from app.timeutil import utcnow
from tests.conftest import build_app, empty_database, reset_database
from tests.databases import DATABASES, run_together, shared_app
from tests.factories import login_as, make_user
from tests.smtp import MailServer, body_html, body_text, free_port, header

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PRIVATE_LINK = "http://localhost/c/Zx8_kP2-secret-token-value"


@pytest.fixture
def mail_server():
    server = MailServer(reject={"bounce@example.com"}).start()
    yield server
    server.stop()


def app_sending_to(tmp_path, port: int):
    app = build_app(tmp_path, MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_SUPPRESS_SEND=False, MAIL_TIMEOUT=5)
    reset_database(app)
    return app


@pytest.fixture
def mail_app(tmp_path, mail_server):
    app = app_sending_to(tmp_path, mail_server.port)
    with app.app_context():
        yield app
        db.session.remove()
    empty_database(app)


def queue_alert(recipient: str, reference: str = "DRM-7K3Q9X", *, secret: bool = False) -> OutboundEmail:
    """What notify does: one at-risk alert row, committed."""
    context = {"reference": reference, "due_local": "2026-11-25 11:00", "link": f"http://localhost/queue/{reference}"}
    secret_context = None
    if secret:
        context.pop("link")
        secret_context = {"link": PRIVATE_LINK}
    email = enqueue(recipient, EmailTemplate.SLA_AT_RISK, context=context, secret_context=secret_context)
    db.session.commit()
    return email


# --- Rendering --------------------------------------------------------------------------------


def test_render_takes_the_subject_from_the_first_line(app):
    email = queue_alert("dr@clinic.example")
    subject, text, html = render(email)
    assert subject == "At risk: DRM-7K3Q9X needs a reply by 2026-11-25 11:00"
    assert not text.startswith("Subject:") and "Subject:" not in text
    assert text.startswith("Request DRM-7K3Q9X has not had a reply yet")
    assert "http://localhost/queue/DRM-7K3Q9X" in text and 'href="http://localhost/queue/DRM-7K3Q9X"' in html
    assert html.lstrip().startswith("<!doctype html>") and 'lang="en"' in html


def test_sealed_values_render_for_sending_and_stay_hidden_in_previews(app):
    email = queue_alert("dr@clinic.example", secret=True)
    assert PRIVATE_LINK not in (email.sealed_context or "")  # encrypted at rest
    assert PRIVATE_LINK in render(email)[1]
    _subject, preview_text, preview_html = render(email, reveal_secrets=False)
    assert PRIVATE_LINK not in preview_text + preview_html and HIDDEN_VALUE in preview_text


def test_backoff_doubles_and_is_capped_at_six_hours(app):
    assert [backoff(n, 60).total_seconds() for n in range(1, 6)] == [60, 120, 240, 480, 960]
    assert backoff(30, 60) == timedelta(hours=6)


# --- Delivery ---------------------------------------------------------------------------------


def test_without_a_mail_server_mail_waits_for_staff_to_see(app):
    assert app.config["MAIL_SERVER"] is None
    email = queue_alert("dr@clinic.example")
    assert deliver() == {"sent": 0, "retrying": 0, "failed": 0, "waiting": 1}
    db.session.refresh(email)
    assert (email.status, email.attempts) == (PENDING, 0)


def test_deliver_sends_through_smtp_and_wipes_the_sealed_link(mail_app, mail_server):
    with time_machine.travel(T0, tick=False):
        email = queue_alert("Patient@Example.com", secret=True)
        assert deliver() == {"sent": 1, "retrying": 0, "failed": 0, "waiting": 0}
    [message] = mail_server.messages_to("patient@example.com")
    assert header(message, "Subject") == "At risk: DRM-7K3Q9X needs a reply by 2026-11-25 11:00"
    assert header(message, "From") == "Skin Clinic <no-reply@clinic.example>"
    assert header(message, "Auto-Submitted") == "auto-generated"
    assert PRIVATE_LINK in body_text(message) and PRIVATE_LINK in body_html(message)
    db.session.refresh(email)
    assert (email.status, email.attempts, email.sent_at, email.last_error) == (SENT, 1, T0, None)
    assert email.sealed_context is None and unseal(email.sealed_context) == {}
    assert deliver() == {"sent": 0, "retrying": 0, "failed": 0, "waiting": 0}
    assert len(mail_server.messages) == 1


def test_smtp_down_then_up_loses_nothing_and_delivers_after_backoff(tmp_path):
    port = free_port()  # nothing listens here yet: the mail server is down
    app = app_sending_to(tmp_path, port)
    server = MailServer(port=port)
    try:
        with app.app_context(), time_machine.travel(T0, tick=False) as clock:
            emails = [queue_alert(f"staff{n}@clinic.example") for n in range(3)]
            # A refused connection costs one attempt on one email; the others wait for the next run.
            assert deliver() == {"sent": 0, "retrying": 1, "failed": 0, "waiting": 0}
            first = db.session.get(OutboundEmail, emails[0].id)
            assert (first.status, first.attempts) == (PENDING, 1)
            assert "ConnectionRefusedError" in first.last_error
            assert first.next_attempt_at == T0 + timedelta(seconds=60)

            server.start()  # the mail server comes back
            clock.move_to(T0 + timedelta(seconds=59))
            assert deliver()["sent"] == 2  # the two untouched emails; the first is still backing off
            clock.move_to(T0 + timedelta(seconds=60))
            assert deliver()["sent"] == 1
            assert sorted(server.recipients()) == [f"staff{n}@clinic.example" for n in range(3)]
            statuses = db.session.execute(select(OutboundEmail.status)).scalars().all()
            assert statuses == [SENT] * 3
            db.session.remove()
    finally:
        server.stop()
        empty_database(app)


def test_a_permanently_refused_address_ends_failed_after_max_attempts(mail_app, mail_server):
    max_attempts = mail_app.config["OUTBOX_MAX_ATTEMPTS"]
    with time_machine.travel(T0, tick=False) as clock:
        bounce = queue_alert("bounce@example.com", secret=True)
        good = queue_alert("dr@clinic.example")
        first = deliver()
        assert (first["sent"], first["retrying"]) == (1, 1)  # a refused recipient does not stop the batch
        for attempt in range(2, max_attempts + 1):
            db.session.refresh(bounce)
            assert bounce.status == PENDING and bounce.attempts == attempt - 1
            clock.move_to(bounce.next_attempt_at - timedelta(seconds=1))
            assert deliver()["retrying"] == 0  # not due yet
            clock.move_to(bounce.next_attempt_at)
            deliver()
        db.session.refresh(bounce)
        assert (bounce.status, bounce.attempts) == (FAILED, max_attempts)
        assert "550" in bounce.last_error and "Mailbox unavailable" in bounce.last_error
        assert bounce.sealed_context is None and bounce.context["link_removed"] is True
        clock.shift(timedelta(days=2))
        assert deliver() == {"sent": 0, "retrying": 0, "failed": 0, "waiting": 0}  # failed rows stay put
    assert mail_server.messages_to("bounce@example.com") == []
    assert len(mail_server.messages_to("dr@clinic.example")) == 1
    db.session.refresh(good)
    assert good.status == SENT
    # Never silently dropped: staff see it on the dashboard, with the server's answer.
    client = mail_app.test_client()
    login_as(client, make_user("staff"))
    page = client.get("/staff/").get_data(as_text=True)
    failed_row = page[page.index(f'id="email-{bounce.id}"') :]
    failed_row = failed_row[: failed_row.index("</tr>")]
    assert "bounce@example.com" in failed_row and "550 5.1.1 Mailbox unavailable" in failed_row
    assert "Send again" in failed_row


def test_staff_retry_sends_a_failed_email_again(mail_app, mail_server):
    email = queue_alert("dr@clinic.example")
    email.status, email.attempts, email.last_error = FAILED, 8, "recipient refused: 550"
    db.session.commit()
    assert deliver()["sent"] == 0
    assert retry(email.id) is True
    db.session.commit()
    assert retry(email.id) is False  # only failed rows can be retried
    assert deliver()["sent"] == 1
    assert len(mail_server.messages_to("dr@clinic.example")) == 1


def test_a_worker_that_dies_mid_send_leaves_the_email_for_after_its_lease(mail_app, mail_server):
    with time_machine.travel(T0, tick=False) as clock:
        email = queue_alert("dr@clinic.example")
        assert _claim_next(utcnow()).id == email.id  # claimed, then the worker "dies"
        assert deliver()["sent"] == 0
        clock.move_to(T0 + CLAIM_LEASE)
        assert deliver()["sent"] == 1
    assert len(mail_server.messages) == 1


def test_a_broken_template_is_recorded_and_does_not_stop_delivery(mail_app, mail_server):
    # A row whose template is gone (queued by an older release, say): rendering it fails.
    broken = enqueue("dr@clinic.example", EmailTemplate.SLA_OVERDUE, context={})
    broken.template = "no_such_template"
    queue_alert("other@clinic.example")
    db.session.commit()
    counts = deliver()
    assert (counts["sent"], counts["retrying"]) == (1, 1)
    db.session.refresh(broken)
    assert broken.last_error == "could not render the email: TemplateNotFound"


def test_queueing_with_the_mail_server_down_only_writes_a_row(tmp_path):
    app = app_sending_to(tmp_path, free_port())
    with app.app_context():
        email = queue_alert("dr@clinic.example")
        assert (email.status, email.attempts) == (PENDING, 0)
        db.session.remove()
    empty_database(app)


@pytest.mark.parametrize("database", DATABASES)
def test_two_workers_at_once_send_each_email_once(tmp_path, mail_server, database):
    with shared_app(database, tmp_path, **mail_server.settings()) as app:
        for n in range(40):
            enqueue(
                f"person{n}@clinic.example",
                EmailTemplate.SLA_AT_RISK,
                context={"reference": f"DRM-{n:06d}", "link": "x"},
            )
        db.session.commit()
        results = run_together(app, lambda: deliver(limit=1000), workers=2)
        assert sum(result["sent"] for result in results) == 40
        assert sorted(mail_server.recipients()) == sorted(f"person{n}@clinic.example" for n in range(40))
        assert set(db.session.execute(select(OutboundEmail.status)).scalars()) == {SENT}


def test_only_known_emails_can_be_queued(app):
    with pytest.raises(ValueError, match="unknown email template"):
        enqueue("dr@clinic.example", "newsletter", context={})  # type: ignore[arg-type]
