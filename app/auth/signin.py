"""Sign-in rules: checking a password, counting failures, pausing sign-in for a while,
and the idle and absolute session limits. Plain functions; the views commit.

Failures are counted per account *and* address: ten in a row from one address pause signing in
to that account from that address for 15 minutes. A stranger who knows a dermatologist's email
can therefore lock out only themselves; the dermatologist signs in from their own address as usual.
Guessing from many addresses at once meets the per-address rate limit on every one of them, the
strength rule for staff passwords (app.passwords) and, where it is on, the second step.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.accounts import find_by_email
from app.extensions import db
from app.models import AuditAction, SignInFailures, User
from app.passwords import hash_password, needs_rehash, verify_password
from app.runtime import audit, client_address
from app.timeutil import as_utc

MAX_FAILED_LOGINS = 10
LOCKOUT = timedelta(minutes=15)
# Failures further apart than this do not count as "in a row".
FAILURE_MEMORY = timedelta(days=1)
# One machine on IPv6 usually holds a whole /64: counting each address would give it 2**64 tries.
IPV6_PREFIX = 64

_dummy_hash: str | None = None


def _spend_hash_time(password: str) -> None:
    """Verify against a throwaway hash so an unknown email takes as long as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("not-a-real-password-used-for-timing")
    verify_password(_dummy_hash, password)


def source_of(address: str | None) -> str:
    """The address as the failure count knows it: IPv6 by its /64, as a keyed hash (never in clear)."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
        key = str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False)) if ip.version == 6 else str(ip)
    except ValueError:
        key = "unknown"
    secret = hashlib.sha256(b"sign-in-source:" + current_app.config["SECRET_KEY"].encode("utf-8")).digest()
    return hmac.new(secret, key.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def _failures(user: User, source: str) -> SignInFailures | None:
    return db.session.execute(
        select(SignInFailures).where(SignInFailures.user_id == user.id, SignInFailures.source == source)
    ).scalar_one_or_none()


def is_locked(user: User, now: datetime, address: str | None = None) -> bool:
    """Is signing in to this account paused from this request's address (or `address`)?"""
    found = _failures(user, source_of(address or client_address()))
    return found is not None and found.locked_until is not None and as_utc(found.locked_until) > now


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
    """Every step passed: clear this address's failure count, note the time and the language the
    person reads the app in (their alert emails follow it), audit how the user signed in."""
    if language:
        user.language = language
    db.session.execute(
        delete(SignInFailures).where(
            SignInFailures.user_id == user.id, SignInFailures.source == source_of(client_address())
        )
    )
    user.last_login_at = now
    audit(AuditAction.LOGIN, user=user, detail=method)


def count_failure(user: User, now: datetime, detail: str) -> None:
    """One more failed attempt on this account from this address; the 10th in a row pauses it for 15 minutes."""
    found = _failures_for_update(user, source_of(client_address()), now)
    if found.last_failure_at is not None and as_utc(now) - as_utc(found.last_failure_at) > FAILURE_MEMORY:
        found.failures = 0
    found.failures = (found.failures or 0) + 1
    found.last_failure_at = now
    if found.failures >= MAX_FAILED_LOGINS:
        found.locked_until = now + LOCKOUT
        found.failures = 0  # the next pause needs another full run of failures
        detail = f"{detail}; locked for 15 minutes from this address"
    audit(AuditAction.FAILED_LOGIN, user=user, detail=detail)


def _failures_for_update(user: User, source: str, now: datetime) -> SignInFailures:
    """This account's count for this address, made on the first failure (a race to make it: the other's)."""
    found = _failures(user, source)
    if found is not None:
        return found
    try:
        with db.session.begin_nested():
            found = SignInFailures(user_id=user.id, source=source, failures=0, last_failure_at=now)
            db.session.add(found)
    except IntegrityError:
        found = _failures(user, source)
        if found is None:
            raise
    return found


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
