"""The outbox: emails are queued in the caller's transaction and delivered later by deliver().

Queueing only writes a row, so a patient's submit or a dermatologist's answer never waits for,
or fails because of, the mail server. `flask mail deliver` / `flask worker` send the rows with
smtplib on Flask-Mail's settings, retrying with exponential backoff; a row that keeps failing ends
`failed` and is shown to staff on /staff/, never dropped.

Every row gets its Message-ID when it is queued, on the clinic's own domain, and keeps it through
every retry: should a worker be killed after the mail server accepted messages but before their rows
were marked sent (at most CLAIM_BATCH of them), the copies sent again after the lease carry the same
Message-IDs, which receiving systems use to drop the duplicates. Addresses with letters outside
ASCII before the @ (josé@…) go out with SMTPUTF8 where the server offers it; where it does not, the
row fails at once with a sentence staff can act on.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import itertools
import json
import logging
import queue
import secrets
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from enum import StrEnum
from typing import Protocol, cast
from urllib.parse import urlsplit

from babel.support import NullTranslations
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, render_template
from flask_babel import force_locale, get_translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy import CursorResult, Integer, Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import UpdateBase

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
    return _fernet_for(current_app.config["SECRET_KEY"])


@functools.lru_cache(maxsize=4)
def _fernet_for(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"outbox:" + secret_key.encode("utf-8")).digest()))


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


class EmailContent(Protocol):
    """What rendering and sending need of an email: a stored row, or the values of a claimed one."""

    @property
    def recipient(self) -> str: ...

    @property
    def template(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def context(self) -> dict: ...

    @property
    def sealed_context(self) -> str | None: ...

    @property
    def message_id(self) -> str | None: ...


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
        values.update(_catalogue_gettext(get_translations()))
        text = render_template(f"emails/{email.template}.txt", **values)
        html = render_template(f"emails/{email.template}.html", **values)
    first_line, _, body = text.lstrip("\n").partition("\n")
    if not first_line.startswith("Subject:"):
        raise ValueError(f"emails/{email.template}.txt must start with a 'Subject:' line")
    return first_line.removeprefix("Subject:").strip(), body.lstrip("\n"), html


@functools.lru_cache(maxsize=8)
def _catalogue_gettext(translations: NullTranslations) -> dict[str, Callable[..., str]]:
    """`gettext` (also as `_`) and `ngettext` for a template, bound to one language's catalogue.

    Flask-Babel installs functions that look the language up again for each string, which was a third
    of rendering an email; these take it from the catalogue at hand (the email's, under force_locale),
    with the rules of Jinja's newstyle gettext: the text is a format string for the keyword values,
    Markup (so the values are escaped) where the template autoescapes. Passed as template values, they
    come before the globals of those names in that template and the ones it extends.
    """

    @pass_context
    def gettext(context: Context, string: str, **variables: object) -> str:
        text = translations.ugettext(string)
        return (Markup(text) if context.eval_ctx.autoescape else text) % variables  # noqa: S704  (our own catalogue, as Jinja's newstyle gettext)  # nosec B704

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, num: int, **variables: object) -> str:
        variables.setdefault("num", num)
        text = translations.ungettext(singular, plural, num)
        return (Markup(text) if context.eval_ctx.autoescape else text) % variables  # noqa: S704  (our own catalogue, as Jinja's newstyle gettext)  # nosec B704

    return {"gettext": gettext, "_": gettext, "ngettext": ngettext}


# --- Delivery -------------------------------------------------------------------------------------

# While a worker sends a row it holds a lease on it: next_attempt_at moves this far ahead, so a
# worker that dies mid-send leaves the row to be retried after the lease instead of never.
CLAIM_LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)
DEFAULT_BATCH = 200  # emails per delivery round (the worker goes again at once after a full one)
# The most emails a worker has sent and not yet marked sent. Rows are claimed a few at a time by one
# statement, and the ones sent are marked in the transaction of the next claim: a worker killed
# outright sends these again after their lease (with the same Message-ID), never none.
CLAIM_BATCH = 10
# Emails rendered and waiting for the sending thread: enough for it never to wait for the worker,
# few enough that most of a claim is fresh rows.
SENDING_QUEUE = 2
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

    A failure is committed at once; sent emails are marked in the transaction of the next claim,
    and a claim takes only as many rows as keep the emails sent but not yet marked within
    CLAIM_BATCH: a worker killed outright may send up to CLAIM_BATCH emails again after their
    lease (with their Message-IDs), never none. While the mail server takes one email, the next
    ones are claimed and rendered (_Courier sends from a thread of its own); when the server
    cannot be reached, the emails not yet tried wait for the next run with their attempts unspent.
    """
    counts = {SENT: 0, "retrying": 0, FAILED: 0, "waiting": 0}
    if not mail_configured():
        counts["waiting"] = db.session.execute(
            select(func.count(OutboundEmail.id)).where(OutboundEmail.status == PENDING)
        ).scalar_one()
        return counts
    sender = _Sender.from_config()
    # MIME boundaries: one random part per round (drawn after every email in it was queued) and a count.
    token = secrets.token_hex(12)
    boundaries = (f"=_{token}.{number}" for number in itertools.count())
    book = _Book(counts)
    courier = _Courier(_MailServer.from_app(), sender.address)
    left = limit
    try:
        while left > 0:
            book.take(courier.done())
            if courier.unreachable:
                break
            size = min(CLAIM_BATCH - courier.in_flight, left)
            if size <= 0:
                book.take(courier.done(wait=True))
                continue
            moment = now or utcnow()
            batch = _claim(moment, size, book)
            if not batch:
                break
            left -= len(batch)
            for index, email in enumerate(batch):
                if index:
                    book.take(courier.done())
                if courier.unreachable:
                    _hand_back(batch[index:], moment, book)
                    break
                message = _prepare(email, sender, moment, book, next(boundaries))
                if message is not None:
                    courier.send(email, moment, message)
    except BaseException:
        db.session.rollback()  # what was not committed; the emails sent so far are marked below
        raise
    finally:
        book.take(courier.finish())
        book.commit()
    return counts


@dataclass(frozen=True)
class Claimed:
    """A claimed row's values, read once by the claim: the commits after it never reload the row."""

    id: int
    recipient: str
    template: str
    language: str
    context: dict
    sealed_context: str | None
    attempts: int  # this attempt included
    message_id: str


def _claim(now: datetime, size: int, book: _Book | None = None) -> list[Claimed]:
    """Take up to `size` due pending rows for this worker (attempts + 1, lease on next_attempt_at), commit.

    One statement (_claim_statement) takes them; the same commit marks the emails sent since the
    last one (`book`), and gives a row queued before Message-IDs were kept its Message-ID, for good.
    """
    if book is not None:
        book.mark_sent()
    statement = _claim_statement(db.session.get_bind().dialect.name == "postgresql")
    rows = db.session.execute(statement, {"now": now, "size": size, "lease_end": now + CLAIM_LEASE}).all()
    claimed = []
    for row in sorted(rows, key=lambda row: row.id):
        message_id = row.message_id
        if not message_id:  # queued before Message-IDs were kept: one now, kept on every retry
            message_id = new_message_id()
            _change([row.id], message_id=message_id)
        claimed.append(
            Claimed(
                row.id, row.recipient, row.template, row.language, row.context, row.sealed_context, row.attempts,
                message_id,
            )
        )  # fmt: skip
    _commit(book)
    return claimed


_OUTBOX = cast(Table, OutboundEmail.__table__)


@functools.cache
def _claim_statement(postgresql: bool) -> UpdateBase:
    """UPDATE the oldest due rows, chosen by a subquery, RETURNING them; built once (parameters: now,
    size, lease_end), as the worker runs it for every few emails.

    On PostgreSQL the subquery locks the rows it picks FOR UPDATE SKIP LOCKED, so two workers never
    wait for each other; SQLite runs the whole statement under its write lock. The outer conditions
    repeat the subquery's, so a row another worker took in the meantime is never taken twice.
    """
    row = _OUTBOX.c
    now = bindparam("now", type_=row.next_attempt_at.type)
    due = (
        select(row.id)
        .where(row.status == PENDING, row.next_attempt_at <= now)
        .order_by(row.next_attempt_at, row.id)
        .limit(bindparam("size", type_=Integer))
    )
    if postgresql:
        due = due.with_for_update(skip_locked=True)
    return (
        update(_OUTBOX)
        .where(row.id.in_(due.scalar_subquery()), row.status == PENDING, row.next_attempt_at <= now)
        .values(attempts=row.attempts + 1, next_attempt_at=bindparam("lease_end", type_=row.next_attempt_at.type))
        .returning(
            row.id, row.recipient, row.template, row.language, row.context, row.sealed_context, row.attempts,
            row.message_id,
        )
    )  # fmt: skip


_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=SENT, sent_at=bindparam("moment", type_=_OUTBOX.c.sent_at.type), sealed_context=None, last_error=None
    )
)
_HAND_BACK = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(attempts=_OUTBOX.c.attempts - 1, next_attempt_at=bindparam("now", type_=_OUTBOX.c.next_attempt_at.type))
)


