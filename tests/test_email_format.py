"""The bytes the worker sends for each email (app.outbox.mime_message): read back as a mail client would."""

from __future__ import annotations

import email
from email.header import decode_header, make_header

import pytest

from app.outbox import mime_message

SENDER = "Skin Clinic <no-reply@clinic.example>"


def parts(message) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_payload(decode=True).decode(part.get_content_charset())
        for part in message.walk()
        if not part.is_multipart()
    }


def test_text_and_html_alternatives_in_utf8_with_every_header():
    sent = mime_message("ona@example.com", "Jūsų atsakymas paruoštas", "Sveiki, Ona\n", "<p>Sveiki, Ona</p>", SENDER)
    message = email.message_from_bytes(sent.data)
    assert sent.sender == "no-reply@clinic.example"
    assert str(make_header(decode_header(message["Subject"]))) == "Jūsų atsakymas paruoštas"
    assert message["From"] == SENDER and message["To"] == "ona@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] and message["Message-ID"].endswith("@clinic.example>")
    assert message.get_content_type() == "multipart/alternative"
    assert parts(message) == {"text/plain": "Sveiki, Ona\n", "text/html": "<p>Sveiki, Ona</p>"}


def test_every_line_ends_in_crlf_and_fits_smtp():
    long_subject = "Jūsų užklausa DRM-7K3Q9X gauta — dermatologas atsakys per 24 valandas nuo pateikimo " * 2
    sent = mime_message("ona@example.com", long_subject, "ž" * 5000, "<p>" + "ž" * 5000 + "</p>", SENDER)
    lines = sent.data.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 998
    subject = email.message_from_bytes(sent.data)["Subject"]
    assert str(make_header(decode_header(subject))) == long_subject


def test_a_display_name_outside_ascii_is_encoded():
    sent = mime_message("a@example.com", "Hi", "t", "<p>h</p>", "Odos klinika Žalgiris <no-reply@clinic.example>")
    sender = email.message_from_bytes(sent.data)["From"]
    assert str(make_header(decode_header(sender))) == "Odos klinika Žalgiris <no-reply@clinic.example>"


@pytest.mark.parametrize(
    "recipient, subject",
    [("a@example.com\r\nBcc: everyone@example.com", "Hi"), ("a@example.com", "Hi\nBcc: everyone@example.com")],
)
def test_a_line_break_in_a_header_is_refused(recipient, subject):
    with pytest.raises(ValueError, match="line break"):
        mime_message(recipient, subject, "t", "<p>h</p>", SENDER)


# --- A round of delivery: several claim batches, one connection -----------------------------------


@pytest.fixture
def sending_app(tmp_path):
    from tests.conftest import build_app, empty_database, reset_database
    from tests.smtp import MailServer

    server = MailServer(reject={"bounce@example.com"}).start()
    app = build_app(tmp_path, **server.settings(), MAIL_TIMEOUT=5)
    reset_database(app)
    with app.app_context():
        yield app, server
        from app.extensions import db

        db.session.remove()
    empty_database(app)
    server.stop()


def test_a_round_sends_each_email_once_and_marks_it_sent(sending_app):
    from datetime import UTC, datetime

    import time_machine
    from sqlalchemy import select

    from app.extensions import db
    from app.models import FAILED, PENDING, SENT, OutboundEmail
    from app.outbox import CLAIM_BATCH, deliver, enqueue

    _app, server = sending_app
    count = CLAIM_BATCH * 2 + 3
    moment = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    with time_machine.travel(moment, tick=False):
        for n in range(count):
            enqueue(f"person{n}@clinic.example", "sla_at_risk", context={"reference": f"DRM-{n:06d}", "link": "x"})
        enqueue("bounce@example.com", "sla_at_risk", context={"reference": "DRM-BOUNCE", "link": "x"})
        db.session.commit()
        counts = deliver(limit=100)
    assert counts == {SENT: count, "retrying": 1, FAILED: 0, "waiting": 0}
    assert sorted(server.recipients()) == sorted(f"person{n}@clinic.example" for n in range(count))
    rows = db.session.execute(select(OutboundEmail.recipient, OutboundEmail.status, OutboundEmail.sent_at)).all()
    assert {(status, sent_at) for recipient, status, sent_at in rows if recipient != "bounce@example.com"} == {
        (SENT, moment)
    }
    assert [status for recipient, status, _ in rows if recipient == "bounce@example.com"] == [PENDING]


def test_emails_not_yet_tried_when_the_server_goes_away_keep_their_attempts(sending_app):
    from sqlalchemy import select

    from app.extensions import db
    from app.models import SENT, OutboundEmail
    from app.outbox import deliver, enqueue

    _app, server = sending_app
    for n in range(5):
        enqueue(f"person{n}@clinic.example", "sla_at_risk", context={"reference": f"DRM-{n:06d}", "link": "x"})
    db.session.commit()
    server.stop()  # the mail server is gone before the round starts
    counts = deliver()
    assert (counts[SENT], counts["retrying"]) == (0, 1)
    attempts = sorted(db.session.execute(select(OutboundEmail.attempts)).scalars())
    assert attempts == [0, 0, 0, 0, 1]  # only the email that met the closed door spent an attempt
