"""The escalation ladder with a rota: at risk -> the holder while on duty, or the dermatologists on
duty; overdue -> staff; still overdue after ESCALATE_AFTER_HOURS -> the medical lead. Each step once
per round (run twice, run by two workers at once); nobody off duty is alerted, except the lead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from app import accounts
from app.consultations import rota
from app.consultations.alerts import check
from app.consultations.audit import Actor
from app.consultations.clock import next_round, stop_clock
from app.extensions import db
from app.models import EscalationStep, OutboundEmail
from app.runtime import policies
from tests.databases import DATABASES, run_together, shared_app
from tests.factories import make_consultation, make_user, use_settings

VILNIUS = ZoneInfo("Europe/Vilnius")
STAFF_ALERTS = "alerts@clinic.example"


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VILNIUS).astimezone(UTC)


# Submitted on Monday 30 November 2026 at 12:00; due on Tuesday at 12:00, at risk from 08:00.
SUBMITTED = local(2026, 11, 30, 12)
AT_RISK = SUBMITTED + timedelta(hours=20)
DUE = SUBMITTED + timedelta(hours=24)


def check_at(moment: datetime) -> dict[str, int]:
    with time_machine.travel(moment, tick=False):
        return check(policies())


def emails() -> list[tuple[str, str]]:
    rows = db.session.execute(select(OutboundEmail.template, OutboundEmail.recipient).order_by(OutboundEmail.id))
    return [(template, recipient) for template, recipient in rows]


@pytest.fixture
def clinic(app):
    """Rūta works weekdays 08:00-16:00, Tomas weekday evenings 16:00-22:00; Jonas is the medical
    lead (a dermatologist with no hours: never on duty); Ieva in staff is also a medical lead."""
    ruta = make_user("dermatologist", email="ruta@clinic.example")
    tomas = make_user("dermatologist", email="tomas@clinic.example")
    jonas = make_user("dermatologist", email="jonas@clinic.example")
    ieva = make_user("staff", email="ieva@clinic.example")
    rota.set_weekly(ruta, rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
    rota.set_weekly(tomas, rota.parse_weekly("Mon-Fri 16:00-22:00"), Actor.system())
    for lead in (jonas, ieva):
        accounts.set_medical_lead(lead, True)
    db.session.commit()
    return ruta, tomas, jonas, ieva


def test_each_step_of_the_ladder_goes_to_its_people_exactly_once(app, clinic):
    make_consultation(created_at=SUBMITTED)
    assert check_at(AT_RISK - timedelta(seconds=1))["emails"] == 0
    # At risk on Tuesday 08:00: Rūta is on duty (Tomas and Jonas are not).
    assert check_at(AT_RISK) == {"at_risk": 1, "overdue": 0, "medical_lead": 0, "emails": 1}
    assert check_at(AT_RISK + timedelta(hours=2)) == {"at_risk": 0, "overdue": 0, "medical_lead": 0, "emails": 0}
    # Overdue at noon: staff.
    assert check_at(DUE) == {"at_risk": 0, "overdue": 1, "medical_lead": 0, "emails": 1}
    assert check_at(DUE + timedelta(hours=4) - timedelta(seconds=1))["emails"] == 0
    # Still overdue four hours later (ESCALATE_AFTER_HOURS): both medical leads, on duty or not.
    assert check_at(DUE + timedelta(hours=4)) == {"at_risk": 0, "overdue": 0, "medical_lead": 1, "emails": 2}
    for hours in (5, 30, 200):
        assert check_at(DUE + timedelta(hours=hours))["emails"] == 0
    assert emails() == [
        ("sla_at_risk", "ruta@clinic.example"),
        ("sla_overdue", STAFF_ALERTS),
        ("sla_escalated", "ieva@clinic.example"),
        ("sla_escalated", "jonas@clinic.example"),
    ]
    steps = db.session.execute(select(EscalationStep.step, EscalationStep.recipients).order_by(EscalationStep.id))
    assert list(steps) == [("at_risk", 1), ("overdue", 1), ("medical_lead", 2)]


def test_escalate_after_hours_is_a_setting(app, monkeypatch, clinic):
    use_settings(app, monkeypatch, ESCALATE_AFTER_HOURS=1)
    make_consultation(created_at=SUBMITTED)
    check_at(DUE)
    assert check_at(DUE + timedelta(minutes=59))["medical_lead"] == 0
    assert check_at(DUE + timedelta(hours=1))["medical_lead"] == 1


def test_the_holder_off_duty_is_not_woken_and_the_colleague_on_duty_is_told(app, clinic):
    ruta, *_ = clinic
    # Submitted Monday 23:00, held by Rūta; at risk Tuesday 19:00, while Tomas is on duty and she is not.
    make_consultation(created_at=local(2026, 11, 30, 23), claimed_by=ruta, status="in_review")
    check_at(local(2026, 12, 1, 19))
    assert emails() == [("sla_at_risk", "tomas@clinic.example")]


def test_the_holder_on_duty_is_the_only_one_told(app, clinic):
    ruta, *_ = clinic
    make_consultation(created_at=SUBMITTED, claimed_by=ruta, status="in_review")
    check_at(AT_RISK)
    assert emails() == [("sla_at_risk", "ruta@clinic.example")]


def test_with_nobody_on_duty_the_at_risk_step_waits_for_the_first_to_come(app, clinic):
    # Submitted Thursday 2 a.m.; at risk Thursday 22:00 (nobody on duty until Friday 08:00), due 02:00.
    make_consultation(created_at=local(2026, 12, 3, 2))
    assert check_at(local(2026, 12, 3, 22)) == {"at_risk": 0, "overdue": 0, "medical_lead": 0, "emails": 0}
    assert check_at(local(2026, 12, 3, 23)) == {"at_risk": 0, "overdue": 0, "medical_lead": 0, "emails": 0}
    assert db.session.execute(select(EscalationStep)).first() is None
    assert emails() == []  # nobody asleep was emailed
    # Overdue at 02:00 with nobody on duty: staff hear of it.
    assert check_at(local(2026, 12, 4, 2))["overdue"] == 1
    assert emails() == [("sla_overdue", STAFF_ALERTS)]


def test_the_at_risk_step_goes_to_whoever_comes_on_duty_while_it_is_still_at_risk(app, clinic):
    # Submitted Monday 11:00; at risk from Tuesday 07:00; Rūta starts at 08:00, due 11:00.
    make_consultation(created_at=local(2026, 11, 30, 11))
    assert check_at(local(2026, 12, 1, 7))["emails"] == 0
    assert check_at(local(2026, 12, 1, 8)) == {"at_risk": 1, "overdue": 0, "medical_lead": 0, "emails": 1}
    assert emails() == [("sla_at_risk", "ruta@clinic.example")]


def test_the_step_is_taken_once_even_when_the_people_on_duty_change(app, clinic):
    # Submitted Monday 19:00; at risk from Tuesday 15:00 (Rūta), Tomas takes over at 16:00; due 19:00.
    make_consultation(created_at=local(2026, 11, 30, 19))
    check_at(local(2026, 12, 1, 15))
    check_at(local(2026, 12, 1, 16, 30))
    assert emails() == [("sla_at_risk", "ruta@clinic.example")]


def test_a_new_round_climbs_the_ladder_again(app, clinic):
    ruta, *_ = clinic
    consultation, _ = make_consultation(created_at=SUBMITTED, claimed_by=ruta, status="in_review")
    check_at(DUE + timedelta(hours=4))  # found late (the worker was down): overdue and the lead together
    stop_clock(consultation, DUE + timedelta(hours=5), ruta)
    next_round(consultation, local(2026, 12, 7, 9), policies().response)  # the patient replied on Monday 09:00
    db.session.commit()
    assert check_at(local(2026, 12, 8, 5))["emails"] == 0  # at risk, but nobody is on duty yet
    assert check_at(local(2026, 12, 8, 8))["at_risk"] == 1  # Rūta, who holds it, starts work
    assert check_at(local(2026, 12, 8, 9))["overdue"] == 1
    steps = db.session.execute(select(EscalationStep.round, EscalationStep.step).order_by(EscalationStep.id))
    assert list(steps) == [(1, "overdue"), (1, "medical_lead"), (2, "at_risk"), (2, "overdue")]
    assert emails()[-2:] == [("sla_at_risk", "ruta@clinic.example"), ("sla_overdue", STAFF_ALERTS)]


@pytest.mark.parametrize("database", DATABASES)
def test_two_workers_at_once_take_each_step_once(tmp_path, database):
    with shared_app(database, tmp_path) as app:
        people = [make_user("dermatologist", email=f"derm{n}@clinic.example") for n in range(3)]
        lead = make_user("staff", email="lead@clinic.example")
        accounts.set_medical_lead(lead, True)
        db.session.commit()
        for person in people[:2]:
            rota.set_weekly(person, rota.parse_weekly("Mon-Sun 00:00-24:00"), Actor.system())
        for _ in range(5):
            make_consultation(created_at=SUBMITTED)  # at risk
        for _ in range(3):
            make_consultation(created_at=SUBMITTED - timedelta(hours=10))  # overdue for 6 hours: staff and the lead
        with time_machine.travel(AT_RISK + timedelta(hours=2), tick=False):
            results = run_together(app, lambda: check(policies()), workers=2)
        assert sum(r["at_risk"] for r in results) == 5
        assert sum(r["overdue"] for r in results) == 3 and sum(r["medical_lead"] for r in results) == 3
        # 5 x the two on duty + 3 x staff + 3 x the lead; derm2 has no hours and hears nothing.
        assert sum(r["emails"] for r in results) == 16
        recipients = db.session.execute(select(OutboundEmail.recipient)).scalars().all()
        assert sorted(set(recipients)) == [
            "alerts@clinic.example",
            "derm0@clinic.example",
            "derm1@clinic.example",
            "lead@clinic.example",
        ]
        assert len(recipients) == len(set(db.session.execute(select(OutboundEmail.dedupe_key)).scalars())) == 16
        assert len(db.session.execute(select(EscalationStep)).scalars().all()) == 11