def _claim_next(now: datetime) -> Claimed | None:
    """Take one due pending row (what a worker does before sending it)."""
    claimed = _claim(now, 1)
    return claimed[0] if claimed else None


class _Book:
    """What became of the emails of one delivery round: the counts, and the emails sent but not yet
    marked so, which go into the next commit (a claim's, a failure's, or the last one)."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.sent: dict[datetime, list[int]] = {}

    def take(self, outcomes: list[tuple[Claimed, datetime, object]]) -> None:
        for email, moment, outcome in outcomes:
            if outcome is None:
                self.sent.setdefault(moment, []).append(email.id)
                self.counts[SENT] += 1
            elif outcome is _NOT_TRIED:
                _hand_back([email], moment, self)
            else:
                error, permanent = _failure_text(cast(BaseException, outcome))
                self.counts[_record_failure(email, moment, error, permanent=permanent, book=self)] += 1

    def mark_sent(self) -> None:
        """Mark the emails sent so far, in the current transaction (one UPDATE per moment)."""
        for moment, ids in self.sent.items():
            db.session.execute(_MARK_SENT, {"ids": ids, "moment": moment})

    def commit(self) -> None:
        self.mark_sent()
        _commit(self)


def _commit(book: _Book | None) -> None:
    db.session.commit()
    if book is not None:
        book.sent.clear()


def _change(ids: list[int], **values: object) -> None:
    """One UPDATE of the given rows, in the current transaction."""
    db.session.execute(update(_OUTBOX).where(_OUTBOX.c.id.in_(ids)).values(**values))


def _hand_back(emails: list[Claimed], now: datetime, book: _Book | None = None) -> None:
    """Release claimed rows that were never tried: their attempt is not spent and they are due again."""
    if emails:
        if book is not None:
            book.mark_sent()
        db.session.execute(_HAND_BACK, {"ids": [email.id for email in emails], "now": now})
        _commit(book)


NO_SMTPUTF8 = (
    "the address has letters outside A-Z before the @, and the mail server does not accept such "
    "addresses (no SMTPUTF8); ask the patient for another address"
)


class _Unexpected(Exception):
    """Anything unforeseen while sending one email: that row records it, the round goes on."""


def _failure_text(error: BaseException) -> tuple[str, bool]:
    """(what staff read, whether trying again cannot help) for an email the server did not take."""
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return NO_SMTPUTF8, True
    if isinstance(error, _Unexpected):
        return f"unexpected error: {error}", False
    return _smtp_error_text(cast(Exception, error)), False


def _prepare(email: Claimed, sender: _Sender, now: datetime, book: _Book, boundary: str) -> EmailMessage | None:
    """The email as it will be sent; None when it cannot be built (the failure is recorded)."""
    permanent = False
    try:
        subject, text, html = render(email)
    except Exception as error:  # a broken template must not stop the worker; staff see the row
        reason = f"could not render the email: {type(error).__name__}"
    else:
        try:
            return _message(email, subject, text, html, sender, boundary)
        except LineBreakInHeader as error:  # never sent as it is, and trying again cannot help
            reason, permanent = f"could not build the email: {error}", True
        except Exception as error:
            reason = f"could not build the email: {type(error).__name__}"
    book.counts[_record_failure(email, now, reason, permanent=permanent, book=book)] += 1
    return None


_NOT_TRIED = object()


class _Courier:
    """Sends prepared emails on one SMTP connection, from a thread of its own, one at a time, so the
    worker claims, renders and records the next emails while the server takes the last one.

    send() hands over a composed email (rendering and the database stay in the calling thread);
    done() returns the outcomes that have come back: None (sent), an exception (refused,
    unforeseen, or the server unreachable), or _NOT_TRIED (queued behind an unreachable server).
    finish() waits for the rest and closes the connection.
    """

    def __init__(self, server: _MailServer, envelope_sender: str) -> None:
        self.server = server
        self.envelope_sender = envelope_sender
        self.unreachable = False
        self.in_flight = 0  # handed over, outcome not yet taken
        self._waiting: queue.Queue = queue.Queue(maxsize=SENDING_QUEUE)
        self._outcomes: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def send(self, email: Claimed, now: datetime, message: EmailMessage) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="outbox-courier", daemon=True)
            self._thread.start()
        self.in_flight += 1
        self._waiting.put((email, now, message))

    def done(self, *, wait: bool = False) -> list[tuple[Claimed, datetime, object]]:
        outcomes = []
        if wait and self.in_flight:
            outcomes.append(self._outcomes.get())
        while True:
            try:
                outcomes.append(self._outcomes.get_nowait())
            except queue.Empty:
                break
        for _email, _now, outcome in outcomes:
            if isinstance(outcome, _Unreachable) or outcome is _NOT_TRIED:
                self.unreachable = True
        self.in_flight -= len(outcomes)
        return [(email, now, _unwrap(outcome)) for email, now, outcome in outcomes]

    def finish(self) -> list[tuple[Claimed, datetime, object]]:
        if self._thread is not None:
            self._waiting.put(None)
            self._thread.join()
            self._thread = None
        return self.done()

    def _run(self) -> None:
        connection: smtplib.SMTP | None = None
        opened = False
        gone = False
        try:
            while (item := self._waiting.get()) is not None:
                email, now, message = item
                if gone:
                    self._outcomes.put((email, now, _NOT_TRIED))
                    continue
                outcome: object = None
                try:
                    if not opened:
                        connection, opened = self.server.connect(), True
                    if connection is not None:  # None: Flask-Mail's test mode (MAIL_SUPPRESS_SEND)
                        connection.send_message(message, from_addr=self.envelope_sender, to_addrs=[_envelope(email)])
                except (smtplib.SMTPNotSupportedError, *MESSAGE_ERRORS) as error:
                    outcome = error  # about this email only: the connection goes on
                except (smtplib.SMTPException, OSError) as error:
                    gone = True
                    outcome = _Unreachable(error)
                except Exception as error:  # the conversation may be half-way: start a new one
                    outcome = _Unexpected(type(error).__name__)
                    _close(connection)
                    connection, opened = None, False
                self._outcomes.put((email, now, outcome))
        finally:
            _close(connection)


class _Unreachable(Exception):
    """The mail server refused the connection, timed out or hung up while sending one email."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _unwrap(outcome: object) -> object:
    return outcome.error if isinstance(outcome, _Unreachable) else outcome


