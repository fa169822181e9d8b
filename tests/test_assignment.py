"""Automatic assignment (AUTO_ASSIGN): new and released requests go to the dermatologist on duty with
the fewest open requests, round robin among equals; with nobody on duty a request waits and goes to
whoever comes on duty first; claiming by hand keeps working; every assignment is audited; two
processes assigning at once give each request exactly once and keep the loads even.
(tests/test_assignment_scale_out.py does the same with real web and worker processes.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from app.consultations import assignment, rota
from app.consultations import staff_actions as actions
from app.consultations.audit import Actor
from app.extensions import db
from app.models import AuditEvent, ConsultationRequest, OutboundEmail
from app.runtime import policies
from tests.databases import DATABASES, run_together, shared_app
from tests.factories import login_as, make_consultation, make_user, submit_request, use_settings

VILNIUS = ZoneInfo("Europe/Vilnius")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VILNIUS).astimezone(UTC)


MONDAY_NOON = local(2026, 11, 30, 12)
MONDAY_NIGHT = local(2026, 11, 30, 23)


def test_the_least_loaded_is_chosen_and_equals_take_turns():
    earlier, later = datetime(2026, 11, 30, 8, tzinfo=UTC), datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert assignment.choose([1, 2, 3], {1: 2, 2: 1, 3: 1}, {2: later, 3: earlier}) == 3
    assert assignment.choose([1, 2, 3], {1: 0, 2: 0, 3: 0}, {1: earlier, 2: later}) == 3  # never given one
    assert assignment.choose([1, 2], {}, {1: later, 2: earlier}) == 2
    assert assignment.choose([], {}, {}) is None


@pytest.fixture
def on(app, monkeypatch):
    """AUTO_ASSIGN on; Rūta and Tomas work weekdays 08:00-16:00, Ieva evenings 16:00-22:00."""
    settings = use_settings(app, monkeypatch, AUTO_ASSIGN=True)
    ruta = make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta")
    tomas = make_user("dermatologist", email="tomas@clinic.example", name="Dr Tomas")
    ieva = make_user("dermatologist", email="ieva@clinic.example", name="Dr Ieva")
    for person, hours in ((ruta, "Mon-Fri 08:00-16:00"), (tomas, "Mon-Fri 08:00-16:00"), (ieva, "Mon-Fri 16:00-22:00")):
        rota.set_weekly(person, rota.parse_weekly(hours), Actor.system())
    return settings, ruta, tomas, ieva


def holder_email(reference: str) -> str | None:
    consultation = db.session.execute(
        select(ConsultationRequest).where(ConsultationRequest.reference == reference)
    ).scalar_one()
    db.session.refresh(consultation)
    return consultation.claimed_by.email if consultation.claimed_by else None


def submitted_reference(client) -> str:
    response = submit_request(client)
    assert response.status_code == 303, response.status_code
    return db.session.execute(
        select(ConsultationRequest.reference).order_by(ConsultationRequest.id.desc()).limit(1)
    ).scalar_one()


def test_a_new_request_goes_to_the_least_loaded_dermatologist_on_duty(app, client, on):
    _settings, ruta, tomas, _ieva = on
    make_consultation(created_at=MONDAY_NOON - timedelta(hours=1), claimed_by=ruta, status="in_review")
    with time_machine.travel(MONDAY_NOON, tick=False):
        first = submitted_reference(client)
        second = submitted_reference(client)
        third = submitted_reference(client)
    # Tomas held nothing; then both hold one and Tomas was given his last more recently than Rūta.
    assert [holder_email(r) for r in (first, second, third)] == [
        "tomas@clinic.example",
        "ruta@clinic.example",
        "tomas@clinic.example",
    ]
    consultation = db.session.execute(
        select(ConsultationRequest).where(ConsultationRequest.reference == first)
    ).scalar_one()
    assert consultation.status == "in_review" and consultation.claimed_at == MONDAY_NOON
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.request_id == consultation.id, AuditEvent.action == "assigned")
    ).scalar_one()
    assert (event.actor_kind, event.detail) == ("system", f"user {tomas.id}")
    mails = db.session.execute(
        select(OutboundEmail.template, OutboundEmail.recipient).where(OutboundEmail.request_id == consultation.id)
    ).all()
    # The patient, the staff alert address, and the one it was given to (not every dermatologist).
    assert sorted(mails) == [
        ("request_assigned", "tomas@clinic.example"),
        ("request_received", "ona.patient@example.com"),
        ("staff_new_request", "alerts@clinic.example"),
    ]


def test_without_auto_assign_nothing_is_assigned_and_those_on_duty_hear_of_new_requests(app, client):
    ruta = make_user("dermatologist", email="ruta@clinic.example")
    make_user("dermatologist", email="night@clinic.example")
    rota.set_weekly(ruta, rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
    with time_machine.travel(MONDAY_NOON, tick=False):
        reference = submitted_reference(client)
        assert assignment.offer_waiting(policies(), MONDAY_NOON) == {"assigned": 0}
    assert holder_email(reference) is None
    recipients = db.session.execute(
        select(OutboundEmail.recipient).where(OutboundEmail.template == "staff_new_request")
    ).scalars()
    assert sorted(recipients) == ["alerts@clinic.example", "ruta@clinic.example"]  # not the one off duty


def test_with_nobody_on_duty_it_waits_and_goes_to_whoever_comes_on_duty_first(app, client, on):
    settings, *_ = on
    with time_machine.travel(MONDAY_NIGHT, tick=False):
        reference = submitted_reference(client)
    assert holder_email(reference) is None
    assert db.session.execute(select(OutboundEmail).where(OutboundEmail.template == "request_assigned")).first() is None
    assert assignment.offer_waiting(settings, local(2026, 12, 1, 7, 59)) == {"assigned": 0}
    with time_machine.travel(local(2026, 12, 1, 8), tick=False):
        assert assignment.offer_waiting(settings, local(2026, 12, 1, 8)) == {"assigned": 1}
        assert assignment.offer_waiting(settings, local(2026, 12, 1, 8)) == {"assigned": 0}
    assert holder_email(reference) in ("ruta@clinic.example", "tomas@clinic.example")


def test_the_worker_round_offers_waiting_requests(app, on):
    reference = make_consultation(created_at=MONDAY_NIGHT)[0].reference
    with time_machine.travel(local(2026, 12, 1, 16, 30), tick=False):  # only Ieva is on duty
        result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert holder_email(reference) == "ieva@clinic.example"


def test_a_released_request_goes_to_a_colleague_on_duty_never_back(app, client, on):
    settings, ruta, tomas, _ieva = on
    consultation, _ = make_consultation(created_at=MONDAY_NOON, claimed_by=ruta, status="in_review")
    with time_machine.travel(MONDAY_NOON + timedelta(minutes=5), tick=False):
        login_as(client, ruta)
        done = client.post(f"/queue/{consultation.reference}/release", follow_redirects=True)
    assert "The request now belongs to Dr Tomas, a colleague on duty." in done.text
    db.session.refresh(consultation)
    assert consultation.claimed_by_id == tomas.id and consultation.declined_by_ids == [ruta.id]
    # Tomas gives it back too: Rūta, the only other one on duty, gave it back already, so it waits.
    with time_machine.travel(local(2026, 11, 30, 15, 55), tick=False):
        assert actions.release(consultation, tomas, local(2026, 11, 30, 15, 55), policies=settings) is None
        assert assignment.offer_waiting(settings, local(2026, 11, 30, 15, 57)) == {"assigned": 0}
    db.session.refresh(consultation)
    assert consultation.claimed_by_id is None and consultation.status == "submitted"
    assert sorted(consultation.declined_by_ids) == sorted([ruta.id, tomas.id])
    with time_machine.travel(local(2026, 11, 30, 16), tick=False):  # Ieva starts
        assert assignment.offer_waiting(settings, local(2026, 11, 30, 16)) == {"assigned": 1}
    db.session.refresh(consultation)
    assert consultation.claimed_by.email == "ieva@clinic.example"


def test_a_hand_claim_wins_and_assignment_never_takes_a_held_request(app, on):
    settings, ruta, tomas, _ieva = on
    consultation, _ = make_consultation(created_at=MONDAY_NIGHT)
    actions.claim(consultation, ruta, MONDAY_NIGHT + timedelta(minutes=1))
    assert assignment.offer(consultation, [tomas], local(2026, 12, 1, 8), settings.alerts) is None
    db.session.refresh(consultation)
    assert consultation.claimed_by_id == ruta.id
    assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "assigned")).first() is None


@pytest.mark.parametrize("database", DATABASES)
def test_two_workers_at_once_give_each_request_once_and_keep_the_loads_even(tmp_path, database):
    with shared_app(database, tmp_path, AUTO_ASSIGN=True) as app:
        people = [make_user("dermatologist", email=f"derm{n}@clinic.example") for n in range(3)]
        for person in people:
            rota.set_weekly(person, rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
        waiting = [make_consultation(created_at=MONDAY_NIGHT + timedelta(minutes=n))[0].id for n in range(30)]
        morning = local(2026, 12, 1, 8)
        with time_machine.travel(morning, tick=False):
            results = run_together(app, lambda: assignment.offer_waiting(policies(), morning), workers=2)
        assert sum(r["assigned"] for r in results) == 30
        assigned = db.session.execute(
            select(AuditEvent.request_id, func.count())
            .where(AuditEvent.action == "assigned")
            .group_by(AuditEvent.request_id)
        ).all()
        assert sorted(assigned) == [(request_id, 1) for request_id in waiting]  # each exactly once
        loads = db.session.execute(
            select(ConsultationRequest.claimed_by_id, func.count()).group_by(ConsultationRequest.claimed_by_id)
        ).all()
        assert sorted(count for _, count in loads) == [10, 10, 10]
        told = db.session.execute(
            select(func.count(OutboundEmail.id)).where(OutboundEmail.template == "request_assigned")
        ).scalar_one()
        assert told == 30
