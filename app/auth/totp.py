"""Two-step sign-in: a code from an authenticator app (TOTP, RFC 6238) after the password,
with ten single-use recovery codes for a lost phone.

How the secrets rest in the database:

- the authenticator secret is needed in clear to check a code, so it cannot be hashed; it is
  encrypted (AES-GCM) with a key derived from SECRET_KEY, bound to the account's id, so a copy of
  the database alone gives nobody a working second factor, and a secret moved to another row
  does not decrypt. 20 random bytes seal to exactly 64 characters, the column's width;
- recovery codes are only ever compared, so only an HMAC-SHA256 of each is kept (keyed from
  SECRET_KEY); the codes are shown once, when made;
- the time step of the last accepted code is kept, so an observed code cannot be replayed.

Accepting a code is a conditional UPDATE, as a claim is: "the last step is older than this one",
"this recovery code is still among the unused ones". Of two requests carrying the same code at
the same moment, exactly one passes, on SQLite and PostgreSQL alike.

Changing SECRET_KEY therefore turns off everyone's authenticator and recovery codes (they must
set it up again); that is the price of not keeping the secret in clear.

Plain functions on a User; they change the session's objects and never commit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import re
import secrets
from datetime import datetime
from typing import Any, cast

import pyotp
import qrcode
import qrcode.image.svg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from sqlalchemy import CursorResult, Text, or_, select, update
from sqlalchemy import cast as sql_cast

from app.auth.signin import count_failure, is_locked
from app.extensions import db
from app.models import AuditAction, User
from app.runtime import audit

RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: codes are read off paper. 12 characters of 31 give about 59 bits.
RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_CODE_LENGTH = 12
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends
NONCE_BYTES = 12
# Codes from the previous and next 30-second step are accepted too: phone clocks drift a little.
DRIFT_STEPS = 1

AUTHENTICATOR = "authenticator"
RECOVERY_CODE = "recovery code"


# --- Keys and sealing ----------------------------------------------------------------------


def _key(purpose: bytes) -> bytes:
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    return hashlib.sha256(purpose + b":" + secret).digest()


def _bound_to(user_id: int) -> bytes:
    return f"user:{user_id}".encode("ascii")


def seal_secret(secret: str, user_id: int) -> str:
    """Encrypt a base32 authenticator secret for one account (64 URL-safe characters)."""
    raw = base64.b32decode(secret)
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = nonce + AESGCM(_key(b"totp-secret")).encrypt(nonce, raw, _bound_to(user_id))
    return base64.urlsafe_b64encode(sealed).decode("ascii")


def unseal_secret(sealed: str | None, user_id: int) -> str | None:
    """The base32 secret, or None when there is none or it cannot be opened (another key or account)."""
    if not sealed:
        return None
    try:
        data = base64.urlsafe_b64decode(sealed.encode("ascii"))
        raw = AESGCM(_key(b"totp-secret")).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], _bound_to(user_id))
    except (InvalidTag, ValueError, binascii.Error):
        return None
    return base64.b32encode(raw).decode("ascii")


def _hash_recovery_code(code: str) -> str:
    return hmac.new(_key(b"recovery-codes"), code.encode("ascii"), hashlib.sha256).hexdigest()


# --- State ---------------------------------------------------------------------------------


def is_enabled(user: User) -> bool:
    return user.totp_enabled_at is not None


def is_required(settings: Any) -> bool:
    """Admins require two-step sign-in for every staff account with REQUIRE_TOTP."""
    return bool(settings.get("REQUIRE_TOTP"))


def second_step(user: User, settings: Any) -> str | None:
    """What must follow a correct password: "verify" a code, "enrol" an app first, or nothing."""
    if is_enabled(user):
        return "verify"
    if is_required(settings):
        return "enrol"
    return None


def recovery_codes_left(user: User) -> int:
    return len(user.recovery_code_hashes or [])


# --- Setting up ----------------------------------------------------------------------------


def start_enrolment(user: User) -> str:
    """The secret to show as a QR code: the one waiting for confirmation, or a new one."""
    if is_enabled(user):
        raise ValueError("two-step sign-in is already on")
    secret = unseal_secret(user.totp_secret, user.id)
    if secret is None:
        secret = base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")
        user.totp_secret = seal_secret(secret, user.id)
    return secret


def provisioning_uri(secret: str, user: User) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=current_app.config["TOTP_ISSUER"])


def qr_code_data_uri(uri: str) -> str:
    """The otpauth:// link as an SVG QR code in a data: URI, drawn here: no request leaves the page."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=10, border=4)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def confirm_enrolment(user: User, code: str, now: datetime) -> list[str] | None:
    """Turn two-step sign-in on if `code` matches the waiting secret; returns the new recovery codes.

    Other sessions of the account end (they only passed the password).
    """
    secret = unseal_secret(user.totp_secret, user.id)
    if secret is None or is_enabled(user):
        return None
    step = _matching_step(secret, code, now, user.totp_last_step)
    if step is None or not _claim_step(user, step):
        return None
    user.totp_enabled_at = now
    user.session_version += 1
    audit(AuditAction.TOTP_ENABLED, user=user)
    return new_recovery_codes(user)


