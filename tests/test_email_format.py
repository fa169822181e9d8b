"""What the worker sends, byte for byte, read back as a mail client would; and a delivery round against a
real SMTP server on loopback: claims in batches on one connection, emails not yet tried when the server
goes away, and how many emails a worker killed outright can send again (at most CLAIM_BATCH)."""

from __future__ import annotations

import email
import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import time_machine
from aiosmtpd.controller import Controller
from flask import render_template
from flask_babel import force_locale
from sqlalchemy import select

from app.extensions import db
from app.links import link
from app.models import FAILED, PENDING, SENT, OutboundEmail
from app.outbox import (
    CLAIM_BATCH,
    CLAIM_LEASE,
    EmailTemplate,
    LineBreakInHeader,
    _message,
    _Sender,
    deliver,
    enqueue,
    render,
)
from app.timeutil import utcnow
from tests.conftest import build_app, empty_database, reset_database
from tests.smtp import free_port

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SENDER = "Skin Clinic <no-reply@clinic.example>"


class RawServer:
    """aiosmtpd on loopback keeping each message as the bytes that arrived, with its envelope and connection.

    `on_message(count)` runs in the server's thread after the count-th message is kept, before the
    server answers; `drop_at`: the server hangs up instead of answering that message.
    """

    def __init__(self, *, reject: frozenset[str] = frozenset(), drop_at: int | None = None) -> None:
        self.received: list[dict] = []
        self.lock = threading.Lock()
        self.on_message = lambda count: None
        recorder = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # aiosmtpd's hook
                if address in reject:
                    return "550 5.1.1 Mailbox unavailable"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook
                with recorder.lock:
                    count = len(recorder.received) + 1
                    if count == drop_at:
                        server.transport.close()  # the server goes away without answering
                        return "421 closing"
                    recorder.received.append(
                        {
                            "from": envelope.mail_from,
                            "to": list(envelope.rcpt_tos),
                            "options": list(envelope.mail_options),
                            "data": envelope.original_content,
                            "connection": id(session),
                        }
                    )
                recorder.on_message(count)
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True)

    def start(self) -> RawServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def settings(self) -> dict:
        return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": self.port, "MAIL_SUPPRESS_SEND": False, "MAIL_TIMEOUT": 5}

    def recipients(self) -> list[str]:
        with self.lock:
            return [address for item in self.received for address in item["to"]]

    def messages(self) -> list[Message]:
        with self.lock:
            return [email.message_from_bytes(item["data"]) for item in self.received]


@pytest.fixture
def server():
    raw = RawServer(reject=frozenset({"bounce@example.com"})).start()
    yield raw
    raw.stop()


def app_for(tmp_path, server: RawServer, **overrides):
    database = f"sqlite:///{tmp_path / 'outbox.sqlite'}"  # a file: the server's thread reads it too
    app = build_app(tmp_path, **server.settings(), SQLALCHEMY_DATABASE_URI=database, **overrides)
    reset_database(app)
    return app


@pytest.fixture
def mail_app(tmp_path, server):
    app = app_for(tmp_path, server)
    with app.app_context():
        yield app
        db.session.remove()
    empty_database(app)


def queue_alerts(count: int, first: int = 0) -> list[OutboundEmail]:
    rows = []
    for n in range(first, first + count):
        row = enqueue(
            f"person{n}@clinic.example",
            EmailTemplate.STAFF_NEW_REQUEST,
            context={"reference": f"DRM-{n:06d}", "link": link("queue.detail", reference=f"DRM-{n:06d}")},
        )
        assert row is not None
        rows.append(row)
    db.session.commit()
    return rows


def decoded(value: str | None) -> str:
    return str(make_header(decode_header(value or "")))


def parts(message: Message) -> dict[str, str]:
    """Each alternative as a mail client shows it (line ends as in the text that was rendered)."""
    found = {}
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            found[part.get_content_type()] = payload.decode(part.get_content_charset()).replace("\r\n", "\n")
    return found


def sent_as_smtplib_sends(server: RawServer, message: Message, recipient: str) -> bytes:
    """What goes on the wire for `message`: sent by smtplib's send_message, as the worker does."""
    with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as connection:
        connection.send_message(message, from_addr="no-reply@clinic.example", to_addrs=[recipient])
    return server.received[-1]["data"]


class _Row:
    """An email's values, as a claimed row holds them."""

    recipient = "ona@example.com"
    template = EmailTemplate.SLA_AT_RISK.value
    language = "en"
    context: dict = {}
    sealed_context = None
    message_id = "<fixed.1@clinic.example>"


EMAIL_TO_ONA = _Row()
SENDER_OF_CLINIC = _Sender(address="no-reply@clinic.example", header=SENDER)


