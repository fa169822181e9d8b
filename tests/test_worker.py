"""`flask worker`: one round checks the target and delivers mail; a failing step does not stop the
other; logs carry counts only; SIGTERM stops a real worker process gracefully."""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from app.consultations.calendar import ClinicCalendar
from app.consultations.clock import ResponsePolicy
from app.extensions import db
from app.outbox import EmailTemplate, enqueue
from app.runtime import policies
from tests.conftest import build_app, empty_database, reset_database
from tests.factories import make_consultation, make_user
from tests.smtp import MailServer, header

ROOT = Path(__file__).resolve().parent.parent
SUBMITTED_AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def mail_server():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_app(tmp_path, mail_server):
    app = build_app(tmp_path, **mail_server.settings())
    reset_database(app)
    with app.app_context():
        yield app
        db.session.remove()
    empty_database(app)


def test_one_round_queues_the_alerts_and_delivers_them(mail_app, mail_server, caplog):
    make_user("dermatologist", email="ona@clinic.example")
    consultation, _ = make_consultation(created_at=SUBMITTED_AT, patient_name="Jane Doe")
    reference = consultation.reference
    runner = mail_app.test_cli_runner()
    with caplog.at_level(logging.INFO, logger="app"), time_machine.travel(SUBMITTED_AT + timedelta(hours=21)):
        result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert mail_server.recipients() == ["ona@clinic.example"]  # at risk: the dermatologists (on duty: no rota here)
    subject = header(mail_server.messages[0], "Subject")
    assert subject.startswith(f"At risk: {reference} needs a reply by")
    worker_lines = [r.getMessage() for r in caplog.records if r.name == "app.worker"]
    assert (
        "worker: at risk 1, overdue 0, alerts queued 1, check-ins 0; sent 1, retrying 0, failed 0, waiting 0"
        in worker_lines
    )
    logged = caplog.text
    assert "@" not in logged and reference not in logged and "Jane" not in logged


def test_a_failing_check_does_not_stop_delivery(mail_app, mail_server, caplog, monkeypatch):
    # A clinic calendar with no opening hours makes every check fail; mail still goes out. The clock is
    # pinned inside the target, so the check has to ask the (impossible) calendar how much time is left.
    with time_machine.travel(SUBMITTED_AT + timedelta(hours=1)):
        make_consultation(created_at=SUBMITTED_AT)  # an open request for the check to trip on
        # Settings are checked at start-up, so the impossible calendar is handed to the rules directly.
        closed = ClinicCalendar(opening_hour=20, closing_hour=8, holidays_country="LT", zone=ZoneInfo("Europe/Vilnius"))
        broken = dataclasses.replace(policies(), response=ResponsePolicy(24, 4, calendar=closed))
        monkeypatch.setitem(mail_app.extensions, "clinic_policies", broken)
        enqueue(
            "dr@clinic.example",
            EmailTemplate.SLA_OVERDUE,
            context={"reference": "DRM-22TEST", "link": "x", "due_local": "y"},
        )
        db.session.commit()
        with caplog.at_level(logging.INFO, logger="app"):
            result = mail_app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "worker: sla check failed (ValueError); trying again next round" in caplog.text
    assert mail_server.recipients() == ["dr@clinic.example"]


def test_sigterm_stops_a_running_worker_gracefully(tmp_path):
    database = tmp_path / "clinic.sqlite"
    app = build_app(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}")
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    env = {
        **os.environ,
        "APP_CONFIG": "development",
        "FLASK_APP": "wsgi:app",
        "DATABASE_URL": f"sqlite:///{database}",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "SECRET_KEY": "worker-test-secret",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("MAIL_SERVER", None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "worker", "--interval", "3600"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in worker.stderr], daemon=True).start()

    def wait_for(text: str) -> str:
        while True:
            line = lines.get(timeout=60)
            if text in line:
                return line

    try:
        wait_for("worker: started")
        wait_for("worker: at risk 0")  # the first round is done; now it waits an hour
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert wait_for("worker: stopped")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_signal_ends_the_wait_between_rounds_at_once():
    """The handler only flags the stop and writes to a pipe (no lock a waiting main thread could hold)."""
    from app.cli.worker import _stop_on_signals

    before = signal.getsignal(signal.SIGTERM)
    with _stop_on_signals() as stop:
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
        assert stop.wait(600) is True  # a missed signal would wait the whole 600 s and return False
        assert stop.wait(600) is True  # asked once, it stays asked
    assert signal.getsignal(signal.SIGTERM) is before  # the process's own handling is back
