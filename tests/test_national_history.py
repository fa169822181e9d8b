"""What a national service's history needs: the indexes that keep staff pages and the nightly purge
flat as the history grows (migration e7c4a9f2b1d3), the outbox figures that read only recent rows,
and the bulk loader the benchmarks (and `flask demo seed`) use. Speed itself is measured by
`make bench` (bench/scale.py), never here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask_migrate import upgrade
from sqlalchemy import inspect, select, text

from app import create_app
from app.extensions import db
from app.models import FAILED, PENDING, SENT, ConsultationRequest, OutboundEmail, ResponseClock
from app.outbox import EmailTemplate, enqueue
from app.staff.dashboard import SENT_DAYS, outbox_overview
from bench import national
from tests.conftest import ON_POSTGRES

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
NEW_INDEXES = {
    "photos": {"ix_photos_message_id": ["message_id"]},
    "response_clocks": {"ix_response_clocks_stopped_at": ["stopped_at"]},
    "outbound_emails": {"ix_outbox_status_sent": ["status", "sent_at", "id"]},
    "consultation_requests": {"ix_requests_reference_pattern": ["reference"]},
}


def test_the_migration_adds_the_indexes_and_removes_them_again(tmp_path):
    from flask_migrate import downgrade

    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "UPLOAD_DIR": str(tmp_path)})
    with app.app_context():
        upgrade()
        found = {
            table: {i["name"]: i["column_names"] for i in inspect(db.engine).get_indexes(table)}
            for table in NEW_INDEXES
        }
        for table, indexes in NEW_INDEXES.items():
            for name, columns in indexes.items():
                assert found[table].get(name) == columns, (table, name)
        downgrade(revision="d4b2e1f3a5c6")
        names = {i["name"] for table in NEW_INDEXES for i in inspect(db.engine).get_indexes(table)}
        assert names.isdisjoint(name for indexes in NEW_INDEXES.values() for name in indexes)
        db.engine.dispose()


def _plan(statement) -> str:
    compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
    return " ".join(row[-1] for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))


@pytest.mark.skipif(ON_POSTGRES, reason="reads SQLite's query plans; bench/scale.py shows PostgreSQL's")
def test_the_dashboard_reads_rounds_and_sent_emails_through_their_indexes(app):
    since = T0 - timedelta(days=32)
    rounds = select(ResponseClock.id).where((ResponseClock.due_at >= since) | (ResponseClock.stopped_at >= since))
    assert "ix_response_clocks_stopped_at" in _plan(rounds) and "ix_response_clocks_due_at" in _plan(rounds)
    recent = (
        select(OutboundEmail.id)
        .where(OutboundEmail.status == SENT)
        .order_by(OutboundEmail.sent_at.desc(), OutboundEmail.id.desc())
        .limit(10)
    )
    assert "ix_outbox_status_sent" in _plan(recent)


def _email(status: str, sent_days_ago: float | None = None) -> OutboundEmail:
    email = enqueue(
        "someone@clinic.example", EmailTemplate.SLA_AT_RISK, context={"reference": "DRM-7K3Q9X", "link": "x"}
    )
    email.status = status
    if sent_days_ago is not None:
        email.sent_at = T0 - timedelta(days=sent_days_ago)
    return email


def test_the_outbox_counts_everything_waiting_or_failed_and_what_was_sent_lately(app):
    for days in (0.1, 3, SENT_DAYS - 0.01, SENT_DAYS + 0.01, 400):
        _email(SENT, days)
    _email(PENDING)
    _email(FAILED)
    _email(FAILED)
    db.session.commit()
    with time_machine.travel(T0, tick=False):
        overview = outbox_overview()
    assert overview.counts == {PENDING: 1, FAILED: 2, SENT: 3}
    assert len(overview.sent) == 5  # the latest sent are listed whatever their age


def test_the_dashboard_says_what_the_sent_count_covers(app, client, login_as):
    from tests.factories import make_user

    login_as(make_user("staff"))
    page = client.get("/staff/").get_data(as_text=True)
    assert "Sent in the last 7 days" in page


# --- bench/national.py: the bulk loader ------------------------------------------------------------


def test_the_loader_writes_a_consistent_history(tmp_path):
    url = f"sqlite:///{tmp_path / 'national.sqlite'}"
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "UPLOAD_DIR": str(tmp_path)})
    with app.app_context():
        db.create_all()
    made = national.load(url, 600, now=T0)
    assert made["rows"]["consultation_requests"] == 600
    with app.app_context():
        statuses = dict(
            db.session.execute(
                select(ConsultationRequest.status, db.func.count()).group_by(ConsultationRequest.status)
            ).all()
        )
        assert set(statuses) <= {"submitted", "in_review", "awaiting_patient", "answered", "closed", "withdrawn"}
        assert statuses["answered"] > statuses.get("submitted", 0)
        orphans = db.session.execute(
            text(
                "SELECT COUNT(*) FROM consultation_requests r "
                "WHERE NOT EXISTS (SELECT 1 FROM response_clocks c WHERE c.request_id = r.id)"
            )
        ).scalar_one()
        assert orphans == 0
        open_without_due = db.session.execute(
            select(db.func.count()).where(
                ConsultationRequest.status.in_(["submitted", "in_review"]), ConsultationRequest.due_at.is_(None)
            )
        ).scalar_one()
        assert open_without_due == 0
        db.engine.dispose()


def test_a_smaller_history_is_the_newest_part_of_a_larger_one(tmp_path):
    references = {}
    for size in (50, 200):
        url = f"sqlite:///{tmp_path / f'n{size}.sqlite'}"
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "UPLOAD_DIR": str(tmp_path)})
        with app.app_context():
            db.create_all()
            db.engine.dispose()
        national.load(url, size, now=T0)
        with app.app_context():
            references[size] = dict(
                db.session.execute(select(ConsultationRequest.submission_key, ConsultationRequest.reference)).all()
            )
            db.engine.dispose()
    assert references[50] == {key: references[200][key] for key in references[50]}


def test_the_demo_can_write_its_bulk_rows_with_the_loader(tmp_path):
    """What `flask demo seed --requests N` can call: its own dermatologists, keys and numbering."""
    from tests.factories import make_user

    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "UPLOAD_DIR": str(tmp_path)})
    with app.app_context():
        db.create_all()
        dermatologist = make_user("dermatologist").id
        db.engine.dispose()
    national.load(url, 40, now=T0, dermatologists=[dermatologist], key_format="demo-{:06d}", first_number=17)
    national.load(url, 40, now=T0, dermatologists=[dermatologist], key_format="demo-{:06d}", first_number=57)
    with app.app_context():
        keys = db.session.execute(select(ConsultationRequest.submission_key)).scalars().all()
        holders = set(db.session.execute(select(ConsultationRequest.claimed_by_id)).scalars())
        users = db.session.execute(text("SELECT COUNT(*) FROM users")).scalar_one()
        db.engine.dispose()
    assert sorted(keys) == [f"demo-{number:06d}" for number in range(17, 97)]
    assert holders <= {None, dermatologist} and users == 1
