"""Sign-in rules: checking a password, counting failures, locking an account for a while,
and the idle and absolute session limits. Plain functions; the views commit."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from app.accounts import find_by_email
from app.models import AuditAction, User
from app.passwords import hash_password, needs_rehash, verify_password
from app.runtime import audit
from app.timeutil import as_utc

MAX_FAILED_LOGINS = 10
LOCKOUT = timedelta(minutes=15)

_dummy_hash: str | None = None


def _spend_hash_time(password: str) -> None:
    """Verify against a throwaway hash so an unknown email takes as long as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("not-a-real-password-used-for-timing")
    verify_password(_dummy_hash, password)


def is_locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and as_utc(user.locked_until) > now


def check_password(email: str, password: str, now: datetime) -> User | None:
    """The user if the email and password match an active, unlocked account, else None.

    Failures are counted per account and audited; the 10th failure in a row locks the
    account for 15 minutes. The caller shows one message for every kind of failure, so
    nobody learns whether an email has an account. A correct password does not reset the
    count: that happens only once every step of signing in has passed (see complete_sign_in),
    so knowing the password does not buy unlimited guesses at the second step.
    """
    user = find_by_email(email)
    if user is None:
        _spend_hash_time(password)
        audit(AuditAction.FAILED_LOGIN, detail="unknown account")
        return None
    if not user.active or is_locked(user, now):
        _spend_hash_time(password)
        audit(AuditAction.FAILED_LOGIN, user=user, detail="inactive" if not user.active else "locked")
        return None
    if not verify_password(user.password_hash, password):
        count_failure(user, now, "wrong password")
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def complete_sign_in(user: User, now: datetime, method: str = "password", language: str | None = None) -> None:
    """Every step passed: clear the failure count, note the time and the language the person reads
    the app in (their alert emails follow it), audit how the user signed in."""
    if language:
        user.language = language
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit(AuditAction.LOGIN, user=user, detail=method)


def count_failure(user: User, now: datetime, detail: str) -> None:
    """One more failed attempt on this account; the 10th in a row locks it for 15 minutes."""
    user.failed_logins = (user.failed_logins or 0) + 1
    if user.failed_logins >= MAX_FAILED_LOGINS:
        user.locked_until = now + LOCKOUT
        user.failed_logins = 0  # the next lock needs another full run of failures
        detail = f"{detail}; locked for 15 minutes"
    audit(AuditAction.FAILED_LOGIN, user=user, detail=detail)


def session_expired(signed_in_at: float | None, last_seen: float | None, now: datetime, settings: dict) -> bool:
    """True when the staff session has been idle too long or is older than its absolute lifetime."""
    if signed_in_at is None or last_seen is None:
        return True
    moment = now.timestamp()
    lifetime = settings["PERMANENT_SESSION_LIFETIME"]
    lifetime = lifetime.total_seconds() if isinstance(lifetime, timedelta) else float(lifetime)
    return moment - last_seen > settings["STAFF_IDLE_TIMEOUT_SECONDS"] or moment - signed_in_at > lifetime


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site (never another host), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    # Browsers drop tabs and newlines inside URLs, so "/\t/evil.example" would become "//evil.example".
    if any(ord(char) < 33 or ord(char) == 127 for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
