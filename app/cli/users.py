"""`flask users`: create, list and deactivate staff accounts from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask.cli import with_appcontext
from flask_babel import force_locale
from sqlalchemy import select

from app import accounts
from app.extensions import db
from app.models import ROLES, User


@contextmanager
def _account_change() -> Iterator[None]:
    """Commit what the block changes; a refused change is rolled back and becomes a command-line
    error (in English: outside a web request there is no reader whose language we could pick)."""
    try:
        yield
    except accounts.AccountError as error:
        db.session.rollback()
        with force_locale("en"):
            raise click.ClickException(str(error)) from error
    db.session.commit()


@click.group("users", help="Manage staff accounts (dermatologists, staff, admins).")
def commands() -> None:
    pass


@commands.command("create")
@click.option("--email", required=True, help="Sign-in email address.")
@click.option("--name", required=True, help="Full name as colleagues see it.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="dermatologist, staff or admin.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 12 characters; asked for (twice, hidden) when not given.",
)
@click.option(
    "--licence",
    "licence",
    default=None,
    help="A dermatologist's professional licence number, printed on their letters (needed to answer).",
)
@with_appcontext
def create(email: str, name: str, role: str, password: str, licence: str | None) -> None:
    """Create an active staff account."""
    with _account_change():
        user = accounts.create_user(email, name, role, password, licence_number=licence)
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")
    if user.role == "dermatologist" and not user.licence_number:
        click.echo(f"No licence number yet: they cannot answer until one is set (flask users licence --email {email}).")


@commands.command("list")
@with_appcontext
def list_users() -> None:
    """Every account with its role and whether it can sign in."""
    users = db.session.execute(select(User).order_by(User.role, User.email)).scalars().all()
    if not users:
        click.echo("No accounts yet. Create one with: flask users create --email ... --name ... --role admin")
        return
    for user in users:
        state = "active" if user.active else "deactivated"
        last = user.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if user.last_login_at else "never signed in"
        licence = f"  licence {user.licence_number}" if user.licence_number else ""
        lead = ", medical lead" if user.is_medical_lead else ""
        click.echo(f"{user.id:>4}  {user.role:<13} {state:<11} {user.email}  {user.name}{licence}  ({last}{lead})")


def _find(email: str) -> User:
    user = accounts.find_by_email(email)
    if user is None:
        raise click.ClickException(f"No account with email {email}.")
    return user


@commands.command("deactivate")
@click.option("--email", required=True)
@with_appcontext
def deactivate(email: str) -> None:
    """Stop an account from signing in and end its sessions."""
    with _account_change():
        accounts.deactivate(_find(email))
    click.echo(f"Deactivated {email}.")


@commands.command("reactivate")
@click.option("--email", required=True)
@with_appcontext
def reactivate(email: str) -> None:
    """Let a deactivated (or locked) account sign in again."""
    with _account_change():
        accounts.reactivate(_find(email))
    click.echo(f"Reactivated {email}.")


@commands.command("licence")
@click.option("--email", required=True)
@click.option("--licence", "licence", required=True, help="The licence number; an empty value removes it.")
@with_appcontext
def set_licence(email: str, licence: str) -> None:
    """Set a dermatologist's professional licence number (printed on their letters)."""
    with _account_change():
        accounts.set_licence(_find(email), licence)
    click.echo(f"Licence number {'set' if licence.strip() else 'removed'} for {email}.")


@commands.command("medical-lead")
@click.option("--email", required=True)
@click.option("--off", "remove", is_flag=True, help="Remove the flag instead of setting it.")
@with_appcontext
def medical_lead(email: str, remove: bool) -> None:
    """Make an account the medical lead (the last step of the escalation ladder), or stop it being one."""
    user = _find(email)
    with _account_change():
        accounts.set_medical_lead(user, not remove)
    click.echo(f"{email} is {'no longer' if remove else 'now'} a medical lead.")


@commands.command("set-password")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def set_password(email: str, password: str) -> None:
    """Set a new password (asked for twice, hidden); signs the user out everywhere."""
    with _account_change():
        accounts.reset_password(_find(email), password)
    click.echo(f"Password changed for {email}.")