# --- The message ----------------------------------------------------------------------------------


def test_text_and_html_alternatives_in_utf8_with_every_header(mail_app, server):
    with time_machine.travel(T0, tick=False):
        row = enqueue(
            "ona@example.com",
            EmailTemplate.REQUEST_RECEIVED,
            language="lt",
            context={"reference": "DRM-7K3Q9X"},
            secret_context={"link": link("intake.private", token="Zx8_kP2-secret-token-value")},
        )
        db.session.commit()
        subject, text, html = render(row)
        assert deliver()[SENT] == 1
    [sent] = server.received
    assert (sent["from"], sent["to"]) == ("no-reply@clinic.example", ["ona@example.com"])
    assert "SMTPUTF8" not in sent["options"]
    message = email.message_from_bytes(sent["data"])
    assert not subject.isascii() and decoded(message["Subject"]) == subject
    assert message["From"] == SENDER and message["To"] == "ona@example.com"
    assert message["Auto-Submitted"] == "auto-generated" and message["MIME-Version"] == "1.0"
    assert parsedate_to_datetime(message["Date"]) == T0
    assert message["Message-ID"] == row.message_id and row.message_id.endswith("@clinic.example>")
    assert message.get_content_type() == "multipart/alternative" and not message.defects
    assert parts(message) == {"text/plain": text, "text/html": html}
    assert "Zx8_kP2-secret-token-value" in text


def test_every_line_ends_in_crlf_and_fits_smtp(server):
    long_subject = "Jūsų užklausa DRM-7K3Q9X gauta — dermatologas atsakys per 24 valandas nuo pateikimo " * 2
    long_ascii = "Request DRM-7K3Q9X " * 100  # one line of 1,900 characters
    for subject, text, html in (
        (long_subject, "ž" * 5000, "<p>" + "ž" * 5000 + "</p>"),
        ("A" * 200, long_ascii, f"<p>{long_ascii}</p>\n"),
        ("Short", "Two lines\nof plain text\n", "<p>plain</p>"),
    ):
        message = _message(EMAIL_TO_ONA, subject, text, html, SENDER_OF_CLINIC)
        data = sent_as_smtplib_sends(server, message, "ona@example.com")
        lines = data.split(b"\r\n")
        assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
        assert max(len(line) for line in lines) <= 998
        received = email.message_from_bytes(data)
        assert decoded(received["Subject"]) == subject and not received.defects
        assert parts(received) == {"text/plain": text, "text/html": html}


def test_plain_ascii_parts_go_as_they_are_and_others_in_base64(server):
    message = _message(
        EMAIL_TO_ONA, "Hello", "Read it here:\nhttps://x.example/c/1\n", "<p>Sveiki, Ona</p>", SENDER_OF_CLINIC
    )
    data = sent_as_smtplib_sends(server, message, "ona@example.com")
    assert b"Content-Transfer-Encoding: 7bit\r\n\r\nRead it here:\r\nhttps://x.example/c/1\r\n" in data
    assert b"Subject: Hello\r\n" in data

    lithuanian = _message(EMAIL_TO_ONA, "Sveiki", "Jūsų atsakymas\n", "<p>Jūsų</p>", SENDER_OF_CLINIC)
    received = email.message_from_bytes(sent_as_smtplib_sends(server, lithuanian, "ona@example.com"))
    assert [part["Content-Transfer-Encoding"] for part in received.walk() if not part.is_multipart()] == [
        "base64",
        "base64",
    ]


def test_a_display_name_outside_ascii_is_encoded(tmp_path, server):
    sender = "Odos klinika Žalgiris <no-reply@clinic.example>"
    app = app_for(tmp_path, server, MAIL_DEFAULT_SENDER=sender)
    with app.app_context():
        queue_alerts(1)
        assert deliver()[SENT] == 1
        db.session.remove()
    empty_database(app)
    [message] = server.messages()
    assert decoded(message["From"]) == sender and message["From"].isascii()


def test_an_address_outside_ascii_goes_with_smtputf8_and_the_header_in_utf8(mail_app, server):
    row = enqueue("josé@bücher.example", EmailTemplate.SLA_AT_RISK, context={"reference": "DRM-1", "link": "x"})
    db.session.commit()
    assert deliver()[SENT] == 1
    [sent] = server.received
    assert sent["to"] == ["josé@xn--bcher-kva.example"]  # the domain in its ASCII form
    assert "SMTPUTF8" in sent["options"]
    message = email.message_from_bytes(sent["data"])
    assert "To: josé@xn--bcher-kva.example\r\n".encode() in sent["data"]
    assert message["Message-ID"] == row.message_id


