"""Ending a staff session ends it on the server: a copy of the cookie taken before signing out,
a password change, a deactivation or "sign out everywhere" no longer opens anything."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result

from app import accounts
from app.extensions import db
from app.models import User
from tests.factories import login_as, make_user

NEW_PASSWORD = "a completely different sentence 42"


def copied_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def with_cookie(app, value: str):
    """Another browser (the attacker's) holding a copy of the session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", value)
    return thief


def admin_action(app, path: str, **data) -> None:
    admin = app.test_client()
    login_as(admin, make_user("admin"))
    response = admin.post(path, data=data)
    assert response.status_code in (302, 303), response.status_code


def sign_out(app, client, user: User) -> None:
    assert client.post("/logout").status_code == 302


def deactivate(app, client, user: User) -> None:
    admin_action(app, f"/staff/users/{user.id}/deactivate")


def sign_out_everywhere(app, client, user: User) -> None:
    admin_action(app, f"/staff/users/{user.id}/sign-out")


def password_reset_by_an_admin(app, client, user: User) -> None:
    admin_action(app, f"/staff/users/{user.id}/password", password=NEW_PASSWORD, confirm=NEW_PASSWORD)


def password_set_on_the_command_line(app, client, user: User) -> None:
    result: Result = app.test_cli_runner().invoke(
        args=["users", "set-password", "--email", user.email, "--password", NEW_PASSWORD]
    )
    assert result.exit_code == 0, result.output


ENDINGS: dict[str, Callable] = {
    "sign out": sign_out,
    "deactivation": deactivate,
    "sign out everywhere": sign_out_everywhere,
    "password reset by an admin": password_reset_by_an_admin,
    "password set on the command line": password_set_on_the_command_line,
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_a_cookie_copied_before_the_session_ended_opens_nothing(app, client, ending):
    """[F2] A cookie copied before logout still worked for up to 8 hours (Flask-Login's strong
    protection does not apply to permanent sessions)."""
    derm = make_user("dermatologist")
    assert login_as(client, derm).status_code == 302
    stolen = copied_cookie(client)
    assert with_cookie(app, stolen).get("/queue/").status_code == 200  # the copy works while signed in

    ENDINGS[ending](app, client, derm)

    thief = with_cookie(app, stolen)
    response = thief.get("/queue/")
    assert response.status_code == 302 and "/login" in response.location
    assert thief.post("/queue/ANY/claim").status_code in (302, 404)
    assert client.get("/queue/").status_code == 302  # and the person's own browser is signed out


def test_signing_out_ends_the_other_devices_too_and_a_new_sign_in_works(app, client):
    """[F2] Signing out bumps the account's session version: every earlier cookie stops, a new sign-in works."""
    derm = make_user("dermatologist")
    phone = app.test_client()
    login_as(phone, derm)
    login_as(client, derm)
    before = db.session.get(User, derm.id).session_version
    client.post("/logout")
    db.session.expire_all()
    assert db.session.get(User, derm.id).session_version == before + 1
    assert phone.get("/queue/").status_code == 302
    login_as(client, derm)
    assert client.get("/queue/").status_code == 200


def test_every_ending_rule_changes_the_session_version(app):
    """[F2] The rules themselves (shared by the pages and `flask users`) end every session."""
    derm = make_user("dermatologist")
    versions = [derm.session_version]
    for rule in (
        accounts.sign_out,
        accounts.force_sign_out,
        lambda user: accounts.reset_password(user, NEW_PASSWORD),
        accounts.deactivate,
    ):
        rule(derm)
        db.session.commit()
        versions.append(derm.session_version)
    assert versions == sorted(set(versions)) and len(versions) == 5
