"""Shared fixtures: the app/client/runner trio, a fresh database per test, and user helpers.

On SQLite each test gets its own in-memory database. With TEST_DATABASE_URL (PostgreSQL in CI)
the schema is created once and every table is emptied after each test; under pytest-xdist each
worker process gets a database of its own, named after the configured one.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager

import flask_babel
import pytest
from flask import Flask, g, request_started
from sqlalchemy import create_engine, make_url, text

from app import create_app
from app.extensions import db
from tests.factories import login_as as _login_as

ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


def _database_of_this_worker() -> None:
    """Point TEST_DATABASE_URL at `<name>_gw0`, `<name>_gw1`… under xdist, creating it if needed:
    tests empty every table after themselves, so two processes cannot share one database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not (ON_POSTGRES and worker):
        return
    url = make_url(os.environ["TEST_DATABASE_URL"])
    name = f"{url.database}_{worker}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first() is None:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    os.environ["TEST_DATABASE_URL"] = url.set(database=name).render_as_string(hide_password=False)


_database_of_this_worker()

if "faketime" in os.environ.get("LD_PRELOAD", ""):
    # CI runs the suite a year ahead under libfaketime. Its 0.9.10 answers EINVAL to the absolute
    # clock_nanosleep that Python's time.sleep (and so Popen.wait with a timeout) uses; select()
    # waits the same time without that call. The app itself never sleeps (the worker waits on an Event).
    def _sleep_without_clock_nanosleep(seconds: float) -> None:
        select.select([], [], [], max(0.0, seconds))

    time.sleep = _sleep_without_clock_nanosleep
_schema_ready = False


def build_app(tmp_path, **overrides):
    """A testing app with its own upload folder; overrides go on top of TestingConfig."""
    settings = {"UPLOAD_DIR": str(tmp_path / "uploads")}
    settings.update(overrides)
    app = create_app("testing", settings)
    request_started.connect(_fresh_request_globals, app)
    return app


def _fresh_request_globals(sender, **extra) -> None:
    """Give each request fresh per-request values on `g`, as in production.

    Tests keep one app context (so one `g`) open for a whole test, and Flask-Login caches the
    signed-in user on `g` (Flask-WTF its CSRF token, Flask-Babel the reader's language too).
    Without this, a second test client would act as the first one's user, a token issued before
    sign-in would outlive the session, and a page asked for in Lithuanian would come in English.
    """
    g.pop("_login_user", None)
    g.pop("csrf_token", None)
    flask_babel.refresh()


def reset_database(app) -> None:
    """Create the schema (once on PostgreSQL, each time on an in-memory SQLite)."""
    global _schema_ready
    with app.app_context():
        if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
            if not _schema_ready:
                db.drop_all()
                db.create_all()
                _schema_ready = True
        else:
            db.create_all()


def empty_database(app) -> None:
    with app.app_context():
        db.session.remove()
        if db.engine.dialect.name == "postgresql":
            tables = ", ".join(t.name for t in db.metadata.sorted_tables)
            with db.engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()


@contextmanager
def app_with(tmp_path, **overrides) -> Iterator[Flask]:
    """A testing app (inside its context, on a fresh database) with `overrides` on top of TestingConfig,
    e.g. CSRF or rate limits on; its tables are emptied afterwards."""
    app = build_app(tmp_path, **overrides)
    reset_database(app)
    try:
        with app.app_context():
            yield app
            db.session.remove()
    finally:
        empty_database(app)


@pytest.fixture
def app(tmp_path):
    with app_with(tmp_path) as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def login_as(client):
    """login_as(user) signs the test client in as that staff member."""

    def sign_in(user):
        return _login_as(client, user)

    return sign_in
