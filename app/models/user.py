"""Staff accounts: dermatologists, staff and administrators."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime
from app.timeutil import utcnow


class Role(StrEnum):
    DERMATOLOGIST = "dermatologist"  # claims, answers and asks: every piece of advice carries a clinician's name
    STAFF = "staff"  # watches the target, reassigns, sees the outbox
    ADMIN = "admin"  # staff, plus accounts


ROLES = tuple(role.value for role in Role)  # plain strings, for forms and command-line choices


class User(UserMixin, Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # No longer used: failures are counted per account and address (SignInFailures). Kept while an
    # upgrade runs old and new processes side by side (docs/operations.md, Upgrades); drop later.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Failed sign-ins are counted per account *and* address (SignInFailures): a stranger's guesses
    # pause sign-in from the stranger's address only, never the dermatologist's own.
    sign_in_failures: Mapped[list[SignInFailures]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    # Bumped on password change or forced logout so that old sessions stop working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recovery_code_hashes: Mapped[list | None] = mapped_column(JSON)
    # The time step of the last authenticator code accepted: a code is never accepted twice (RFC 6238 5.2).
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # The language the person last used the app in; their alert emails are written in it.
    language: Mapped[str] = mapped_column(String(5), default="en", server_default="en")
    # A dermatologist's professional licence number, printed on every letter they sign;
    # they cannot answer a patient until an admin has entered it.
    licence_number: Mapped[str | None] = mapped_column(String(40))
    # The medical lead gets the last step of the escalation ladder (still overdue after
    # ESCALATE_AFTER_HOURS), on duty or not; any role may carry it.
    is_medical_lead: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())

    @property
    def paused_until(self) -> datetime | None:
        """Until when sign-in is paused from some address (the latest such pause), for admins."""
        return max((f.locked_until for f in self.sign_in_failures if f.locked_until is not None), default=None)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive accounts
        return bool(self.active)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_dermatologist(self) -> bool:
        return self.role == "dermatologist"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_staff_member(self) -> bool:
        """Staff and admins watch the target and the dashboard."""
        return self.role in ("staff", "admin")

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


class SignInFailures(Model):
    """Failed sign-ins in a row for one account from one address (an IPv6 address counts by its /64).

    The tenth pauses signing in to that account from that address for a while; the person's own
    address is untouched, so a stranger guessing cannot keep them out. `source` is a keyed hash of
    the address: this table never holds an address in clear.
    """

    __tablename__ = "sign_in_failures"
    __table_args__ = (UniqueConstraint("user_id", "source", name="uq_sign_in_failures_user_source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="sign_in_failures")
