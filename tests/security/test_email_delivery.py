"""Email delivery against a real SMTP server on loopback (aiosmtpd): addresses with letters outside
ASCII before the @, an unexpected error in one row, and a Message-ID that stays the same on retries."""

from __future__ import annotations

import email.utils
import io
import smtplib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from app import outbox
from app.extensions import db
from app.models import FAILED, PENDING, SENT, OutboundEmail
from tests.conftest import build_app, empty_database, reset_database
from tests.factories import intake_answers, login_as, make_user, open_consultation_form, photo_bytes
from tests.security.attack import app_with
from tests.smtp import MailServer

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
INTERNATIONAL = "josé@example.com"


def queue(recipient: str, reference: str = "DRM-7K3Q9X") -> OutboundEmail:
    context = {"reference": reference, "due_local": "2026-11-25 11:00", "link": f"http://localhost/queue/{reference}"}
    row = outbox.enqueue(recipient, outbox.EmailTemplate.SLA_AT_RISK, context=context)
    db.session.commit()
    assert row is not None
    return row


def row(email_id: int) -> OutboundEmail:
    db.session.expire_all()
    found = db.session.get(OutboundEmail, email_id)
    assert found is not None
    return found


@pytest.fixture
def plain_server():
    """A mail server without SMTPUTF8, for one test."""
    mail = MailServer().start()
    yield mail
    mail.stop()


@pytest.fixture(params=[False, True], ids=["server without SMTPUTF8", "server with SMTPUTF8"])
def server(request):
    mail = MailServer(smtputf8=request.param).start()
    yield mail
    mail.stop()


@pytest.fixture
def mail_app(tmp_path, server):
    app = build_app(tmp_path, **server.settings(), MAIL_TIMEOUT=5)
    reset_database(app)
    with app.app_context():
        yield app
        db.session.remove()
    empty_database(app)


def test_an_address_with_a_non_ascii_local_part_is_sent_or_failed_clearly_and_the_round_goes_on(mail_app, server):
    """[F4] smtplib raised UnicodeEncodeError for josé@…: the row stayed pending with no error past
    its attempt limit, and the round stopped for every other email."""
    with time_machine.travel(T0, tick=False):
        before = queue("first@example.com", "DRM-AAAAAA")
        international = queue(INTERNATIONAL, "DRM-BBBBBB")
        after = queue("second@example.com", "DRM-CCCCCC")
        counts = outbox.deliver()
    assert row(before.id).status == SENT and row(after.id).status == SENT
    assert sorted(server.recipients()) == sorted(
        ["first@example.com", "second@example.com"] + ([INTERNATIONAL] if server.smtputf8 else [])
    )
    sent = row(international.id)
    if server.smtputf8:
        assert sent.status == SENT and counts[SENT] == 3
    else:
        # Failed at once (trying again cannot help), with a reason staff can act on.
        assert sent.status == FAILED and counts[FAILED] == 1 and counts[SENT] == 2
        assert "SMTPUTF8" in sent.last_error and "another address" in sent.last_error
        assert sent.attempts == 1


def test_staff_see_why_the_email_to_an_international_address_failed(tmp_path, plain_server):
    """[F4] The error is shown to staff on the dashboard's outbox."""
    with app_with(tmp_path, **plain_server.settings()) as app:
        with time_machine.travel(T0, tick=False):
            queue(INTERNATIONAL)
            outbox.deliver()
        client = app.test_client()
        login_as(client, make_user("staff"))
        page = client.get("/staff/").get_data(as_text=True)
        assert "no SMTPUTF8" in page and "ask the patient for another address" in page


def test_an_unexpected_error_in_one_row_marks_it_and_the_round_goes_on(mail_app, server, monkeypatch):
    """[F4] Any unforeseen error while sending one email marks that row; the others still go."""
    real = smtplib.SMTP.send_message

    def breaks_for_one(self, message, *args, **kwargs):
        if "DRM-BROKEN" in str(message["Subject"]):
            raise ValueError("something nobody foresaw")
        return real(self, message, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "send_message", breaks_for_one)
    with time_machine.travel(T0, tick=False):
        broken = queue("broken@example.com", "DRM-BROKEN")
        fine = queue("fine@example.com", "DRM-FINE01")
        counts = outbox.deliver()
    assert row(fine.id).status == SENT and server.recipients() == ["fine@example.com"]
    failed = row(broken.id)
    assert failed.status == PENDING and failed.attempts == 1 and counts["retrying"] == 1
    assert failed.last_error == "unexpected error: ValueError"
    assert failed.next_attempt_at > T0  # retried after the backoff, not in a tight loop


