"""`flask demo seed --requests N`: the requests after the examples are a made-up history written by
app/demo/history.py (batched INSERTs here on SQLite, COPY on PostgreSQL). Its rows must be what the
app expects: the queue, a request page, a patient's private page, the dashboard and its CSV export
show them, and the retention purge removes the finished ones. Speed is measured by hand (docs/operations.md)."""

from __future__ import annotations

import re
from datetime import timedelta

import psycopg
import pytest
import time_machine
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.consultations import clock
from app.consultations.states import ALL, OPEN, Status
from app.demo import history, store
from app.demo.accounts import DEMO_ACCOUNTS
from app.demo.cases import DEMO_CASES
from app.extensions import db
from app.models import (
    ANSWER,
    QUESTION,
    AuditEvent,
    ConsultationRequest,
    Message,
    OutboundEmail,
    PatientLink,
    Photo,
    ResponseClock,
    User,
)
from app.runtime import policies
from app.timeutil import utcnow
from tests.conftest import app_with

HISTORY = 300  # a little over a day at history.RATE_PER_DAY
TARGET_HOURS = 36  # not the loader's default of 24: the history must take the clinic's own promise
TOTAL = len(DEMO_CASES) + HISTORY
AUDITED = {"claimed", "viewed", "asked", "answered", "patient_replied", "resolved"}


