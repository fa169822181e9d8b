"""The "lost your link?" page must not tell who is a patient: the request does the same database work for a
known and an unknown address (statements counted, not timed); the worker does the lookup later."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event, select

from app.cli.worker import run_once
from app.consultations.submission import LINK_REQUEST_MAX_AGE, send_requested_links
from app.extensions import db
from app.models import LinkRequest, OutboundEmail
from app.timeutil import utcnow
from tests.factories import make_consultation

NUMBERS = re.compile(r"\b\d+\b")


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs, with numbers blanked out."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(NUMBERS.sub("?", " ".join(statement.split())))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def ask(client, address: str):
    return client.post("/consultation/link", data={"email": address})


def test_a_known_and_an_unknown_address_do_the_same_database_work(app, client):
    """[F6] The request for a known address did the lookup, new links and the email while the
    visitor waited (10.9 ms against 5.6 ms), so one request told whether someone is a patient."""
    make_consultation(email="known@example.com")
    ask(client, "warm-up@example.com")  # first-request work (caches, the session) out of the way
    with statements() as known:
        known_answer = ask(client, "known@example.com")
    with statements() as unknown:
        unknown_answer = ask(client, "nobody@example.com")
    assert known and known == unknown
    assert not any("consultation_requests" in statement for statement in known)
    assert known_answer.status_code == unknown_answer.status_code == 303
    assert known_answer.headers["Location"] == unknown_answer.headers["Location"]
    # Nothing is looked up or sent yet; the request only left a sealed row for the worker.
    assert db.session.execute(select(OutboundEmail)).scalars().all() == []
    rows = db.session.execute(select(LinkRequest)).scalars().all()
    assert len(rows) == 3 and all("known@example.com" not in row.sealed_email for row in rows)


def test_the_worker_sends_the_links_and_forgets_the_requests(app, client):
    """[F6] The worker's round looks the address up and queues the email, once."""
    make_consultation(email="ona@example.com")
    ask(client, "ONA@example.com")
    ask(client, "nobody@example.com")
    run_once()
    emails = db.session.execute(select(OutboundEmail).where(OutboundEmail.template == "link_resent")).scalars().all()
    assert [email.recipient for email in emails] == ["ona@example.com"]
    assert db.session.execute(select(LinkRequest)).scalars().all() == []
    assert send_requested_links() == {"links": 0}  # each request is handled once


def test_a_request_no_worker_handled_for_a_day_is_dropped(app, client):
    """[F6] The sealed address does not wait for ever if no worker runs."""
    make_consultation(email="late@example.com")
    ask(client, "late@example.com")
    assert send_requested_links(now=utcnow() + LINK_REQUEST_MAX_AGE + timedelta(minutes=1)) == {"links": 0}
    assert db.session.execute(select(LinkRequest)).scalars().all() == []
    assert db.session.execute(select(OutboundEmail)).scalars().all() == []