def test_the_form_says_when_an_address_cannot_be_used(tmp_path):
    """[F4] The consultation form tells the patient at once if our mail cannot reach the address."""
    for smtputf8, accepted in ((False, False), (True, True)):
        with app_with(tmp_path / str(smtputf8), MAIL_SMTPUTF8=smtputf8) as app:
            client = app.test_client()
            _, key = open_consultation_form(client)
            data = intake_answers(email=INTERNATIONAL)
            data["submission_key"] = key
            data["photos"] = [(io.BytesIO(photo_bytes()), "rash.jpg")]
            response = client.post("/consultation/new", data=data, content_type="multipart/form-data")
            text = response.get_data(as_text=True)
            if accepted:
                assert response.status_code == 303
            else:
                assert response.status_code == 422
                assert "We cannot send email to addresses with letters such as" in text
                assert "Ona Petraitien" in text  # what the patient typed is still on the form


# --- Message-ID -----------------------------------------------------------------------------


def message_ids(server: MailServer, address: str) -> list[str]:
    return [str(message["Message-ID"]) for message in server.messages_to(address)]


def test_every_email_keeps_one_message_id_on_the_clinics_domain_across_retries(tmp_path, plain_server):
    """[F14] A worker killed after the SMTP server accepted a message sent it again after the lease,
    each time with a new Message-ID on @localhost, so receivers could not drop the duplicate."""
    sender = "Skin Clinic <no-reply@odos-klinika.lt>"
    with app_with(tmp_path, **plain_server.settings(), MAIL_DEFAULT_SENDER=sender):
        with time_machine.travel(T0, tick=False) as traveller:
            queued = queue("patient@example.com")
            assert queued.message_id and queued.message_id.endswith("@odos-klinika.lt>")
            kept = queued.message_id
            # The first worker sends it and dies before marking it sent: the row stays claimed.
            claimed = outbox._claim_next(T0)
            assert claimed is not None
            connection = outbox._open()
            assert connection is not None
            connection.send_message(outbox._compose(claimed), to_addrs=["patient@example.com"])
            connection.quit()
            db.session.rollback()
            # After the lease another worker sends it again.
            traveller.shift(outbox.CLAIM_LEASE + timedelta(seconds=1))
            assert outbox.deliver()[SENT] == 1
        ids = message_ids(plain_server, "patient@example.com")
        assert ids == [kept, kept]  # a duplicate the receiver can recognise and drop
        assert email.utils.parseaddr(ids[0])[1].endswith("@odos-klinika.lt")


def test_the_message_id_domain_falls_back_to_public_base_url(tmp_path):
    """[F14] Without a domain in MAIL_DEFAULT_SENDER, PUBLIC_BASE_URL's host names the Message-ID."""
    with app_with(tmp_path, MAIL_DEFAULT_SENDER="Skin Clinic", PUBLIC_BASE_URL="https://klinika.example") as app:
        assert app
        queued = queue("patient@example.com")
        assert queued.message_id.endswith("@klinika.example>")
        other = queue("other@example.com", "DRM-OTHER1")
        assert other.message_id != queued.message_id


def test_a_row_queued_before_message_ids_gets_one_and_keeps_it(tmp_path, plain_server):
    """[F14] Rows already in the outbox at the upgrade get a Message-ID at their first send, kept after."""
    with app_with(tmp_path, **plain_server.settings()), time_machine.travel(T0, tick=False) as traveller:
        old = OutboundEmail(recipient="bounce@example.com", template="sla_at_risk", context={"reference": "DRM-OLD001"})
        db.session.add(old)
        db.session.commit()
        plain_server.reject.add("bounce@example.com")
        outbox.deliver()
        first = row(old.id).message_id
        assert first and row(old.id).status == PENDING
        plain_server.reject.clear()
        traveller.shift(timedelta(hours=1))
        outbox.deliver()
        assert row(old.id).status == SENT and row(old.id).message_id == first
        assert message_ids(plain_server, "bounce@example.com") == [first]
        assert db.session.execute(select(OutboundEmail.message_id)).scalars().all() == [first]