@pytest.mark.parametrize(
    "recipient", ["a@example.com\r\nBcc: everyone@example.com", "a@example.com\nBcc: x@example.com"]
)
def test_a_line_break_in_the_address_fails_the_email_at_once_and_sends_nothing(mail_app, server, recipient):
    row = enqueue(recipient, EmailTemplate.SLA_AT_RISK, context={"reference": "DRM-1", "link": "x"})
    queue_alerts(1)
    counts = deliver()
    assert (counts[SENT], counts[FAILED]) == (1, 1)
    assert server.recipients() == ["person0@clinic.example"]
    db.session.refresh(row)
    assert (row.status, row.attempts) == (FAILED, 1)
    assert row.last_error == "could not build the email: a line break in an address or the subject"


def test_a_line_break_in_the_subject_is_refused():
    with pytest.raises(LineBreakInHeader):
        _message(EMAIL_TO_ONA, "Hi\r\nBcc: everyone@example.com", "t", "<p>h</p>", SENDER_OF_CLINIC)


WEEKLY = {
    "week": "2026-W47",
    "first_day": "2026-11-16",
    "last_day": "2026-11-22",
    "met": 9,
    "missed": 1,
    "share": 90.0,
    "first_responses": 10,
    "median_hours": 3.25,
    "p90_hours": None,
    "dermatologists": [["Dr <b>Ona</b> & Co", 9, 0, 9, 3.0], [None, 0, 1, 1, None]],
    "late_reasons": [],
    "ratings": {"count": 3, "average": 4.5},
    "link": "http://localhost/staff/",
}


@pytest.mark.parametrize("language", ["en", "lt"])
@pytest.mark.parametrize(
    "template, context",
    [
        *[(EmailTemplate.CHECK_IN_DUE, {"reference": "DRM-7K3Q9X", "weeks": weeks}) for weeks in (1, 2, 5, 11, 21)],
        (EmailTemplate.WEEKLY_SUMMARY, WEEKLY),  # "%%", numbers formatted in the template, markup in a value
        (EmailTemplate.STAFF_NEW_REQUEST, {"reference": "DRM-<i>x</i>&amp;", "link": "http://localhost/q?a=1&b=2"}),
    ],
)
def test_emails_read_the_same_as_with_flask_babels_own_gettext(app, template, context, language):
    """render() binds gettext to the email's catalogue: the texts are those Flask-Babel's functions give."""
    row = enqueue("ona@example.com", template, language=language, context=context)
    assert row is not None
    with force_locale(language):
        text = render_template(f"emails/{template.value}.txt", **context, language=language)
        html = render_template(f"emails/{template.value}.html", **context, language=language)
    subject, body, rendered_html = render(row)
    first_line, _, rest = text.lstrip("\n").partition("\n")
    assert (subject, body) == (first_line.removeprefix("Subject:").strip(), rest.lstrip("\n"))
    assert rendered_html == html
    if language == "lt":
        assert html != render_template(f"emails/{template.value}.html", **context, language=language)  # in English


# --- A round of delivery --------------------------------------------------------------------------


def test_a_round_sends_each_email_once_on_one_connection_and_marks_it_sent(mail_app, server):
    count = CLAIM_BATCH * 2 + 3
    with time_machine.travel(T0, tick=False):
        queue_alerts(count)
        bounce = enqueue("bounce@example.com", EmailTemplate.SLA_AT_RISK, context={"reference": "DRM-B", "link": "x"})
        db.session.commit()
        counts = deliver(limit=100)
        assert deliver() == {SENT: 0, "retrying": 0, FAILED: 0, "waiting": 0}  # the bounce backs off
    assert counts == {SENT: count, "retrying": 1, FAILED: 0, "waiting": 0}
    assert sorted(server.recipients()) == sorted(f"person{n}@clinic.example" for n in range(count))
    assert len({item["connection"] for item in server.received}) == 1
    assert len({message.get_boundary() for message in server.messages()}) == count  # one per email
    rows = db.session.execute(select(OutboundEmail.recipient, OutboundEmail.status, OutboundEmail.sent_at)).all()
    assert {(status, sent_at) for recipient, status, sent_at in rows if recipient != "bounce@example.com"} == {
        (SENT, T0)
    }
    db.session.refresh(bounce)
    assert (bounce.status, bounce.attempts) == (PENDING, 1) and "550" in bounce.last_error


def test_a_round_stops_at_its_limit_and_leaves_the_rest_unclaimed(mail_app, server):
    queue_alerts(CLAIM_BATCH + 5)
    assert deliver(limit=7)[SENT] == 7
    attempts = db.session.execute(select(OutboundEmail.attempts).order_by(OutboundEmail.id)).scalars().all()
    assert attempts == [1] * 7 + [0] * (CLAIM_BATCH + 5 - 7)


