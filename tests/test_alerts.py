"""At-risk and overdue alerts: who gets them, each exactly once (twice run, two checks at once),
through `flask sla check`, and with the clock moved by libfaketime as an operator would.

No rota is set here, so every active dermatologist counts as on duty (tests/test_escalation.py
has the ladder with a rota and the medical lead)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select

from app.consultations.alerts import check
from app.consultations.clock import next_round, stop_clock
from app.extensions import db
from app.models import OutboundEmail
from app.runtime import policies
from app.timeutil import utcnow
from tests.databases import DATABASES, run_together, shared_app
from tests.factories import make_consultation, make_user

ROOT = Path(__file__).resolve().parent.parent
SUBMITTED_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
WARNING_STARTS = SUBMITTED_AT + timedelta(hours=20)
DUE = SUBMITTED_AT + timedelta(hours=24)
STAFF_ALERTS = "alerts@clinic.example"  # TestingConfig.STAFF_ALERT_EMAILS


def queued(template: str | None = None) -> list[tuple[str, str]]:
    """(template, recipient) of every queued email, sorted."""
    query = select(OutboundEmail.template, OutboundEmail.recipient)
    if template:
        query = query.where(OutboundEmail.template == template)
    return sorted((template, recipient) for template, recipient in db.session.execute(query))


def counts(at_risk: int = 0, overdue: int = 0, lead: int = 0, emails: int = 0) -> dict[str, int]:
    return {"at_risk": at_risk, "overdue": overdue, "medical_lead": lead, "emails": emails}


def check_at(moment: datetime) -> dict[str, int]:
    with time_machine.travel(moment, tick=False):
        return check(policies())


@pytest.fixture
def team(app):
    """Two active dermatologists and one who has left."""
    return (
        make_user("dermatologist", email="ona@clinic.example"),
        make_user("dermatologist", email="jonas@clinic.example"),
        make_user("dermatologist", email="left@clinic.example", active=False),
    )


def test_nothing_is_queued_before_the_warning(app, team):
    make_consultation(created_at=SUBMITTED_AT)
    assert check_at(WARNING_STARTS - timedelta(seconds=1)) == counts()
    assert queued() == []


def test_an_unclaimed_request_at_risk_alerts_every_active_dermatologist_once(app, team):
    consultation, _ = make_consultation(created_at=SUBMITTED_AT)
    assert check_at(WARNING_STARTS) == counts(at_risk=1, emails=2)
    # The first step of the ladder is for dermatologists; staff hear when it is overdue.
    assert queued() == [("sla_at_risk", "jonas@clinic.example"), ("sla_at_risk", "ona@clinic.example")]
    assert check_at(WARNING_STARTS + timedelta(hours=1)) == counts()
    assert len(queued()) == 2
    row = db.session.execute(select(OutboundEmail).where(OutboundEmail.recipient == "ona@clinic.example")).scalar_one()
    assert row.dedupe_key == f"at-risk:{consultation.id}:1:ona@clinic.example"
    assert row.request_id == consultation.id
    # Only the reference and the staff link: nothing about the patient or the skin.
    assert set(row.context) == {"reference", "link", "due_local", "round"}
    assert row.context["due_local"] == "2026-11-25 11:00"  # 09:00 UTC + 24 h, in Vilnius (UTC+2)


def test_a_claimed_request_at_risk_alerts_the_holder_only(app, team):
    ona, _jonas, _left = team
    make_consultation(created_at=SUBMITTED_AT, claimed_by=ona, status="in_review")
    check_at(WARNING_STARTS)
    assert queued() == [("sla_at_risk", "ona@clinic.example")]


def test_overdue_escalates_to_staff_once(app, team):
    make_consultation(created_at=SUBMITTED_AT)
    check_at(WARNING_STARTS)
    assert check_at(DUE - timedelta(seconds=1))["overdue"] == 0
    assert check_at(DUE) == counts(overdue=1, emails=1)
    assert check_at(DUE + timedelta(hours=5)) == counts()  # no medical lead is named: nobody to escalate to
    assert queued("sla_overdue") == [("sla_overdue", STAFF_ALERTS)]


def test_a_request_found_late_gets_only_the_overdue_alert(app, team):
    make_consultation(created_at=SUBMITTED_AT)
    check_at(DUE + timedelta(seconds=1))  # the worker was down during the warning window
    assert queued() == [("sla_overdue", STAFF_ALERTS)]


def test_answered_and_waiting_for_the_patient_requests_raise_no_alert(app, team):
    ona = team[0]
    answered, _ = make_consultation(created_at=SUBMITTED_AT, claimed_by=ona, status="answered")
    stop_clock(answered, SUBMITTED_AT + timedelta(hours=2), ona)
    asked, _ = make_consultation(created_at=SUBMITTED_AT, claimed_by=ona, status="awaiting_patient")
    stop_clock(asked, SUBMITTED_AT + timedelta(hours=3), ona)
    make_consultation(created_at=SUBMITTED_AT, status="withdrawn")
    db.session.commit()
    assert check_at(DUE + timedelta(days=1)) == counts()


def test_a_new_round_after_a_patient_reply_gets_its_own_alerts(app, team):
    ona = team[0]
    consultation, _ = make_consultation(created_at=SUBMITTED_AT, claimed_by=ona, status="in_review")
    check_at(WARNING_STARTS)
    stop_clock(consultation, WARNING_STARTS + timedelta(hours=1), ona)
    replied_at = SUBMITTED_AT + timedelta(days=2)
    next_round(consultation, replied_at, policies().response)
    db.session.commit()
    assert check_at(replied_at + timedelta(hours=20)) == counts(at_risk=1, emails=1)
    keys = db.session.execute(select(OutboundEmail.dedupe_key).order_by(OutboundEmail.id)).scalars().all()
    assert keys == [
        f"at-risk:{consultation.id}:1:ona@clinic.example",
        f"at-risk:{consultation.id}:2:ona@clinic.example",
    ]


def test_flask_sla_check_reports_what_it_queued(app, runner, team):
    make_consultation(created_at=SUBMITTED_AT)
    with time_machine.travel(WARNING_STARTS, tick=False):
        result = runner.invoke(args=["sla", "check"])
        again = runner.invoke(args=["sla", "check"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "at risk: 1 request(s), overdue: 0 request(s), medical lead: 0 request(s), emails queued: 2"
    )
    assert again.output.strip() == (
        "at risk: 0 request(s), overdue: 0 request(s), medical lead: 0 request(s), emails queued: 0"
    )


@pytest.mark.parametrize("database", DATABASES)
def test_two_checks_at_once_queue_each_alert_once(tmp_path, database):
    with shared_app(database, tmp_path) as app:
        for n in range(6):
            make_user("dermatologist", email=f"derm{n}@clinic.example")
        for _ in range(8):
            make_consultation(created_at=SUBMITTED_AT)
        for _ in range(4):
            make_consultation(created_at=SUBMITTED_AT - timedelta(hours=5))  # already overdue
        with time_machine.travel(WARNING_STARTS + timedelta(hours=1), tick=False):
            results = run_together(app, lambda: check(policies()), workers=2)
        # 8 at risk x 6 dermatologists + 4 overdue x staff = 52 alerts, each once.
        assert sum(r["emails"] for r in results) == 52
        assert sum(r["at_risk"] for r in results) == 8 and sum(r["overdue"] for r in results) == 4
        assert len(queued("sla_at_risk")) == 8 * 6 and len(queued("sla_overdue")) == 4
        total, distinct = db.session.execute(
            select(func.count(OutboundEmail.id), func.count(func.distinct(OutboundEmail.dedupe_key)))
        ).one()
        assert total == distinct == 52


# --- Moving the clock with libfaketime, as docs/operations-sla.md shows -----------------------------


def flask_cli(database: Path, *args: str, later: timedelta | None = None) -> subprocess.CompletedProcess:
    """Run the real `flask` CLI in a new process against a SQLite file, optionally under faketime
    `later` than this process's clock (given as an absolute moment, so that it also holds when this
    process itself runs under libfaketime, as CI's pass a year ahead does)."""
    env = {
        **os.environ,
        "APP_CONFIG": "development",
        "FLASK_APP": "wsgi:app",
        "DATABASE_URL": f"sqlite:///{database}",
        "UPLOAD_DIR": str(database.parent / "uploads"),
        "STAFF_ALERT_EMAILS": STAFF_ALERTS,
        "SECRET_KEY": "faketime-test-secret",
    }
    for name in ("MAIL_SERVER", "TEST_DATABASE_URL"):
        env.pop(name, None)
    command = [sys.executable, "-m", "flask", *args]
    if later is not None:
        # libfaketime 0.9.10 also fakes the monotonic clock, which hangs Python's timed waits
        # (a limits timer thread at exit); the wall clock is all the check needs.
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        env["TZ"] = "UTC"
        moment = (utcnow() + later).strftime("@%Y-%m-%d %H:%M:%S")
        command = ["faketime", "-f", moment, *command]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs libfaketime (Debian package faketime)")
def test_faketime_moves_the_clock_for_flask_sla_check(tmp_path):
    database = tmp_path / "clinic.sqlite"
    with shared_app("sqlite-file", tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}") as app:
        assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("clinic.sqlite")
        make_user("dermatologist", email="ona@clinic.example")
        make_consultation(created_at=utcnow())  # submitted just now, for real
        db.session.remove()

        now = flask_cli(database, "sla", "check")
        assert now.returncode == 0, now.stderr
        assert "at risk: 0 request(s), overdue: 0 request(s)" in now.stdout

        tomorrow_morning = flask_cli(database, "sla", "check", later=timedelta(hours=21))
        assert tomorrow_morning.returncode == 0, tomorrow_morning.stderr
        assert "at risk: 1 request(s), overdue: 0 request(s), medical lead: 0 request(s), emails queued: 1" in (
            tomorrow_morning.stdout
        )

        a_day_later = flask_cli(database, "sla", "check", later=timedelta(hours=25))
        assert "at risk: 0 request(s), overdue: 1 request(s), medical lead: 0 request(s), emails queued: 1" in (
            a_day_later.stdout
        )
        assert queued() == [("sla_at_risk", "ona@clinic.example"), ("sla_overdue", STAFF_ALERTS)]
