"""The outbox: emails are queued in the caller's transaction and delivered later by deliver().

Queueing only writes a row, so a patient's submit or a dermatologist's answer never waits for,
or fails because of, the mail server. `flask mail deliver` / `flask worker` send the rows through
Flask-Mail, retrying with exponential backoff; a row that keeps failing ends `failed` and is shown
to staff on /staff/, never dropped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import queue
import secrets
import smtplib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Protocol, cast

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, render_template
from flask_babel import force_locale
from flask_mail import Connection
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.links import resolve
from app.models import FAILED, PENDING, SENT, ConsultationRequest, OutboundEmail
from app.timeutil import utcnow

log = logging.getLogger("app.outbox")


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
    template: str,
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
    email = OutboundEmail(
        recipient=recipient,
        template=template,
        language=language,
        context=context or {},
        sealed_context=seal(secret_context) if secret_context else None,
        dedupe_key=dedupe_key,
        request_id=consultation.id if consultation is not None else None,
    )
    try:
        with db.session.begin_nested():
            db.session.add(email)
    except IntegrityError:
        return None
    return email


# --- Rendering ------------------------------------------------------------------------------------

HIDDEN_VALUE = "[sent only by email]"


class EmailContent(Protocol):
    """What rendering needs of an email: a stored row, or the values of a claimed one."""

    @property
    def template(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def context(self) -> dict: ...

    @property
    def sealed_context(self) -> str | None: ...


def render(email: EmailContent, *, reveal_secrets: bool = True) -> tuple[str, str, str]:
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


# Rows claimed by one statement. A few at a time: the lease of the ones not yet sent runs while the
# first ones go out, and a worker that stops hands back only these.
CLAIM_BATCH = 10


def deliver(now: datetime | None = None, limit: int = DEFAULT_BATCH) -> dict[str, int]:
    """Send up to `limit` due pending emails; returns counts (sent, retrying, failed, waiting).

    Without MAIL_SERVER configured nothing is sent: the rows stay pending and are listed for staff
    on /staff/ (that is how development works), and `waiting` says how many there are.

    Several workers may run this at once: each row is claimed before it is sent (FOR UPDATE
    SKIP LOCKED on PostgreSQL, a conditional UPDATE on SQLite), so no email goes out twice.
    A failure adds one to attempts, records the SMTP error and retries after backoff(); after
    OUTBOX_MAX_ATTEMPTS the row is marked failed. Sent and failed rows lose their sealed values.
    A failure is committed at once; sent emails are marked together with the next claim (one
    commit for a batch), so a worker killed outright may send up to CLAIM_BATCH emails again after
    their lease, never none. While the mail server takes one email, the next is claimed and
    rendered (_Courier); when the server cannot be reached, the emails not yet tried wait for the
    next run with their attempts unspent.
    """
    counts = {SENT: 0, "retrying": 0, FAILED: 0, "waiting": 0}
    if not mail_configured():
        counts["waiting"] = db.session.execute(
            select(func.count(OutboundEmail.id)).where(OutboundEmail.status == PENDING)
        ).scalar_one()
        return counts
    courier = _Courier()
    sent: list[tuple[int, datetime]] = []
    left = limit
    try:
        while left > 0 and not courier.unreachable:
            moment = now or utcnow()
            _mark_sent(sent, commit=False)
            batch = _claim(moment, min(CLAIM_BATCH, left))
            left -= len(batch)
            for index, email in enumerate(batch):
                if courier.unreachable:
                    _hand_back(batch[index:], moment)
                    break
                _take(courier.send(email, moment), counts, sent)
            if not batch:
                break
    finally:
        _take(courier.finish(), counts, sent)
        _mark_sent(sent, commit=True)
    return counts


def _take(outcomes: list[tuple[Claimed, datetime, object]], counts: dict[str, int], sent: list) -> None:
    """Record what became of emails the courier handled: failures at once, sent ones into `sent`."""
    for email, moment, outcome in outcomes:
        if outcome is _NOT_TRIED:
            _hand_back([email], moment)
        elif isinstance(outcome, str):  # decided before sending: a failure already recorded
            counts[outcome] += 1
        elif outcome is None:
            sent.append((email.id, moment))
            counts[SENT] += 1
        else:
            counts[_record_failure(email, moment, _smtp_error_text(cast(Exception, outcome)))] += 1


def _mark_sent(sent: list[tuple[int, datetime]], *, commit: bool) -> None:
    """Mark the emails sent so far (one UPDATE per moment), in the transaction of the next claim or committed."""
    for moment in sorted({moment for _, moment in sent}):
        ids = [email_id for email_id, at in sent if at == moment]
        db.session.execute(
            update(OutboundEmail)
            .where(OutboundEmail.id.in_(ids))
            .values(status=SENT, sent_at=moment, sealed_context=None, last_error=None)
            .execution_options(synchronize_session=False)
        )
    sent.clear()
    if commit:
        db.session.commit()


_NOT_TRIED = object()


class _Courier:
    """Sends prepared emails on one SMTP connection, from a thread of its own, one at a time, so the
    worker claims, renders and records the next emails while the server takes the last one.

    send() prepares an email in the calling thread (rendering and the database stay there) and
    hands it over; it returns the outcomes that have come back meanwhile: None (sent), an
    exception (refused, or the server unreachable), or _NOT_TRIED (queued behind an unreachable
    server). finish() waits for the rest and closes the connection.
    """

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.unreachable = False
        self._waiting: queue.Queue = queue.Queue(maxsize=1)
        self._outcomes: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def send(self, email: Claimed, now: datetime) -> list[tuple[Claimed, datetime, object]]:
        prepared = _prepare(email, now)
        if isinstance(prepared, str):
            return [(email, now, prepared), *self._done()]
        if self.connection is None:
            try:
                self.connection = _open()
            except (smtplib.SMTPException, OSError) as error:
                self.unreachable = True
                return [(email, now, error), *self._done()]
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="outbox-courier", daemon=True)
            self._thread.start()
        self._waiting.put((email, now, prepared))
        return self._done()

    def finish(self) -> list[tuple[Claimed, datetime, object]]:
        if self._thread is not None:
            self._waiting.put(None)
            self._thread.join()
        outcomes = self._done()
        _close(self.connection)
        return outcomes

    def _done(self) -> list[tuple[Claimed, datetime, object]]:
        outcomes = []
        while not self._outcomes.empty():
            outcome = self._outcomes.get()
            if isinstance(outcome[2], Exception) and not isinstance(outcome[2], MESSAGE_ERRORS):
                self.unreachable = True
            outcomes.append(outcome)
        return outcomes

    def _run(self) -> None:
        gone = False
        while (item := self._waiting.get()) is not None:
            email, now, content = item
            if gone:
                self._outcomes.put((email, now, _NOT_TRIED))
                continue
            try:
                host = self.connection.host if self.connection is not None else None
                if host is not None:  # None: Flask-Mail's MAIL_SUPPRESS_SEND (tests), nothing goes out
                    host.sendmail(content.sender, [email.recipient], content.data)
                self._outcomes.put((email, now, None))
            except MESSAGE_ERRORS as error:
                self._outcomes.put((email, now, error))
            except (smtplib.SMTPException, OSError) as error:
                gone = True
                self._outcomes.put((email, now, error))


def _prepare(email: Claimed, now: datetime) -> MimeMessage | str:
    """The email as it will be sent; or, when it cannot be built, the failure recorded (its result)."""
    try:
        subject, text, html = render(email)
    except Exception as error:  # a broken template must not stop the worker; staff see the row
        return _record_failure(email, now, f"could not render the email: {type(error).__name__}")
    try:
        return mime_message(email.recipient, subject, text, html, current_app.config["MAIL_DEFAULT_SENDER"])
    except ValueError as error:  # a line break in an address or subject: never sent as it is
        return _record_failure(email, now, f"could not build the email: {error}")


@dataclass(frozen=True)
class Claimed:
    """A claimed row's values, read once: the commits after each email never reload it."""

    id: int
    recipient: str
    template: str
    language: str
    context: dict
    sealed_context: str | None
    attempts: int  # this attempt included


