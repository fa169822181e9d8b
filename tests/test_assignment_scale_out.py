"""Automatic assignment with the real processes: two gunicorn servers (two workers each) and two
`flask worker`s on one database, AUTO_ASSIGN on, as tests/test_scale_out.py sets them up.

Patients send requests at once through both servers while nobody is on duty: they all wait. Then
both dermatologists come on duty (`flask rota extra`) and the two workers race to offer the waiting
requests; then more requests arrive, which the web processes assign as they come while the workers
keep looking. Every request must be given exactly once (one audit row, one email to the one who got
it), and the loads must stay even.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import AuditEvent, ConsultationRequest, OutboundEmail, User
from app.timeutil import utcnow
from tests.smtp import MailServer
from tests.test_scale_out import (
    DERMATOLOGISTS,
    POLL_PAUSE,
    RUN,
    UNDER_FAKETIME,
    Browser,
    Service,
    dedicated_database,
    environment,
    prepare_database,
    run_flask,
    send_consultation,
    start_processes,
)

REQUESTS = 24  # per wave; even, so that two dermatologists end with equal loads
CLIENTS = 8
ATTEMPTS = 300  # polls of POLL_PAUSE while the workers assign


def send_wave(servers: list[str], first: int) -> list[str]:
    def client(slot: int) -> list[str]:
        browser = Browser(servers, f"fd00:{RUN[:4]}:{RUN[4:]}::a{first + slot:x}")
        numbers = range(first + slot, first + REQUESTS, CLIENTS)
        return [send_consultation(browser, number).reference for number in numbers]

    with ThreadPoolExecutor(CLIENTS) as pool:
        return [reference for batch in pool.map(client, range(CLIENTS)) for reference in batch]


def holders(inspector, references: list[str]) -> dict[str, int | None]:
    with inspector.app_context():
        rows = db.session.execute(
            select(ConsultationRequest.reference, ConsultationRequest.claimed_by_id).where(
                ConsultationRequest.reference.in_(references)
            )
        ).all()
        db.session.remove()
    return dict(rows)


def wait_until_all_assigned(inspector, references: list[str], workers: list[Service]) -> dict[str, int | None]:
    for _ in range(ATTEMPTS):
        for worker in workers:
            worker.ensure_running()
        found = holders(inspector, references)
        if all(found.values()):
            return found
        time.sleep(POLL_PAUSE)  # polling, bounded by ATTEMPTS
    raise AssertionError(f"still unassigned: {[r for r, h in found.items() if h is None]}")


@pytest.mark.slow
def test_two_web_processes_and_two_workers_give_each_request_once_and_evenly(tmp_path):
    if UNDER_FAKETIME:
        pytest.skip("the gunicorn cluster cannot share a clock moved by libfaketime")
    mail = MailServer().start()
    services: list[Service] = []
    try:
        with dedicated_database(tmp_path) as database_url:
            env = {**environment(database_url, tmp_path / "uploads", mail), "AUTO_ASSIGN": "true"}
            inspector = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url, "UPLOAD_DIR": str(tmp_path)})
            prepare_database(env)  # migrations, then the two dermatologists' accounts
            today = utcnow().date()
            # The rota is in use, but nobody is on duty now: each has one extra shift a month away.
            later = (today + timedelta(days=30)).isoformat()
            run_flask(
                env, *(("rota", "extra", "--email", e, "--from", later, "--to", later) for e, _ in DERMATOLOGISTS)
            )
            try:
                servers = start_processes(env, tmp_path, services)
                workers = services[2:]
                first_wave = send_wave(servers, 0)
                assert len(set(first_wave)) == REQUESTS
                assert set(holders(inspector, first_wave).values()) == {None}, "assigned with nobody on duty"

                # Both come on duty (yesterday to tomorrow): the two workers offer what waits.
                shift = (
                    "--from",
                    (today - timedelta(days=1)).isoformat(),
                    "--to",
                    (today + timedelta(days=1)).isoformat(),
                )
                run_flask(env, *(("rota", "extra", "--email", e, *shift) for e, _ in DERMATOLOGISTS))
                wait_until_all_assigned(inspector, first_wave, workers)

                second_wave = send_wave(servers, REQUESTS)  # assigned by the web processes as they arrive
                found = wait_until_all_assigned(inspector, first_wave + second_wave, workers)
            finally:
                for service in services:
                    service.stop()
            by_worker = [
                sum(int(n) for n in re.findall(r"worker: assigned (\d+),", w.log_text())) for w in services[2:]
            ]
            print(
                f"\nassignment: the two workers assigned {by_worker} of the first {REQUESTS} (the rest: web processes)"
            )
            with inspector.app_context():
                assigned = Counter(
                    db.session.execute(
                        select(ConsultationRequest.reference)
                        .join(AuditEvent, AuditEvent.request_id == ConsultationRequest.id)
                        .where(AuditEvent.action == "assigned")
                    ).scalars()
                )
                told = Counter(
                    db.session.execute(
                        select(ConsultationRequest.reference)
                        .join(OutboundEmail, OutboundEmail.request_id == ConsultationRequest.id)
                        .where(OutboundEmail.template == "request_assigned")
                    ).scalars()
                )
                emails = {u.id: u.email for u in db.session.execute(select(User)).scalars()}
                derm_new_request_alerts = db.session.execute(
                    select(func.count(OutboundEmail.id)).where(
                        OutboundEmail.template == "staff_new_request",
                        OutboundEmail.recipient.in_([e for e, _ in DERMATOLOGISTS]),
                    )
                ).scalar_one()
                db.session.remove()
                db.engine.dispose()
    finally:
        mail.stop()
    everything = first_wave + second_wave
    assert assigned == Counter(dict.fromkeys(everything, 1)), "a request was assigned twice, or never"
    assert told == Counter(dict.fromkeys(everything, 1)), "an assignment email is missing or doubled"
    loads = Counter(emails[holder] for holder in found.values() if holder is not None)
    assert sorted(loads.values()) == [REQUESTS, REQUESTS], loads
    assert derm_new_request_alerts == 0  # with AUTO_ASSIGN only the one given the request is told
