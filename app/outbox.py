"""The outbox: emails are queued in the caller's transaction and delivered later by deliver().

Queueing only writes a row, so a patient's submit or a dermatologist's answer never waits for,
or fails because of, the mail server. `flask mail deliver` / `flask worker` send the rows through
Flask-Mail, retrying with exponential backoff; a row that keeps failing ends `failed` and is shown
to staff on /staff/, never dropped.

Every row gets its Message-ID when it is queued, on the clinic's own domain, and keeps it through
every retry: should a worker die after the mail server accepted a message but before the row was
marked sent, the copy sent again after the lease carries the same Message-ID, which receiving
systems use to drop the duplicate. Addresses with letters outside ASCII before the @ (josé@…) go
out with SMTPUTF8 where the server offers it; where it does not, the row fails at once with a
sentence staff can act on.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import smtplib
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from enum import StrEnum
from typing import cast
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.links import resolve
from app.models import FAILED, PENDING, SENT, ConsultationRequest, OutboundEmail
from app.timeutil import utcnow

log = logging.getLogger("app.outbox")


class EmailTemplate(StrEnum):
    """Every email the clinic sends: templates/emails/<value>.txt and .html, in both languages."""

    REQUEST_RECEIVED = "request_received"  # to the patient, with the private link
    STAFF_NEW_REQUEST = "staff_new_request"  # to the team
    PATIENT_REPLY_READY = "patient_reply_ready"  # to the patient: an answer or a question is waiting
    PATIENT_REPLIED = "patient_replied"  # to the holder or the team
    SLA_AT_RISK = "sla_at_risk"
    SLA_OVERDUE = "sla_overdue"
    LINK_RESENT = "link_resent"  # "lost your link?"
    SLA_ESCALATED = "sla_escalated"  # to the medical lead: still overdue after ESCALATE_AFTER_HOURS
    REQUEST_ASSIGNED = "request_assigned"  # to the dermatologist a request was given to
    COVERAGE_GAP = "coverage_gap"  # to staff: a breach nobody on the rota can prevent
    WEEKLY_SUMMARY = "weekly_summary"  # to staff, every Monday
    URGENT_REQUEST = "urgent_request"  # to staff and on-call dermatologists: a red-flag request
    CHECK_IN_DUE = "check_in_due"  # to the patient: the dermatologist asked to hear back
    PAYMENT_RECEIPT = "payments/receipt"
    PAYMENT_REMINDER = "payments/reminder"  # saved but unpaid: a link to pay
    REFUND_ISSUED = "payments/refund"
    REFUND_REFUSED = "payments/refund_refused"  # to staff: the provider refused a refund


def _fernet() -> Fernet:
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"outbox:" + secret).digest()))


def seal(values: dict) -> str:
    return _fernet().encrypt(json.dumps(values).encode("utf-8")).decode("ascii")


def unseal(sealed: str | None) -> dict:
    if not sealed:
        return {}
    try:
        return json.loads(_fernet().decrypt(sealed.encode("ascii")))
    except InvalidToken:
        return {}


def enqueue(
    recipient: str,
    template: EmailTemplate,
    *,
    language: str = "en",
    context: dict | None = None,
    secret_context: dict | None = None,
    dedupe_key: str | None = None,
    consultation: ConsultationRequest | None = None,
) -> OutboundEmail | None:
    """Queue one email; with a dedupe key, a second call for the same key queues nothing.

    The row is inserted in a savepoint so that losing a race on the unique dedupe key
    (another worker queued it first) leaves the caller's transaction intact.
    """
    if dedupe_key is not None:
        existing = db.session.execute(select(OutboundEmail.id).where(OutboundEmail.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return None
    if consultation is not None and consultation.id is None:
        db.session.flush()
    if not isinstance(template, EmailTemplate):
        raise ValueError(f"unknown email template {template!r}")
    email = OutboundEmail(
        recipient=recipient,
        template=template.value,
        language=language,
        context=context or {},
        sealed_context=seal(secret_context) if secret_context else None,
        dedupe_key=dedupe_key,
        request_id=consultation.id if consultation is not None else None,
        message_id=new_message_id(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(email)
    except IntegrityError:
        return None
    return email


def clinic_mail_domain() -> str:
    """The domain of the clinic's mail: MAIL_DEFAULT_SENDER's, else PUBLIC_BASE_URL's host."""
    _name, address = parseaddr(str(current_app.config.get("MAIL_DEFAULT_SENDER") or ""))
    domain = address.rpartition("@")[2] if "@" in address else ""
    if not domain:
        domain = urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "localhost"
    return domain.encode("idna").decode("ascii").lower()


def new_message_id() -> str:
    """A Message-ID for one email, made once when it is queued: "<random@clinic.example>"."""
    return make_msgid(domain=clinic_mail_domain())


# --- Rendering ------------------------------------------------------------------------------------

HIDDEN_VALUE = "[sent only by email]"