# --- The message as sent ---------------------------------------------------------------------------

CRLF = "\r\n"


@dataclass(frozen=True)
class _Sender:
    """MAIL_DEFAULT_SENDER as the envelope needs it (a bare address) and as the From: header shows it."""

    address: str
    header: str

    @classmethod
    def from_config(cls) -> _Sender:
        configured = str(current_app.config["MAIL_DEFAULT_SENDER"])
        _one_line(configured)
        name, address = parseaddr(configured)
        try:
            header = formataddr((name, address), charset="utf-8") if address else configured
        except UnicodeError:  # an address outside ASCII: written as configured (SMTPUTF8 servers only)
            header = configured
        return cls(address=address, header=header)


def _compose(email: EmailContent, sender: _Sender | None = None) -> EmailMessage:
    """The email as it goes out, with the Message-ID it was given when queued (kept on every retry)."""
    return _message(email, *render(email), sender or _Sender.from_config())


def _message(
    email: EmailContent, subject: str, text: str, html: str, sender: _Sender, boundary: str | None = None
) -> EmailMessage:
    """A rendered email as it goes out: text and HTML alternatives, with the headers every email carries.

    The headers and both parts are written out here, already encoded (a part that is not plain ASCII
    in short lines goes as UTF-8 in base64), and kept in the message as they are: the email
    package's new policy would parse, and its generator re-fold, every header of every part, which
    was most of what delivering an email cost. smtplib's send_message still sends it, with SMTPUTF8
    where an address needs it. A line break in the address or the subject is refused, never sent.
    """
    recipient = _envelope(email)
    message_id = email.message_id or new_message_id()
    for value in (subject, recipient, message_id):
        _one_line(value)
    boundary = boundary or "=_" + secrets.token_hex(16)
    message = _Composed(policy=policy.SMTP)
    for name, value in (
        ("Subject", _encoded_subject(subject)),
        ("From", sender.header),
        ("To", recipient),
        ("Date", formatdate(localtime=True)),
        ("Message-ID", message_id),
        ("Auto-Submitted", "auto-generated"),  # RFC 3834: no out-of-office replies
        ("MIME-Version", "1.0"),
        ("Content-Type", f'{_Composed.CONTENT_TYPE};{CRLF} boundary="{boundary}"'),
    ):
        message.set_raw(name, value)  # as written here: the generator copies it without parsing
    message.set_payload(f"{_part('plain', text, boundary)}{_part('html', html, boundary)}--{boundary}--{CRLF}")
    return message


