"""Staff account rules shared by `flask users` and the admin pages: create, change role,
deactivate, reactivate, force sign-out and reset a password.

Functions change the session's objects and never commit; the caller's transaction decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import cast

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, CursorResult, delete, func, or_, select, update

from app.extensions import db
from app.models import ROLES, AuditAction, Role, SignInFailures, User
from app.passwords import MIN_PASSWORD_LENGTH, hash_password, weakness
from app.runtime import audit


class AccountError(ValueError):
    """A change to an account that cannot be made; the message is fit to show to the admin."""


ONLY_ADMIN = _l("This is the only active admin account; make another admin first.")


def normalise_email(email: str) -> str:
    """Emails are compared case-insensitively: store them lower-case and trimmed."""
    return (email or "").strip().lower()


def check_email(email: str) -> str:
    email = normalise_email(email)
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        raise AccountError(_l("Enter a valid email address.")) from error
    return email


class WeakPassword(AccountError):
    """A password too short or too easy to guess; the message says what to do instead."""


def check_password(password: str, related: Iterable[str] = ()) -> str:
    """The password, if long enough and not easy to guess (`related`: the person's name and email)."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise WeakPassword(_l("Use at least %(n)s characters.", n=MIN_PASSWORD_LENGTH))
    problem = weakness(password, related)
    if problem is not None:
        raise WeakPassword(problem)
    return password


LICENCE_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z ./-]{0,39}")


def check_licence(licence: str | None) -> str | None:
    """A licence number as printed on letters (e.g. "MPL-012345"), trimmed; empty means none."""
    licence = " ".join((licence or "").split())
    if not licence:
        return None
    if not LICENCE_PATTERN.fullmatch(licence):
        raise AccountError(
            _l("Enter the licence number with letters, digits, spaces, dots, dashes or slashes (at most 40).")
        )
    return licence


def find_by_email(email: str) -> User | None:
    return db.session.execute(select(User).where(func.lower(User.email) == normalise_email(email))).scalar_one_or_none()


def create_user(
    email: str, name: str, role: str, password: str, *, by: User | None = None, licence_number: str | None = None
) -> User:
    """A new active account; the email must be unused and the password long enough."""
    email = check_email(email)
    licence = check_licence(licence_number)
    name = (name or "").strip()
    if not name:
        raise AccountError(_l("Enter the person's name."))
    if role not in ROLES:
        raise AccountError(_l("Choose a role: %(roles)s.", roles=", ".join(ROLES)))
    if find_by_email(email) is not None:
        raise AccountError(_l("An account with this email already exists."))
    password = check_password(password, related=(email, name))
    user = User(email=email, name=name[:120], role=role, password_hash=hash_password(password), licence_number=licence)
    db.session.add(user)
    db.session.flush()
    audit(AuditAction.USER_CREATED, user=by, detail=f"user {user.id} role {role}")
    return user


def _lock_active_admins() -> None:
    """PostgreSQL: hold the active admins' rows until this transaction ends, so that two admins
    removing each other at the same moment take turns (the second then counts without the first).
    SQLite has no row locks; there the conditional UPDATE below runs under its single write lock."""
    db.session.execute(select(User.id).where(User.role == Role.ADMIN, User.active.is_(True)).with_for_update()).all()


def _another_active_admin(user_id: int) -> ColumnElement[bool]:
    """A condition for an UPDATE of `user_id`: it is not an active admin, or another one remains."""
    others = (
        select(func.count(User.id))
        .where(User.role == Role.ADMIN, User.active.is_(True), User.id != user_id)
        .scalar_subquery()
    )
    return or_(User.role != Role.ADMIN, User.active.is_(False), others >= 1)