def render(email: OutboundEmail, *, reveal_secrets: bool = True) -> tuple[str, str, str]:
    """(subject, text, html) for a queued email, in the email's language.

    templates/emails/<template>.txt starts with a "Subject: ..." line, taken as the subject and
    dropped from the body. Without reveal_secrets, sealed values (the private link) are replaced
    by a placeholder, for previews shown to staff.
    """
    secrets = resolve(unseal(email.sealed_context))
    if not reveal_secrets:
        secrets = dict.fromkeys(secrets, HIDDEN_VALUE)
    values = {**resolve(email.context or {}), **secrets, "language": email.language or "en"}
    with force_locale(email.language or "en"):
        text = render_template(f"emails/{email.template}.txt", **values)
        html = render_template(f"emails/{email.template}.html", **values)
    first_line, _, body = text.lstrip("\n").partition("\n")
    if not first_line.startswith("Subject:"):
        raise ValueError(f"emails/{email.template}.txt must start with a 'Subject:' line")
    return first_line.removeprefix("Subject:").strip(), body.lstrip("\n"), html


# --- Delivery -------------------------------------------------------------------------------------

# While a worker sends a row it holds a lease on it: next_attempt_at moves this far ahead, so a
# worker that dies mid-send leaves the row to be retried after the lease instead of never.
CLAIM_LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)
DEFAULT_BATCH = 50
# Errors about one message; anything else (refused connection, timeout, disconnect) means the
# server is unreachable, and the rest of the batch waits for the next run.
MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def backoff(attempts: int, base_seconds: int) -> timedelta:
    """Wait after the `attempts`-th failure: `base_seconds` (OUTBOX_BACKOFF_SECONDS) doubled each time,
    at most 6 hours."""
    seconds = base_seconds * 2 ** max(attempts - 1, 0)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def mail_configured() -> bool:
    return bool(current_app.config.get("MAIL_SERVER"))


def deliver(now: datetime | None = None, limit: int = DEFAULT_BATCH) -> dict[str, int]:
    """Send up to `limit` due pending emails; returns counts (sent, retrying, failed, waiting).

    Without MAIL_SERVER configured nothing is sent: the rows stay pending and are listed for staff
    on /staff/ (that is how development works), and `waiting` says how many there are.

    Several workers may run this at once: each row is claimed before it is sent (FOR UPDATE
    SKIP LOCKED on PostgreSQL, a conditional UPDATE on SQLite), so no email goes out twice.
    A failure adds one to attempts, records the SMTP error and retries after backoff(); after
    OUTBOX_MAX_ATTEMPTS the row is marked failed. Sent and failed rows lose their sealed values.
    """
    counts = {SENT: 0, "retrying": 0, FAILED: 0, "waiting": 0}
    if not mail_configured():
        counts["waiting"] = db.session.execute(
            select(func.count(OutboundEmail.id)).where(OutboundEmail.status == PENDING)
        ).scalar_one()
        return counts
    connection: smtplib.SMTP | None = None
    try:
        for _ in range(limit):
            moment = now or utcnow()
            email = _claim_next(moment)
            if email is None:
                break
            try:
                connection, result = _send_claimed(email, moment, connection)
            except _ServerUnreachable as unreachable:
                connection = None
                counts[unreachable.result] += 1
                break  # leave the rest for the next run rather than spend their attempts
            except Exception as error:  # anything unforeseen: this row records it, the round goes on
                _close(connection)
                connection = None
                db.session.rollback()
                log.exception("outbox: email %s could not be sent", email.id)
                counts[_record_failure(email, moment, f"unexpected error: {type(error).__name__}")] += 1
                continue
            counts[result] += 1
    finally:
        _close(connection)
    return counts


