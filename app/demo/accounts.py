"""The demo staff accounts: fixed, public passwords, made through app.accounts like any other account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from app import accounts
from app.extensions import db
from app.models import User
from app.passwords import verify_password


@dataclass(frozen=True)
class DemoAccount:
    role: str
    email: str
    name: str
    password: str
    licence_number: str | None = None  # dermatologists sign answers with it


DEMO_ACCOUNTS = (
    DemoAccount("admin", "admin@clinic.example", "Aistė Petrauskienė", "demo-admin-password"),
    DemoAccount("staff", "staff@clinic.example", "Tomas Jankauskas", "demo-staff-password"),
    DemoAccount("dermatologist", "dr.ruta@clinic.example", "Dr Rūta Vaitkutė", "demo-derm-password", "MPL-DEMO-0417"),
    DemoAccount("dermatologist", "dr.mark@clinic.example", "Dr Mark Ellison", "demo-derm-password", "MPL-DEMO-0582"),
)
DERMATOLOGIST_COUNT = sum(1 for account in DEMO_ACCOUNTS if account.role == "dermatologist")


class DemoLogin(NamedTuple):
    """A demo account as the summary shows it: does its demo password still work?"""

    account: DemoAccount
    user: User
    password_works: bool


def ensure_accounts(reset: bool) -> list[DemoLogin]:
    """The demo accounts: created when missing; with reset, their demo password and access restored."""
    result = []
    for account in DEMO_ACCOUNTS:
        user = accounts.find_by_email(account.email)
        if user is None:
            user = accounts.create_user(
                account.email, account.name, account.role, account.password, licence_number=account.licence_number
            )
        else:
            if user.licence_number is None and account.licence_number is not None:
                accounts.set_licence(user, account.licence_number)  # made before licence numbers existed
            if reset:
                accounts.reset_password(user, account.password)
                if not user.active:
                    accounts.reactivate(user)
        result.append(DemoLogin(account, user, verify_password(user.password_hash, account.password)))
    db.session.commit()
    return result


def dermatologists(logins: list[DemoLogin]) -> list[User]:
    """The demo dermatologists, in DEMO_ACCOUNTS order (a case's `holder` indexes this list)."""
    return [login.user for login in logins if login.account.role == "dermatologist"]