def seed(runner, *args: str) -> str:
    result = runner.invoke(args=["demo", "seed", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def history_requests() -> list[ConsultationRequest]:
    """The requests after the examples, with their clocks and messages."""
    requests = db.session.execute(
        select(ConsultationRequest)
        .options(selectinload(ConsultationRequest.clocks), selectinload(ConsultationRequest.messages))
        .order_by(ConsultationRequest.id)
    ).scalars()
    return [r for r in requests if int(r.submission_key.removeprefix(store.KEY_PREFIX)) > len(DEMO_CASES)]


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def sign_in_as(client, role: str) -> None:
    account = next(a for a in DEMO_ACCOUNTS if a.role == role)
    response = client.post("/login", data={"email": account.email, "password": account.password})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]


@pytest.fixture
def app(tmp_path):
    with app_with(tmp_path, RESPONSE_TARGET_HOURS=TARGET_HOURS) as app:
        yield app


@pytest.fixture
def seeded(app, runner):
    return seed(runner, "--requests", str(TOTAL))


def test_the_history_follows_the_examples_and_says_how_long_it_took(seeded):
    assert re.search(rf"History: {HISTORY} requests written in \d+(\.\d+)? s\.", seeded)
    assert count(ConsultationRequest) == TOTAL
    keys = db.session.execute(select(ConsultationRequest.submission_key)).scalars()
    assert sorted(keys) == [store.submission_key(n) for n in range(1, TOTAL + 1)]
    # The lines about the history carry counts and times, never a patient's data.
    lines = [line for line in seeded.splitlines() if line.startswith("History")]
    names = {r.patient_name for r in history_requests()} | {r.patient_email for r in history_requests()}
    assert lines and not any(name in line for line in lines for name in names)


def test_the_history_rows_are_what_the_actions_would_leave(seeded):
    requests = history_requests()
    dermatologists = set(db.session.execute(select(User.id).where(User.role == "dermatologist")).scalars())
    policy = policies().response
    assert policy.target_hours == TARGET_HOURS
    statuses = {r.status for r in requests}
    assert statuses <= {status.value for status in ALL}
    assert {Status.SUBMITTED, Status.IN_REVIEW, Status.ANSWERED} <= statuses, "a day of history: open and answered"
    assert len({r.reference for r in requests}) == len(requests)
    for request in requests:
        clocks = sorted(request.clocks, key=lambda c: c.round)
        assert [c.round for c in clocks] == list(range(1, request.response_round + 1)), request
        for c in clocks:
            assert c.due_at == clock.due_time(c.started_at, policy), "the clinic's own due times"
            assert c.stopped_at is None or (c.stopped_by_id in dermatologists and c.started_at <= c.stopped_at)
        current = clocks[-1]
        if request.status in OPEN:
            assert current.stopped_at is None and request.due_at == current.due_at, request
        else:
            assert request.due_at is None and request.clock_started_at is None, request
        if request.status == Status.WITHDRAWN:
            assert current.stopped_at is None, "a withdrawal cancels the round, as conversation.withdraw does"
        if request.status != Status.SUBMITTED:
            assert request.claimed_by_id in dermatologists, request
        kinds = [m.kind for m in sorted(request.messages, key=lambda m: m.created_at)]
        if request.status == Status.ANSWERED:
            assert kinds[-1] == ANSWER and request.answered_at is not None
        if request.status == Status.AWAITING_PATIENT:
            assert kinds[-1] == QUESTION
        assert request.first_response_at == clocks[0].stopped_at
        assert request.created_at <= request.updated_at <= utcnow()
        assert request.consent_version == policies_consent(), "the consent the form asks for"
    ids = [r.id for r in requests]
    actions = set(db.session.execute(select(AuditEvent.action).where(AuditEvent.request_id.in_(ids))).scalars())
    assert {"claimed", "answered"} <= actions <= AUDITED


def policies_consent() -> str:
    from flask import current_app

    return current_app.config["CONSENT_VERSION"]


def test_the_history_emails_nobody_and_has_no_photos_without_files(seeded):
    assert count(OutboundEmail) == 0
    history_ids = [r.id for r in history_requests()]
    photos = db.session.execute(select(func.count()).where(Photo.request_id.in_(history_ids))).scalar_one()
    assert photos == 0


def test_running_again_adds_nothing_and_a_larger_n_adds_the_older_requests(app, runner, seeded):
    before = [count(model) for model in (ConsultationRequest, ResponseClock, Message, PatientLink, AuditEvent)]

    output = seed(runner, "--requests", str(TOTAL))

    assert "Created by this run: 0" in output and "History" not in output
    assert [count(m) for m in (ConsultationRequest, ResponseClock, Message, PatientLink, AuditEvent)] == before
    newest = max(r.created_at for r in history_requests())

    output = seed(runner, "--requests", str(TOTAL + 100))

    assert "History: 100 requests written" in output and "Created by this run: 100" in output
    requests = history_requests()
    assert len(requests) == HISTORY + 100 and len({r.reference for r in requests}) == HISTORY + 100
    added = [r for r in requests if int(r.submission_key.removeprefix(store.KEY_PREFIX)) > TOTAL]
    assert min(r.created_at for r in added) < newest, "numbers after the first history are older"


def test_reset_removes_the_history_too(app, runner, seeded):
    seed(runner, "--reset")

    assert count(ConsultationRequest) == len(DEMO_CASES) and not history_requests()
    for model in (Message, ResponseClock, PatientLink, AuditEvent):
        orphans = db.session.execute(
            select(func.count()).where(model.request_id.not_in(select(ConsultationRequest.id)))
        ).scalar_one()
        assert orphans == 0, model


def test_staff_pages_show_the_history(app, client, seeded):
    requests = history_requests()
    sign_in_as(client, "dermatologist")
    for name in ("open", "unclaimed", "mine", "awaiting", "answered"):
        response = client.get(f"/queue/?filter={name}")
        assert response.status_code == 200, name
    assert client.get("/queue/?filter=answered&page=3").status_code == 200
    page = client.get("/queue/?filter=answered").get_data(as_text=True)
    answered = [r.reference for r in requests if r.status == Status.ANSWERED]
    assert any(reference in page for reference in answered)
    for status in (Status.SUBMITTED, Status.IN_REVIEW, Status.ANSWERED, Status.CLOSED, Status.WITHDRAWN):
        found = next((r for r in requests if r.status == status), None)
        if found is None:
            continue
        page = client.get(f"/queue/{found.reference}")
        assert page.status_code == 200, status
        assert found.reference in page.get_data(as_text=True)
    answered_one = next(r for r in requests if r.status == Status.ANSWERED)
    letter = client.get(f"/queue/{answered_one.reference}/letter.pdf")
    assert letter.status_code == 200 and letter.data.startswith(b"%PDF")

    staff = app.test_client()
    sign_in_as(staff, "staff")
    assert staff.get("/staff/").status_code == 200
    export = staff.get("/staff/export.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert len(export.get_data(as_text=True).splitlines()) > 1


def test_a_history_patient_opens_their_private_page(app, client, seeded):
    answered = next(r for r in history_requests() if r.status == Status.ANSWERED)

    page = client.get(f"/c/{store.demo_token(answered.submission_key)}")

    assert page.status_code == 200 and answered.reference in page.get_data(as_text=True)


def test_the_retention_purge_removes_the_finished_history_and_keeps_the_open_one(app, runner, seeded):
    requests = history_requests()
    finished = {r.reference for r in requests if r.status in (Status.ANSWERED, Status.CLOSED, Status.WITHDRAWN)}
    open_ones = {r.reference for r in requests if r.status in OPEN or r.status == Status.AWAITING_PATIENT}
    assert finished and open_ones
    examples = purged_examples()
    days = app.config["RETENTION_DAYS"]
    db.session.remove()

    with time_machine.travel(utcnow() + timedelta(days=days + 15), tick=False):
        result = runner.invoke(args=["retention", "purge"])

    assert result.exit_code == 0, result.output + repr(result.exception)
    assert re.search(r"Purged (\d+) request", result.output).group(1) == str(len(finished) + examples)
    left = set(db.session.execute(select(ConsultationRequest.reference)).scalars())
    assert not finished & left and open_ones <= left
    for model in (Message, ResponseClock, PatientLink):
        orphans = db.session.execute(
            select(func.count()).where(model.request_id.not_in(select(ConsultationRequest.id)))
        ).scalar_one()
        assert orphans == 0, model


def purged_examples() -> int:
    """The examples the purge takes as well (answered or closed ones)."""
    return sum(
        1
        for r in db.session.execute(select(ConsultationRequest)).scalars()
        if r.status in (Status.ANSWERED, Status.CLOSED, Status.WITHDRAWN)
        and int(r.submission_key.removeprefix(store.KEY_PREFIX)) <= len(DEMO_CASES)
    )


def test_the_loader_refuses_numbers_already_written_and_writes_nothing(app):
    from tests.factories import make_user

    dermatologist = make_user("dermatologist").id
    plan = history.Plan(now=utcnow(), dermatologists=[dermatologist], key_format=store.KEY_FORMAT)
    history.load(db.session.connection(), range(100, 140), plan)
    db.session.commit()

    # IntegrityError from SQLAlchemy's inserts; psycopg's own error from COPY on PostgreSQL.
    with pytest.raises((IntegrityError, psycopg.errors.UniqueViolation), match=r"(?i)unique"):
        history.load(db.session.connection(), range(130, 170), plan)
    db.session.rollback()

    assert count(ConsultationRequest) == 40