def new_recovery_codes(user: User) -> list[str]:
    """Ten fresh codes (the old ones stop working); only their HMACs are kept."""
    codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    user.recovery_code_hashes = [_hash_recovery_code(code) for code in codes]
    return [format_recovery_code(code) for code in codes]


def format_recovery_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def turn_off(user: User, *, by: User | None = None) -> None:
    """Remove the authenticator and the recovery codes (a lost phone, or the user's own choice)."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.recovery_code_hashes = None
    user.session_version += 1
    audit(AuditAction.USER_UPDATED, user=by or user, detail=f"user {user.id} two-step sign-in turned off")


# --- Checking a code -----------------------------------------------------------------------


def _clean(code: str | None) -> str:
    return re.sub(r"[\s\-]", "", code or "").lower()[:64]


def _matching_step(secret: str, code: str | None, now: datetime, last_step: int | None) -> int | None:
    """The time step whose code is `code`, if it is near now and newer than the last one accepted."""
    cleaned = _clean(code)
    if not re.fullmatch(r"\d{6}", cleaned):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), cleaned):
            return step
    return None


def _claim_step(user: User, step: int) -> bool:
    """Record `step` as the last accepted one, only if no request has accepted it (or a later one) yet."""
    result = cast(
        CursorResult,
        db.session.execute(
            update(User)
            .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.expire(user, ["totp_last_step"])
    return result.rowcount == 1


# Another request changing the codes at the same moment (using a different code) means reading again.
RECOVERY_CODE_TRIES = 3


def _use_recovery_code(user: User, code: str | None) -> bool:
    """Strike the code off the unused ones, if it is among them, in one conditional UPDATE.

    The list is compared as the database's own text of it, so two requests with the same code
    cannot both take it, and two with different codes cannot put back each other's.
    """
    cleaned = _clean(code)
    if len(cleaned) != RECOVERY_CODE_LENGTH or not set(cleaned) <= set(RECOVERY_ALPHABET):
        return False
    digest = _hash_recovery_code(cleaned)
    stored_text = sql_cast(User.recovery_code_hashes, Text)
    for _ in range(RECOVERY_CODE_TRIES):
        raw = db.session.execute(select(stored_text).where(User.id == user.id)).scalar_one_or_none()
        hashes = json.loads(raw) if raw else []
        if not any(hmac.compare_digest(stored, digest) for stored in hashes):
            return False
        result = cast(
            CursorResult,
            db.session.execute(
                update(User)
                .where(User.id == user.id, stored_text == raw)
                .values(recovery_code_hashes=[stored for stored in hashes if stored != digest])
                .execution_options(synchronize_session=False)
            ),
        )
        db.session.expire(user, ["recovery_code_hashes"])
        if result.rowcount == 1:
            return True
    return False


def verify_second_factor(user: User, code: str | None, now: datetime) -> str | None:
    """How the second step was passed (AUTHENTICATOR or RECOVERY_CODE), or None.

    A wrong code counts towards the same lockout as a wrong password, so 10 misses in a row pause
    the account for 15 minutes: a million possible codes cannot be tried through this door.
    """
    if not user.active or is_locked(user, now):
        audit(AuditAction.FAILED_LOGIN, user=user, detail="inactive" if not user.active else "locked")
        return None
    secret = unseal_secret(user.totp_secret, user.id)
    step = _matching_step(secret, code, now, user.totp_last_step) if secret and is_enabled(user) else None
    if step is not None and _claim_step(user, step):
        return AUTHENTICATOR
    if is_enabled(user) and _use_recovery_code(user, code):
        return RECOVERY_CODE
    count_failure(user, now, "wrong authenticator or recovery code")
    return None


def check_current_code(user: User, code: str | None, now: datetime) -> bool:
    """For changes a signed-in user makes to their own two-step settings: a fresh authenticator code."""
    secret = unseal_secret(user.totp_secret, user.id)
    step = _matching_step(secret, code, now, user.totp_last_step) if secret and is_enabled(user) else None
    return step is not None and _claim_step(user, step)