def _update_keeping_an_admin(user: User, values: dict) -> None:
    """Change the account only if the clinic keeps an active admin, decided in the database.

    Of two admins deactivating (or demoting) each other at the same moment, one wins and the
    other is refused, so the clinic never loses its last way into account management.
    """
    _lock_active_admins()
    result = cast(
        CursorResult,
        db.session.execute(
            update(User)
            .where(User.id == user.id, _another_active_admin(user.id))
            .values(**values)
            .execution_options(synchronize_session=False)
        ),
    )
    db.session.expire(user, list(values))
    if result.rowcount != 1:
        raise AccountError(ONLY_ADMIN)


def change_role(user: User, role: str, *, by: User | None = None) -> None:
    if role not in ROLES:
        raise AccountError(_l("Choose a role: %(roles)s.", roles=", ".join(ROLES)))
    if role == user.role:
        return
    old = user.role
    # A changed role should take effect everywhere now, not at the next sign-in.
    _update_keeping_an_admin(user, {"role": role, "session_version": User.session_version + 1})
    audit(AuditAction.USER_UPDATED, user=by, detail=f"user {user.id} role {old} -> {role}")


def set_licence(user: User, licence_number: str | None, *, by: User | None = None) -> None:
    """Record (or clear) the professional licence number printed on the person's letters."""
    licence = check_licence(licence_number)
    if licence == user.licence_number:
        return
    user.licence_number = licence
    # The number itself is not health data, but the log only needs to say that it changed.
    audit(AuditAction.USER_UPDATED, user=by, detail=f"user {user.id} licence number {'set' if licence else 'removed'}")


def deactivate(user: User, *, by: User | None = None) -> None:
    if by is not None and by.id == user.id:
        raise AccountError(_l("You cannot deactivate your own account."))
    _update_keeping_an_admin(user, {"active": False, "session_version": User.session_version + 1})
    audit(AuditAction.USER_UPDATED, user=by, detail=f"user {user.id} deactivated")


def reactivate(user: User, *, by: User | None = None) -> None:
    user.active = True
    lift_pauses(user)
    audit(AuditAction.USER_UPDATED, user=by, detail=f"user {user.id} reactivated")


def lift_pauses(user: User) -> None:
    """Sign-in from every address works again (the account was reactivated or its password reset)."""
    db.session.execute(delete(SignInFailures).where(SignInFailures.user_id == user.id))
    db.session.expire(user, ["sign_in_failures"])


def end_sessions(user: User) -> None:
    """Every session cookie issued to this user so far stops working, on every device.

    Session ids are "<id>:<session_version>" and each request's id is checked against the
    account (app.auth.session.load_user), so a copy of an old cookie is refused by the server,
    not only forgotten by the browser that signed out.
    """
    user.session_version = (user.session_version or 0) + 1


def sign_out(user: User) -> None:
    """The person signed out: this session and every other one end (a per-account version)."""
    end_sessions(user)
    audit(AuditAction.LOGOUT, user=user)


def force_sign_out(user: User, *, by: User | None = None) -> None:
    """Every session of this user stops working (session ids carry the version)."""
    end_sessions(user)
    audit(AuditAction.USER_UPDATED, user=by, detail=f"user {user.id} signed out everywhere")


def set_medical_lead(user: User, lead: bool, *, by: User | None = None) -> None:
    """The medical lead gets the last step of the escalation ladder, on duty or not."""
    if lead and not user.active:
        raise AccountError(_l("A deactivated account cannot be the medical lead."))
    if bool(user.is_medical_lead) == lead:
        return
    user.is_medical_lead = lead
    audit(AuditAction.USER_UPDATED, user=by, detail=f"user {user.id} medical lead {'on' if lead else 'off'}")


def reset_password(user: User, password: str, *, by: User | None = None) -> None:
    """A new password; it also lifts a lockout and signs the user out everywhere."""
    user.password_hash = hash_password(check_password(password, related=(user.email, user.name)))
    lift_pauses(user)
    end_sessions(user)
    audit(AuditAction.USER_UPDATED, user=by, detail=f"user {user.id} password reset")