def test_emails_not_yet_tried_when_the_server_is_down_keep_their_attempts(tmp_path):
    gone = RawServer().start()
    app = app_for(tmp_path, gone)
    gone.stop()  # the mail server is gone before the round starts
    with app.app_context():
        queue_alerts(5)
        counts = deliver()
        assert (counts[SENT], counts["retrying"]) == (0, 1)
        attempts = db.session.execute(select(OutboundEmail.attempts).order_by(OutboundEmail.id)).scalars().all()
        assert attempts == [1, 0, 0, 0, 0]  # only the email that met the closed door spent an attempt
        db.session.remove()
    empty_database(app)


def test_emails_not_yet_tried_when_the_server_hangs_up_mid_round_keep_their_attempts(tmp_path):
    hangs_up = RawServer(drop_at=CLAIM_BATCH + 4).start()
    app = app_for(tmp_path, hangs_up)
    try:
        with app.app_context(), time_machine.travel(T0, tick=False):
            rows = queue_alerts(CLAIM_BATCH * 3)
            counts = deliver(limit=100)
            assert (counts[SENT], counts["retrying"], counts[FAILED]) == (CLAIM_BATCH + 3, 1, 0)
            found = {
                row.id: (row.status, row.attempts, row.next_attempt_at)
                for row in db.session.execute(select(OutboundEmail)).scalars()
            }
            sent, dropped, rest = rows[: CLAIM_BATCH + 3], rows[CLAIM_BATCH + 3], rows[CLAIM_BATCH + 4 :]
            assert all(found[row.id][:2] == (SENT, 1) for row in sent)
            assert found[dropped.id][:2] == (PENDING, 1) and found[dropped.id][2] > T0  # backing off
            assert all(found[row.id] == (PENDING, 0, T0) for row in rest)  # due again, attempts unspent
            db.session.remove()
    finally:
        hangs_up.stop()
        empty_database(app)


def test_emails_sent_and_not_yet_marked_are_never_more_than_a_claim_batch(mail_app, server):
    """What a worker killed outright may send again after the lease: at every message the server takes,
    the emails it has taken whose rows are not yet marked sent number at most CLAIM_BATCH."""
    database = mail_app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    unmarked: list[int] = []

    def count_unmarked(_count: int) -> None:
        taken = server.recipients()
        reader = sqlite3.connect(database, timeout=30)
        try:
            statuses = dict(reader.execute("SELECT recipient, status FROM outbound_emails").fetchall())
        finally:
            reader.close()
        unmarked.append(sum(1 for address in taken if statuses[address] != SENT))

    server.on_message = count_unmarked
    queue_alerts(CLAIM_BATCH * 6)
    assert deliver(limit=1000)[SENT] == CLAIM_BATCH * 6
    assert len(unmarked) == CLAIM_BATCH * 6
    assert 1 <= max(unmarked) <= CLAIM_BATCH


def test_a_worker_killed_outright_sends_at_most_a_batch_again_after_the_lease(tmp_path, server):
    """A real `flask worker` is killed (SIGKILL) while the server holds its answer to one email: after
    the lease another round sends every email that was not marked sent, with the same Message-ID."""
    total = CLAIM_BATCH * 5
    app = app_for(tmp_path, server)
    with app.app_context():
        queue_alerts(total)
        db.session.remove()
    holding, release = threading.Event(), threading.Event()

    def hold_the_answer(count: int) -> None:
        if count == CLAIM_BATCH * 2 + 5:  # taken, and the worker dies before it hears "250"
            holding.set()
            release.wait(timeout=60)

    server.on_message = hold_the_answer
    env = {
        **os.environ,
        "APP_CONFIG": "development",
        "FLASK_APP": "wsgi:app",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(server.port),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        assert holding.wait(timeout=60), worker.stderr.read().decode() if worker.poll() is not None else "no email"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        release.set()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stderr.close()
    first_round = len(server.received)
    with app.app_context(), time_machine.travel(utcnow() + CLAIM_LEASE + timedelta(seconds=1), tick=False):
        while deliver(limit=1000)[SENT]:
            pass
        statuses = db.session.execute(select(OutboundEmail.status)).scalars().all()
        message_ids = dict(db.session.execute(select(OutboundEmail.recipient, OutboundEmail.message_id)).all())
        db.session.remove()
    empty_database(app)
    assert statuses == [SENT] * total
    assert sorted(set(server.recipients())) == sorted(f"person{n}@clinic.example" for n in range(total))
    again = len(server.received) - total
    assert 1 <= again <= CLAIM_BATCH  # the email held at the kill at least; never more than a batch
    assert first_round == CLAIM_BATCH * 2 + 5
    for item in server.received:
        [recipient] = item["to"]
        assert email.message_from_bytes(item["data"])["Message-ID"] == message_ids[recipient]
