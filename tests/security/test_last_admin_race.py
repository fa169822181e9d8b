"""Two admins removing each other at the same moment: the clinic keeps one active admin
(two threads, each with its own database connection, released together)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from app import accounts
from app.extensions import db
from app.models import Role, User
from tests.databases import DATABASES, run_together, shared_app
from tests.factories import make_user


@contextmanager
def both_count_first(app) -> Iterator[None]:
    """Every count of accounts read in Python waits until both requests have read theirs, so the
    race the attack found (both see two admins, both go ahead) happens every time it can."""
    both_counted = threading.Barrier(2)

    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        text = statement.lstrip().lower()
        if text.startswith("select") and "count(" in text and "users" in text:
            with contextlib.suppress(threading.BrokenBarrierError):  # only one counted: nothing to line up
                both_counted.wait(timeout=3)

    event.listen(db.engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(db.engine, "after_cursor_execute", after)


def each_other(app, change: Callable[[User, User], None]) -> list[str]:
    """Admin A changes B while B changes A; returns each outcome ("done" or "refused")."""
    first, second = make_user("admin"), make_user("admin")
    pairs = iter([(first.id, second.id), (second.id, first.id)])
    lock = threading.Lock()

    def act() -> str:
        with lock:
            actor_id, target_id = next(pairs)
        actor, target = db.session.get(User, actor_id), db.session.get(User, target_id)
        try:
            change(target, actor)
        except accounts.AccountError:
            db.session.rollback()
            return "refused"
        db.session.commit()
        return "done"

    with both_count_first(app):
        return sorted(run_together(app, act))


def active_admins() -> int:
    db.session.expire_all()
    return db.session.execute(
        select(func.count(User.id)).where(User.role == Role.ADMIN, User.active.is_(True))
    ).scalar_one()


@pytest.mark.parametrize("database", DATABASES)
def test_two_admins_deactivating_each_other_leave_one_active_admin(tmp_path, database):
    """[F13] Two admins deactivating each other at the same moment left no active admin (3 of 8 tries)."""
    with shared_app(database, tmp_path) as app:
        outcomes = each_other(app, lambda target, by: accounts.deactivate(target, by=by))
        assert outcomes == ["done", "refused"]
        assert active_admins() == 1


@pytest.mark.parametrize("database", DATABASES)
def test_two_admins_demoting_each_other_leave_one_admin(tmp_path, database):
    """[F13] The same race through a role change (admin -> staff)."""
    with shared_app(database, tmp_path) as app:
        outcomes = each_other(app, lambda target, by: accounts.change_role(target, "staff", by=by))
        assert outcomes == ["done", "refused"]
        assert active_admins() == 1


@pytest.mark.parametrize("database", DATABASES)
def test_with_a_third_admin_both_changes_go_through(tmp_path, database):
    """[F13] The rule refuses only what would leave no admin: with a third one, both win."""
    with shared_app(database, tmp_path) as app:
        make_user("admin")
        outcomes = each_other(app, lambda target, by: accounts.deactivate(target, by=by))
        assert outcomes == ["done", "done"]
        assert active_admins() == 1


def test_the_only_admin_is_still_refused_one_at_a_time(app):
    """[F13] The single-request rule is unchanged: the last active admin cannot be removed."""
    admin, derm = make_user("admin"), make_user("dermatologist")
    with pytest.raises(accounts.AccountError, match="only active admin"):
        accounts.deactivate(admin, by=None)
    db.session.rollback()
    with pytest.raises(accounts.AccountError, match="only active admin"):
        accounts.change_role(admin, "staff")
    db.session.rollback()
    accounts.deactivate(derm, by=admin)
    db.session.commit()
    assert db.session.get(User, derm.id).active is False
