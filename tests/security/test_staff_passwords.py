"""Staff passwords and sign-in pauses: common and repetitive passwords are refused with a clear
message, and a stranger guessing at a known dermatologist's account cannot lock them out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from app import accounts
from app.extensions import db
from app.models import User
from tests.factories import DEFAULT_PASSWORD, failed_sign_ins, login_as, make_user

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
STRANGER = {"REMOTE_ADDR": "203.0.113.66"}
DERMATOLOGIST = {"REMOTE_ADDR": "198.51.100.7"}
WEAK = ["password1234", "aaaaaaaaaaaa", "123456789012", "qwertyuiopas", "abcdefghijkl", "iloveyou2026"]


@pytest.mark.parametrize("password", WEAK)
def test_an_admin_cannot_give_a_common_or_repetitive_password(app, client, password):
    """[F15] password1234, aaaaaaaaaaaa and 123456789012 were accepted for staff accounts."""
    login_as(client, make_user("admin"))
    response = client.post(
        "/staff/users/new",
        data={
            "name": "Dr Ona Jonaitė",
            "email": "ona@clinic.example",
            "role": "dermatologist",
            "password": password,
            "confirm": password,
        },
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "too easy to guess" in text and "unrelated words" in text
    assert db.session.query(User).filter_by(email="ona@clinic.example").first() is None


def test_a_reset_password_is_checked_against_the_persons_name_too(app, client):
    """[F15] The person's own name or email in the password is among the first guesses."""
    login_as(client, make_user("admin"))
    derm = make_user("dermatologist", name="Dr Rasa Kazlauskienė", email="rasa.kazlauskiene@clinic.example")
    weak = "kazlauskiene2026"
    response = client.post(f"/staff/users/{derm.id}/password", data={"password": weak, "confirm": weak})
    assert response.status_code == 422 and "too easy to guess" in response.get_data(as_text=True)
    strong = "lantern orchard pebble violin"
    response = client.post(f"/staff/users/{derm.id}/password", data={"password": strong, "confirm": strong})
    assert response.status_code == 302
    assert login_as(app.test_client(), derm, strong).status_code == 302


@pytest.mark.parametrize("password", WEAK)
def test_the_command_line_refuses_weak_passwords_too(app, runner, password):
    """[F15] `flask users create` goes through the same rule."""
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "j@clinic.example",
            "--name",
            "J",
            "--role",
            "staff",
            "--password",
            password,
        ]
    )
    assert result.exit_code != 0 and "too easy to guess" in result.output
    with pytest.raises(accounts.WeakPassword):
        accounts.check_password(password)


def test_a_passphrase_is_accepted(app):
    """[F15] Four unrelated words pass; the rule does not stand in the way of good passwords."""
    assert accounts.check_password("correct horse battery staple") == "correct horse battery staple"
    assert accounts.check_password("lantern orchard pebble violin", related=["Lina", "lina@clinic.example"])


def sign_in(app, user: User, password: str, address: dict):
    return app.test_client().post("/login", data={"email": user.email, "password": password}, environ_base=address)


def test_a_stranger_guessing_cannot_lock_the_dermatologist_out(app):
    """[F15] Ten wrong passwords from anywhere locked the account itself for 15 minutes, so a
    stranger who knew a dermatologist's email could keep them out all day."""
    derm = make_user("dermatologist")
    with time_machine.travel(START, tick=False):
        for n in range(25):
            sign_in(app, derm, f"guess number {n}", STRANGER)
        # The stranger's address is paused, even with the right password...
        assert "did not match" in sign_in(app, derm, DEFAULT_PASSWORD, STRANGER).get_data(as_text=True)
        # ...and the dermatologist signs in from their own address as usual.
        assert sign_in(app, derm, DEFAULT_PASSWORD, DERMATOLOGIST).status_code == 302
        db.session.expire_all()
        assert db.session.get(User, derm.id).paused_until is not None  # shown to admins


def test_failures_from_one_ipv6_network_count_together(app):
    """[F15] A machine on IPv6 holds a whole /64: each of its addresses is the same source."""
    derm = make_user("dermatologist")
    with time_machine.travel(START, tick=False):
        for n in range(10):
            sign_in(app, derm, "wrong", {"REMOTE_ADDR": f"2001:db8:1:2::{n + 1:x}"})
        refused = sign_in(app, derm, DEFAULT_PASSWORD, {"REMOTE_ADDR": "2001:db8:1:2:ffff::9"})
        assert "did not match" in refused.get_data(as_text=True)
        assert sign_in(app, derm, DEFAULT_PASSWORD, {"REMOTE_ADDR": "2001:db8:1:3::1"}).status_code == 302


def test_the_pause_ends_and_a_reset_lifts_every_pause(app, client):
    """[F15] A pause lasts 15 minutes from that address; an admin's password reset lifts them all."""
    derm = make_user("dermatologist")
    with time_machine.travel(START, tick=False) as traveller:
        for _ in range(10):
            sign_in(app, derm, "wrong", STRANGER)
        assert failed_sign_ins(derm, STRANGER["REMOTE_ADDR"]) == 0  # the run was turned into a pause
        assert "did not match" in sign_in(app, derm, DEFAULT_PASSWORD, STRANGER).get_data(as_text=True)
        traveller.shift(timedelta(minutes=15, seconds=1))
        assert sign_in(app, derm, DEFAULT_PASSWORD, STRANGER).status_code == 302
        for _ in range(10):
            sign_in(app, derm, "wrong", STRANGER)
        accounts.reset_password(db.session.get(User, derm.id), "lantern orchard pebble violin")
        db.session.commit()
        assert sign_in(app, derm, "lantern orchard pebble violin", STRANGER).status_code == 302