class _Composed(EmailMessage):
    """An email whose headers and body _compose wrote out already: the generator copies them as they are."""

    CONTENT_TYPE = "multipart/alternative"

    def get_content_type(self) -> str:
        return self.CONTENT_TYPE  # as in its Content-Type header, without parsing that header again


class LineBreakInHeader(ValueError):
    """An address, a subject or a sender with a line break: it could add headers of its own (Bcc: ...)."""


def _one_line(value: str) -> None:
    if "\n" in value or "\r" in value:
        raise LineBreakInHeader("a line break in an address or the subject")


def _encoded_subject(subject: str) -> str:
    if subject.isascii() and len(subject) <= 68:
        return subject
    return Header(subject, "utf-8", header_name="Subject").encode(linesep=CRLF)


def _part(subtype: str, content: str, boundary: str) -> str:
    """One alternative: as it is when plain ASCII in short lines, else UTF-8 in base64; CRLF line ends."""
    lines = content.split("\n")
    if content.isascii() and "\r" not in content and max(len(line) for line in lines) <= 998:
        encoding, body = "7bit", CRLF.join(lines) + CRLF  # the last CRLF belongs to the boundary after it
    else:
        encoding = "base64"
        body = base64.encodebytes(content.encode("utf-8")).decode("ascii").replace("\n", CRLF)
    return (
        f'--{boundary}{CRLF}Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: {encoding}{CRLF}{CRLF}{body}"
    )


