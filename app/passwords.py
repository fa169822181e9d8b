"""Password hashing with argon2id (argon2-cffi), cost from config so tests stay quick; and the
strength rule for staff passwords.

Twelve characters are not enough on their own: "password1234", "aaaaaaaaaaaa" and "123456789012"
are the first guesses of anyone attacking a sign-in form. zxcvbn (Dropbox's estimator: common
password lists, dictionaries, names, keyboard patterns, repeats, sequences and dates) scores each
new password; below MIN_STRENGTH it is refused with a sentence saying why and what to do instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l
from zxcvbn import zxcvbn

MIN_PASSWORD_LENGTH = 12
# zxcvbn's score 3: "safely unguessable", about 10^8 guesses or more even for an attacker who tries
# the likeliest passwords first. Below that, the common, repetitive and pattern passwords.
MIN_STRENGTH = 3
# zxcvbn's work grows quickly with length; a long passphrase is judged by its start (already strong).
CHECKED_LENGTH = 100
# Words an attacker would try first against this clinic's accounts.
CLINIC_WORDS = ("skin", "clinic", "skinclinic", "derma", "dermatology", "dermatologist", "oda", "klinika")

WEAK_PASSWORD = _l(
    "This password is too easy to guess: it is a common password, or built from repeats, sequences, "
    "keyboard patterns, dates or the person's name or email. Use a phrase of four or more unrelated words."
)


def weakness(password: str, related: Iterable[str] = ()) -> str | None:
    """A sentence saying why `password` is too weak for a staff account, or None if it is strong enough.

    `related`: the person's name, email and the like, which an attacker would try first.
    """
    words = [*CLINIC_WORDS]
    for value in related:
        words += [part for part in str(value or "").lower().replace("@", " ").replace(".", " ").split() if part]
    if zxcvbn((password or "")[:CHECKED_LENGTH], user_inputs=words)["score"] < MIN_STRENGTH:
        return str(WEAK_PASSWORD)
    return None


def _hasher() -> PasswordHasher:
    if current_app.config.get("TESTING"):
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)
