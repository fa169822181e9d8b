"""Migrations build the same schema as the models, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, make_url, text

from app import create_app
from app.extensions import db
from app.models import find_by_token, hash_token


@pytest.fixture
def migration_url(tmp_path):
    test_url = os.environ.get("TEST_DATABASE_URL", "")
    if not test_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'migrations.sqlite'}"
        return
    url = make_url(test_url)
    name = f"{url.database}_migrations"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_match_the_models_and_downgrade_cleanly(migration_url, tmp_path):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": migration_url, "UPLOAD_DIR": str(tmp_path)})
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diff == [], f"models changed without a migration: {diff}"
        downgrade(revision="base")
        with db.engine.connect() as connection:
            remaining = set(db.inspect(connection).get_table_names()) - {"alembic_version"}
        assert remaining == set()
        db.engine.dispose()


def test_existing_private_links_survive_the_move_to_one_link_per_email(migration_url, tmp_path):
    """Data migration 2442519264e5: a link issued before the upgrade still opens its request."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": migration_url, "UPLOAD_DIR": str(tmp_path)})
    with app.app_context():
        upgrade(revision="8d06b6e7f0c8")
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO consultation_requests (reference, access_token_hash, status, language, "
                    "patient_name, patient_email, body_sites, symptoms, description, history, created_at, "
                    "updated_at, response_round) VALUES ('DRM-AAAAAA', :hash, 'submitted', 'en', 'A', "
                    "'a@example.com', '[]', '[]', 'd', '[]', :now, :now, 1)"
                ),
                {"hash": hash_token("an-old-private-link-token"), "now": datetime(2026, 11, 1, tzinfo=UTC)},
            )
        upgrade()
        consultation = find_by_token("an-old-private-link-token")
        assert consultation is not None and consultation.reference == "DRM-AAAAAA"
        db.session.remove()
        downgrade(revision="base")
        db.engine.dispose()
