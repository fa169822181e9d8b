"""SQLite stays the embedded default: several processes write to one file without 'database is locked'."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import func, select, text

from app import create_app
from app.extensions import db
from app.models import AuditEvent
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="SQLite-specific behaviour")

WRITERS = 4
WRITES_EACH = 40


def _write_many(database_url: str, upload_dir: str, writer: int) -> None:
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url, "UPLOAD_DIR": upload_dir})
    with app.app_context():
        for number in range(WRITES_EACH):
            db.session.add(AuditEvent(action="viewed", actor_kind="system", detail=f"{writer}:{number}"))
            db.session.commit()


def test_concurrent_writer_processes_all_succeed(tmp_path):
    url = f"sqlite:///{tmp_path / 'clinic.sqlite'}"
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "UPLOAD_DIR": str(tmp_path)})
    with app.app_context():
        db.create_all()
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() >= 15000

    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_many, args=(url, str(tmp_path), writer)) for writer in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * WRITERS

    with app.app_context():
        total = db.session.execute(select(func.count(AuditEvent.id))).scalar()
        distinct = db.session.execute(select(func.count(func.distinct(AuditEvent.detail)))).scalar()
    assert total == distinct == WRITERS * WRITES_EACH
