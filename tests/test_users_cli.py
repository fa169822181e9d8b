"""`flask users`: create (with or without --password), list, deactivate, reactivate, set-password."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, User
from app.passwords import verify_password
from tests.factories import make_user


def stored(email: str) -> User | None:
    db.session.expire_all()
    return db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()


def test_create_with_a_password_on_the_command_line(runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "Ruta@Clinic.example",
            "--name",
            "Dr Rūta K",
            "--role",
            "dermatologist",
            "--password",
            "a long enough password",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created dermatologist ruta@clinic.example" in result.output
    user = stored("ruta@clinic.example")
    assert user.name == "Dr Rūta K" and user.role == "dermatologist" and user.active
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, "a long enough password")
    assert db.session.execute(select(AuditEvent.action)).scalars().all() == ["user_created"]


def test_create_prompts_twice_for_a_hidden_password(runner):
    result = runner.invoke(
        args=["users", "create", "--email", "admin@clinic.example", "--name", "Admin", "--role", "admin"],
        input="first attempt here\nmistyped attempt\nthe real password\nthe real password\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("Password:") == 2 and "Repeat for confirmation:" in result.output
    assert "do not match" in result.output
    assert "the real password" not in result.output  # hidden input is never echoed
    assert verify_password(stored("admin@clinic.example").password_hash, "the real password")


def test_create_refuses_short_passwords_bad_roles_and_duplicates(runner, app):
    make_user("staff", email="taken@clinic.example")
    short = runner.invoke(
        args=["users", "create", "--email", "a@clinic.example", "--name", "A", "--role", "staff", "--password", "short"]
    )
    assert short.exit_code != 0 and "Use at least 12 characters." in short.output
    bad_role = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "b@clinic.example",
            "--name",
            "B",
            "--role",
            "nurse",
            "--password",
            "a long enough password",
        ]
    )
    assert bad_role.exit_code != 0 and "nurse" in bad_role.output
    duplicate = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "TAKEN@clinic.example",
            "--name",
            "C",
            "--role",
            "staff",
            "--password",
            "a long enough password",
        ]
    )
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    bad_email = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "not-an-email",
            "--name",
            "D",
            "--role",
            "staff",
            "--password",
            "a long enough password",
        ]
    )
    assert bad_email.exit_code != 0 and "valid email" in bad_email.output
    assert stored("a@clinic.example") is None and stored("b@clinic.example") is None


def test_list_shows_every_account(runner, app):
    assert "No accounts yet" in runner.invoke(args=["users", "list"]).output
    make_user("dermatologist", email="derm@clinic.example")
    make_user("staff", email="gone@clinic.example", active=False)
    output = runner.invoke(args=["users", "list"]).output
    assert "derm@clinic.example" in output and "never signed in" in output
    assert "gone@clinic.example" in output and "deactivated" in output


def test_deactivate_reactivate_and_set_password(runner, app):
    user = make_user("dermatologist", email="derm@clinic.example")
    version = user.session_version
    result = runner.invoke(args=["users", "deactivate", "--email", "DERM@clinic.example"])
    assert result.exit_code == 0, result.output
    assert not stored("derm@clinic.example").active
    assert stored("derm@clinic.example").session_version == version + 1
    assert runner.invoke(args=["users", "reactivate", "--email", "derm@clinic.example"]).exit_code == 0
    assert stored("derm@clinic.example").active
    result = runner.invoke(
        args=["users", "set-password", "--email", "derm@clinic.example"],
        input="brand new password\nbrand new password\n",
    )
    assert result.exit_code == 0, result.output
    assert verify_password(stored("derm@clinic.example").password_hash, "brand new password")
    missing = runner.invoke(args=["users", "deactivate", "--email", "nobody@clinic.example"])
    assert missing.exit_code != 0 and "No account with email nobody@clinic.example" in missing.output


def test_the_last_admin_cannot_be_deactivated_from_the_command_line(runner, app):
    make_user("admin", email="boss@clinic.example")
    result = runner.invoke(args=["users", "deactivate", "--email", "boss@clinic.example"])
    assert result.exit_code != 0 and "only active admin" in result.output
    assert stored("boss@clinic.example").active