def _claim(now: datetime, size: int) -> list[Claimed]:
    """Take up to `size` due pending rows for this worker (attempts + 1, lease on next_attempt_at), commit.

    One statement: UPDATE the oldest due rows, chosen by a subquery (FOR UPDATE SKIP LOCKED on
    PostgreSQL, so two workers never wait for each other; SQLite runs the whole statement under its
    write lock), RETURNING them. The outer conditions repeat the subquery's, so a row another worker
    took in the meantime is never taken twice.
    """
    email = OutboundEmail
    due = (
        select(email.id)
        .where(email.status == PENDING, email.next_attempt_at <= now)
        .order_by(email.next_attempt_at, email.id)
        .limit(size)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = db.session.execute(
        update(email)
        .where(email.id.in_(due.scalar_subquery()), email.status == PENDING, email.next_attempt_at <= now)
        .values(attempts=email.attempts + 1, next_attempt_at=now + CLAIM_LEASE)
        .returning(
            email.id, email.recipient, email.template, email.language, email.context, email.sealed_context,
            email.attempts,
        )
        .execution_options(synchronize_session=False)
    ).all()  # fmt: skip
    db.session.commit()
    claimed = [Claimed(*row) for row in rows]
    return sorted(claimed, key=lambda row: row.id)


def _claim_next(now: datetime) -> Claimed | None:
    """Take one due pending row (what a worker does before sending it)."""
    claimed = _claim(now, 1)
    return claimed[0] if claimed else None


def _hand_back(emails: list[Claimed], now: datetime) -> None:
    """Release claimed rows that were never tried: their attempt is not spent and they are due again."""
    if emails:
        _change([email.id for email in emails], attempts=OutboundEmail.attempts - 1, next_attempt_at=now)


def _change(ids: list[int], **values) -> None:
    """One UPDATE of the given rows, committed."""
    db.session.execute(
        update(OutboundEmail)
        .where(OutboundEmail.id.in_(ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


@dataclass(frozen=True)
class MimeMessage:
    sender: str  # the envelope sender, a bare address
    data: bytes


def mime_message(recipient: str, subject: str, text: str, html: str, sender: str) -> MimeMessage:
    """The email as sent: text and HTML alternatives, UTF-8 in base64, with the headers every email carries.

    Written out directly rather than through the email package's generator, which re-folds every
    header of every part and was most of what delivering an email cost the worker; the parts that
    need care (an encoded subject, a display name) still go through the email package.
    """
    for value in (recipient, subject, sender):
        if "\n" in value or "\r" in value:
            raise ValueError("a header holds a line break")
    name, address = parseaddr(sender)
    boundary = "=_" + secrets.token_hex(16)
    headers = [
        "Subject: "
        + (subject if subject.isascii() and len(subject) < 70 else Header(subject, "utf-8").encode(linesep=CRLF)),
        "From: " + formataddr((name, address), charset="utf-8"),
        "To: " + recipient,
        "Date: " + formatdate(usegmt=True),
        "Message-ID: " + make_msgid(domain=address.rpartition("@")[2] or "localhost"),
        "Auto-Submitted: auto-generated",  # RFC 3834: no out-of-office replies
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    parts = [_part("plain", text, boundary), _part("html", html, boundary)]
    data = CRLF.join(headers) + CRLF + CRLF + "".join(parts) + f"--{boundary}--{CRLF}"
    return MimeMessage(sender=address, data=data.encode("ascii"))


CRLF = "\r\n"


def _part(subtype: str, content: str, boundary: str) -> str:
    encoded = base64.encodebytes(content.encode("utf-8")).decode("ascii").replace("\n", CRLF)
    return (
        f'--{boundary}{CRLF}Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{encoded}"
    )


def _record_failure(email: Claimed, now: datetime, error: str) -> str:
    """One failed attempt: retry after backoff, or give up after OUTBOX_MAX_ATTEMPTS (shown to staff)."""
    values: dict = {"last_error": error[:500]}
    if email.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        values.update(status=FAILED, sealed_context=None)
        if email.sealed_context:
            # Remember that a link was removed, so a retry from the dashboard can be explained to staff.
            values["context"] = {**(email.context or {}), "link_removed": True}
        result = FAILED
    else:
        values["next_attempt_at"] = now + backoff(email.attempts, current_app.config["OUTBOX_BACKOFF_SECONDS"])
        result = "retrying"
    _change([email.id], **values)
    log.warning("outbox: email %s attempt %s %s", email.id, email.attempts, result)
    return result


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


def _open() -> Connection:
    """A Flask-Mail connection with a timeout, so a hung mail server cannot stall the worker."""
    state = current_app.extensions["mail"]
    connection = Connection(state)
    if state.suppress:
        return connection  # Flask-Mail's test mode: messages are dispatched to its signal only
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
    connection.host = host
    return connection


def _close(connection: Connection | None) -> None:
    if connection is None or connection.host is None:
        return
    try:
        connection.host.quit()
    except (smtplib.SMTPException, OSError):
        connection.host.close()


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
