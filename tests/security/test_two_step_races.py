"""The same authenticator code or recovery code in two requests at the same moment: exactly one
passes (two threads, each with its own database connection, released together)."""

from __future__ import annotations

import base64
import secrets
import threading
from datetime import UTC, datetime

import pyotp
import pytest
import time_machine

from app.auth import totp
from app.extensions import db
from app.models import User
from tests.databases import DATABASES, run_together, shared_app
from tests.factories import make_user

NOW = datetime(2026, 11, 2, 9, 0, 10, tzinfo=UTC)


def two_step_user() -> tuple[int, str, list[str]]:
    """A dermatologist with an authenticator app and recovery codes; returns (id, secret, codes)."""
    user = make_user("dermatologist")
    secret = base64.b32encode(secrets.token_bytes(totp.SECRET_BYTES)).decode("ascii")
    user.totp_secret = totp.seal_secret(secret, user.id)
    user.totp_enabled_at = NOW
    codes = totp.new_recovery_codes(user)
    db.session.commit()
    return user.id, secret, codes


def same_code_twice(app, user_id: int, code: str) -> list[str | None]:
    """Two sign-ins with `code`: each loads the account (as each request does) before either checks the code."""
    both_loaded = threading.Barrier(2)

    def second_step() -> str | None:
        user = db.session.get(User, user_id)
        assert user is not None
        _ = (user.totp_last_step, user.recovery_code_hashes)  # what the request has read
        both_loaded.wait(timeout=30)
        method = totp.verify_second_factor(user, code, NOW)
        db.session.commit()
        return method

    with time_machine.travel(NOW, tick=False):
        return run_together(app, second_step)


@pytest.mark.parametrize("database", DATABASES)
def test_an_authenticator_code_sent_twice_at_once_signs_in_once(tmp_path, database):
    """[F5] Two requests with the same code both passed: "last used step" was read, then written."""
    with shared_app(database, tmp_path) as app:
        user_id, secret, _ = two_step_user()
        results = same_code_twice(app, user_id, pyotp.TOTP(secret).at(NOW))
        assert sorted(results, key=str) == [None, totp.AUTHENTICATOR]
        db.session.expire_all()
        assert db.session.get(User, user_id).totp_last_step == pyotp.TOTP(secret).timecode(NOW)


@pytest.mark.parametrize("database", DATABASES)
def test_a_recovery_code_sent_twice_at_once_signs_in_once(tmp_path, database):
    """[F5] A recovery code worked twice when two requests carried it at the same moment."""
    with shared_app(database, tmp_path) as app:
        user_id, _, codes = two_step_user()
        results = same_code_twice(app, user_id, codes[0])
        assert sorted(results, key=str) == [None, totp.RECOVERY_CODE]
        db.session.expire_all()
        assert totp.recovery_codes_left(db.session.get(User, user_id)) == len(codes) - 1


@pytest.mark.parametrize("database", DATABASES)
def test_two_different_recovery_codes_at_once_both_work_and_both_are_used_up(tmp_path, database):
    """[F5] Two people never share an account, but one may press twice with two codes: neither code
    may come back (each request writes the list without its own code only)."""
    with shared_app(database, tmp_path) as app:
        user_id, _, codes = two_step_user()
        both_loaded = threading.Barrier(2)
        turn = iter(codes[:2])
        lock = threading.Lock()

        def second_step() -> str | None:
            with lock:
                code = next(turn)
            user = db.session.get(User, user_id)
            _ = user.recovery_code_hashes
            both_loaded.wait(timeout=30)
            method = totp.verify_second_factor(user, code, NOW)
            db.session.commit()
            return method

        with time_machine.travel(NOW, tick=False):
            assert run_together(app, second_step) == [totp.RECOVERY_CODE, totp.RECOVERY_CODE]
        db.session.expire_all()
        user = db.session.get(User, user_id)
        assert totp.recovery_codes_left(user) == len(codes) - 2
        for used in codes[:2]:
            with time_machine.travel(NOW, tick=False):
                assert totp.verify_second_factor(user, used, NOW) is None
            db.session.rollback()