def _envelope(email: EmailContent) -> str:
    """The recipient as the SMTP envelope needs it: an international domain in its ASCII (IDNA) form,
    so that only a non-ASCII part before the @ needs the server's SMTPUTF8."""
    local, _, domain = email.recipient.strip().rpartition("@")
    with contextlib.suppress(UnicodeError):  # not encodable: as it is, with SMTPUTF8 where offered
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def _record_failure(
    email: Claimed, now: datetime, error: str, *, permanent: bool = False, book: _Book | None = None
) -> str:
    """One failed attempt, committed at once (with the emails sent so far): retry after backoff, or give
    up after OUTBOX_MAX_ATTEMPTS (shown to staff).

    `permanent`: trying again cannot help (the server cannot take this address): failed at once.
    """
    values: dict[str, object] = {"last_error": error[:500]}
    if permanent or email.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        values.update(status=FAILED, sealed_context=None)
        if email.sealed_context:
            # Remember that a link was removed, so a retry from the dashboard can be explained to staff.
            values["context"] = {**(email.context or {}), "link_removed": True}
        result = FAILED
    else:
        values["next_attempt_at"] = now + backoff(email.attempts, current_app.config["OUTBOX_BACKOFF_SECONDS"])
        result = "retrying"
    if book is not None:
        book.mark_sent()
    _change([email.id], **values)
    _commit(book)
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


@dataclass(frozen=True)
class _MailServer:
    """Where and how to connect, read from the app once, so the sending thread needs no app context."""

    host: str
    port: int
    use_ssl: bool
    use_tls: bool
    username: str | None
    password: str | None
    timeout: float
    suppress: bool  # Flask-Mail's test mode (MAIL_SUPPRESS_SEND, the default under TESTING)

    @classmethod
    def from_app(cls) -> _MailServer:
        state = current_app.extensions["mail"]
        timeout = current_app.config.get("MAIL_TIMEOUT", 10)
        return cls(
            state.server, state.port, state.use_ssl, state.use_tls, state.username, state.password, timeout,
            state.suppress,
        )  # fmt: skip

    def connect(self) -> smtplib.SMTP | None:
        """A connection with a timeout, so a hung mail server cannot stall the worker; None in test mode."""
        if self.suppress:
            return None
        smtp_class = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
        host = smtp_class(self.host, self.port, timeout=self.timeout)
        try:
            if self.use_tls:
                host.starttls()
            if self.username and self.password:
                host.login(self.username, self.password)
        except (smtplib.SMTPException, OSError):
            host.close()
            raise
        return host


def _open() -> smtplib.SMTP | None:
    """A connection to MAIL_SERVER (None in Flask-Mail's test mode: nothing is sent)."""
    return _MailServer.from_app().connect()


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