def _claim_next(now: datetime) -> OutboundEmail | None:
    """Take one due pending row for this worker (attempts + 1, lease on next_attempt_at) and commit."""
    due = (
        select(OutboundEmail.id)
        .where(OutboundEmail.status == PENDING, OutboundEmail.next_attempt_at <= now)
        .order_by(OutboundEmail.next_attempt_at, OutboundEmail.id)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        candidates = [db.session.execute(due.limit(1).with_for_update(skip_locked=True)).scalar()]
    else:
        candidates = list(db.session.execute(due.limit(10)).scalars())
        db.session.commit()
    for email_id in candidates:
        if email_id is None:
            continue
        # An UPDATE's result is a CursorResult (with rowcount); Session.execute is typed for any statement.
        claimed = cast(
            CursorResult,
            db.session.execute(
                update(OutboundEmail)
                .where(
                    OutboundEmail.id == email_id,
                    OutboundEmail.status == PENDING,
                    OutboundEmail.next_attempt_at <= now,
                )
                .values(attempts=OutboundEmail.attempts + 1, next_attempt_at=now + CLAIM_LEASE)
                .execution_options(synchronize_session=False)
            ),
        )
        db.session.commit()
        if claimed.rowcount == 1:
            email = db.session.get(OutboundEmail, email_id, populate_existing=True)
            return email
    db.session.commit()
    return None


class _ServerUnreachable(Exception):
    """The mail server refused the connection, timed out or hung up; `result` is the row's outcome."""

    def __init__(self, result: str) -> None:
        super().__init__(result)
        self.result = result


NO_SMTPUTF8 = (
    "the address has letters outside A-Z before the @, and the mail server does not accept such "
    "addresses (no SMTPUTF8); ask the patient for another address"
)


def _send_claimed(
    email: OutboundEmail, now: datetime, connection: smtplib.SMTP | None
) -> tuple[smtplib.SMTP | None, str]:
    """Render and send one claimed row; returns the (possibly reopened) connection and the result."""
    try:
        message = _compose(email)
    except Exception as error:  # a broken template must not stop the worker; staff see the row
        return connection, _record_failure(email, now, f"could not render the email: {type(error).__name__}")
    try:
        connection = connection or _open()
        if connection is not None:  # None: Flask-Mail's test mode (MAIL_SUPPRESS_SEND), nothing leaves
            connection.send_message(message, from_addr=_address_of(message["From"]), to_addrs=[_envelope(email)])
    except smtplib.SMTPNotSupportedError:
        return connection, _record_failure(email, now, NO_SMTPUTF8, permanent=True)
    except MESSAGE_ERRORS as error:
        return connection, _record_failure(email, now, _smtp_error_text(error))
    except (smtplib.SMTPException, OSError) as error:
        _close(connection)
        raise _ServerUnreachable(_record_failure(email, now, _smtp_error_text(error))) from error
    email.status = SENT
    email.sent_at = now
    email.sealed_context = None
    email.last_error = None
    db.session.commit()
    return connection, SENT


def _compose(email: OutboundEmail) -> EmailMessage:
    """The email as it goes out, with the Message-ID it was given when queued (kept on every retry)."""
    subject, text, html = render(email)
    if not email.message_id:  # a row queued before Message-IDs were kept: give it one, for good
        email.message_id = new_message_id()
        db.session.commit()
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = subject
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = _envelope(email)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = email.message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _envelope(email: OutboundEmail) -> str:
    """The recipient as the SMTP envelope needs it: an international domain in its ASCII (IDNA) form,
    so that only a non-ASCII part before the @ needs the server's SMTPUTF8."""
    local, _, domain = email.recipient.strip().rpartition("@")
    with contextlib.suppress(UnicodeError):  # not encodable: as it is, with SMTPUTF8 where offered
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def _address_of(header: str) -> str:
    return parseaddr(str(header))[1]


def _record_failure(email: OutboundEmail, now: datetime, error: str, *, permanent: bool = False) -> str:
    """One failed attempt: retry after backoff, or give up after OUTBOX_MAX_ATTEMPTS (shown to staff).

    `permanent`: trying again cannot help (the server cannot take this address): failed at once.
    """
    email.last_error = error[:500]
    if permanent or email.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        email.status = FAILED
        _wipe_secrets(email)
        result = FAILED
    else:
        email.next_attempt_at = now + backoff(email.attempts, current_app.config["OUTBOX_BACKOFF_SECONDS"])
        result = "retrying"
    db.session.commit()
    log.warning("outbox: email %s attempt %s %s", email.id, email.attempts, result)
    return result


def _wipe_secrets(email: OutboundEmail) -> None:
    if email.sealed_context:
        # Remember that a link was removed, so a retry from the dashboard can be explained to staff.
        email.context = {**(email.context or {}), "link_removed": True}
    email.sealed_context = None


def _smtp_error_text(error: Exception) -> str:
    """The server's answer (code and text) without anything from the message itself."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [f"{code} {_decode(reply)}" for code, reply in error.recipients.values()]
        return "recipient refused: " + "; ".join(codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{type(error).__name__}: {error.smtp_code} {_decode(error.smtp_error)}"
    return f"{type(error).__name__}: {error}"


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _open() -> smtplib.SMTP | None:
    """A connection to MAIL_SERVER with a timeout, so a hung mail server cannot stall the worker.

    None in Flask-Mail's test mode (MAIL_SUPPRESS_SEND, the default under TESTING): nothing is sent.
    """
    state = current_app.extensions["mail"]
    if state.suppress:
        return None
    timeout = current_app.config.get("MAIL_TIMEOUT", 10)
    smtp_class = smtplib.SMTP_SSL if state.use_ssl else smtplib.SMTP
    host = smtp_class(state.server, state.port, timeout=timeout)
    try:
        if state.use_tls:
            host.starttls()
        if state.username and state.password:
            host.login(state.username, state.password)
    except (smtplib.SMTPException, OSError):
        host.close()
        raise
    return host


def _close(connection: smtplib.SMTP | None) -> None:
    if connection is None:
        return
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def retry(email_id: int, now: datetime | None = None) -> bool:
    """Staff's "retry now" for a failed row: pending again with a fresh set of attempts."""
    # An UPDATE's result is a CursorResult (with rowcount); Session.execute is typed for any statement.
    result = cast(
        CursorResult,
        db.session.execute(
            update(OutboundEmail)
            .where(OutboundEmail.id == email_id, OutboundEmail.status == FAILED)
            .values(status=PENDING, attempts=0, next_attempt_at=now or utcnow())
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount == 1
