"""The weekly summary: last week's figures, emailed to staff and the medical lead every Monday from
08:00 clinic time, exactly once per ISO week: run twice, by two workers at once, and by two real
`flask worker` processes with the clock moved by libfaketime."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app import accounts
from app.consultations import lateness, summary
from app.consultations import staff_actions as actions
from app.consultations.rota import RotaPolicy
from app.extensions import db
from app.models import OutboundEmail
from app.outbox import render
from app.runtime import policies
from tests.databases import DATABASES, run_together, shared_app
from tests.factories import make_consultation, make_user, use_settings

ROOT = Path(__file__).resolve().parent.parent
VILNIUS = ZoneInfo("Europe/Vilnius")
MONDAY_8 = datetime(2026, 11, 30, 8, tzinfo=VILNIUS).astimezone(UTC)


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VILNIUS).astimezone(UTC)


def test_last_week_is_the_iso_week_before_in_clinic_time():
    week = summary.last_week(MONDAY_8, RotaPolicy.default())
    assert (week.key, week.first_day.isoformat()) == ("2026-W48", "2026-11-23")
    assert (week.starts, week.ends, week.send_from) == (local(2026, 11, 23), local(2026, 11, 30), MONDAY_8)
    # Sunday night in Vilnius is still that week (UTC has already moved on to Monday).
    assert summary.last_week(local(2026, 11, 29, 23, 30), RotaPolicy.default()).key == "2026-W47"
    # The week summer time starts has 167 hours; the year's first week can belong to the year before.
    spring = summary.last_week(local(2026, 3, 30, 9), RotaPolicy.default())
    assert (spring.key, (spring.ends - spring.starts) / timedelta(hours=1)) == ("2026-W13", 167)
    assert summary.last_week(local(2027, 1, 4, 9), RotaPolicy.default()).key == "2026-W53"


@pytest.fixture
def week_of_work(app):
    """Week 48 (23-29 November 2026): Rūta met one round and missed one (workload); Tomas met one;
    one request nobody claimed came due on Sunday unanswered. One round each side of the week."""
    ruta = make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta Jonaitė")
    tomas = make_user("dermatologist", email="tomas@clinic.example", name="Dr Tomas Kazlauskas")

    def answered(by, submitted: datetime, after: timedelta, late: str | None = None) -> None:
        consultation, _ = make_consultation(created_at=submitted, claimed_by=by, status="in_review")
        explanation = lateness.explanation(late, "") if late else None
        actions.answer(consultation, by, actions.Answer("a", "b"), submitted + after, late=explanation)

    answered(ruta, local(2026, 11, 23, 10), timedelta(hours=4))
    answered(ruta, local(2026, 11, 24, 10), timedelta(hours=26), late="workload")
    answered(tomas, local(2026, 11, 26, 9), timedelta(hours=2))
    make_consultation(created_at=local(2026, 11, 28, 8), patient_name="Jane Patient")  # due Sunday 08:00
    answered(tomas, local(2026, 11, 20, 9), timedelta(hours=3))  # the week before
    answered(tomas, local(2026, 11, 29, 23), timedelta(hours=2))  # Monday 01:00: this week
    return ruta, tomas


def test_the_figures_of_last_week(app, week_of_work):
    found = summary.figures(summary.last_week(MONDAY_8, policies().rota), MONDAY_8)
    assert (found.met, found.missed, found.share) == (2, 2, 50.0)
    assert (found.first_responses, found.median_hours, found.p90_hours) == (3, 4.0, 26.0)
    assert [(d.name, d.met, d.missed, d.first_responses, d.median_hours) for d in found.by_dermatologist] == [
        ("Dr Rūta Jonaitė", 1, 1, 2, 15.0),
        ("Dr Tomas Kazlauskas", 1, 0, 1, 2.0),
        ("", 0, 1, 0, None),  # not claimed
    ]
    assert found.late_reasons == [("none", 1), ("workload", 1)]
    assert found.ratings is None  # until the clinic collects ratings (see summary.weekly_ratings)


def weekly_emails() -> list[OutboundEmail]:
    query = select(OutboundEmail).where(OutboundEmail.template == "weekly_summary").order_by(OutboundEmail.recipient)
    return list(db.session.execute(query).scalars())


def test_the_summary_goes_out_on_monday_from_eight_once_a_week(app, monkeypatch, week_of_work):
    settings = use_settings(app, monkeypatch, WEEKLY_SUMMARY=True)
    lead = make_user("staff", email="lead@clinic.example")
    accounts.set_medical_lead(lead, True)
    db.session.commit()
    assert summary.send_weekly(settings, MONDAY_8 - timedelta(seconds=1)) == {"weekly": 0}
    assert summary.send_weekly(settings, MONDAY_8) == {"weekly": 2}
    for later in (MONDAY_8 + timedelta(minutes=1), local(2026, 12, 2, 15), local(2026, 12, 6, 23, 59)):
        assert summary.send_weekly(settings, later) == {"weekly": 0}
    emails = weekly_emails()
    assert [(e.recipient, e.dedupe_key) for e in emails] == [
        ("alerts@clinic.example", "weekly:2026-W48:alerts@clinic.example"),
        ("lead@clinic.example", "weekly:2026-W48:lead@clinic.example"),
    ]
    subject, text, html = render(emails[0])
    assert subject == "The week 2026-11-23 to 2026-11-29: 2 rounds met, 2 missed"
    assert "First responses: 3; median 4.0 h, 90th percentile 26.0 h" in text
    assert "Dr Rūta Jonaitė: met 1, missed 1, first responses 2, median 15.0 h" in text
    assert "Workload: 1" in text and "No reason given: 1" in text
    assert "http://localhost/staff/" in text and "http://localhost/staff/" in html
    for private in ("Jane Patient", "patient@example.com", "DRM-"):
        assert private not in text and private not in html
    assert summary.send_weekly(settings, local(2026, 12, 7, 8)) == {"weekly": 2}  # the next Monday: week 49


def test_the_summary_is_off_unless_weekly_summary_is_set(app, week_of_work):
    assert summary.send_weekly(policies(), MONDAY_8) == {"weekly": 0}
    assert weekly_emails() == []


@pytest.mark.parametrize("database", DATABASES)
def test_two_workers_at_once_send_it_once(tmp_path, database):
    with shared_app(
        database, tmp_path, WEEKLY_SUMMARY=True, STAFF_ALERT_EMAILS=["a@clinic.example", "b@clinic.example"]
    ) as app:
        make_consultation(created_at=local(2026, 11, 24, 10))
        results = run_together(app, lambda: summary.send_weekly(policies(), MONDAY_8 + timedelta(minutes=5)), workers=2)
        assert sum(r["weekly"] for r in results) == 2
        assert [e.recipient for e in weekly_emails()] == ["a@clinic.example", "b@clinic.example"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs libfaketime (Debian package faketime)")
def test_two_worker_processes_on_monday_morning_send_it_once(tmp_path):
    database = tmp_path / "clinic.sqlite"
    with shared_app("sqlite-file", tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}"):
        make_user("dermatologist", email="ruta@clinic.example")
        make_consultation(created_at=local(2026, 11, 24, 10))
        db.session.remove()
        env = {
            **os.environ,
            "APP_CONFIG": "development",
            "FLASK_APP": "wsgi:app",
            "DATABASE_URL": f"sqlite:///{database}",
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            "STAFF_ALERT_EMAILS": "desk@clinic.example,lead@clinic.example",
            "WEEKLY_SUMMARY": "true",
            "SECRET_KEY": "weekly-summary-test-secret",
            # libfaketime 0.9.10 also fakes the monotonic clock, which hangs Python's timed waits.
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "TZ": "UTC",
        }
        for name in ("MAIL_SERVER", "TEST_DATABASE_URL"):
            env.pop(name, None)
        moment = (MONDAY_8 + timedelta(minutes=5)).strftime("@%Y-%m-%d %H:%M:%S")  # absolute: holds under CI's faketime
        command = ["faketime", "-f", moment, sys.executable, "-m", "flask", "worker", "--once"]
        workers = [
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)
        ]
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0], outputs
        assert "weekly summaries" in "".join(outputs)
        keys = sorted(e.dedupe_key for e in weekly_emails())
        assert keys == ["weekly:2026-W48:desk@clinic.example", "weekly:2026-W48:lead@clinic.example"]
