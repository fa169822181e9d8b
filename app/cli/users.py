"""`flask users`: create, list and deactivate staff accounts from the command line."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from flask_babel import force_locale
from sqlalchemy import select

from app import accounts
from app.extensions import db
from app.models import ROLES, User


def _refused(error: accounts.AccountError) -> click.ClickException:
    """Roll back and turn a refused change into a command-line error (messages in English:
    outside a web request there is no reader whose language we could pick)."""
    db.session.rollback()
    with force_locale("en"):
        return click.ClickException(str(error))


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
    try:
        user = accounts.create_user(email, name, role, password, licence_number=licence)
    except accounts.AccountError as error:
        raise _refused(error) from error
    db.session.commit()
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
    try:
        accounts.deactivate(_find(email))
    except accounts.AccountError as error:
        raise _refused(error) from error
    db.session.commit()
    click.echo(f"Deactivated {email}.")


@commands.command("reactivate")
@click.option("--email", required=True)
@with_appcontext
def reactivate(email: str) -> None:
    """Let a deactivated (or locked) account sign in again."""
    accounts.reactivate(_find(email))
    db.session.commit()
    click.echo(f"Reactivated {email}.")


@commands.command("licence")
@click.option("--email", required=True)
@click.option("--licence", "licence", required=True, help="The licence number; an empty value removes it.")
@with_appcontext
def set_licence(email: str, licence: str) -> None:
    """Set a dermatologist's professional licence number (printed on their letters)."""
    try:
        accounts.set_licence(_find(email), licence)
    except accounts.AccountError as error:
        raise _refused(error) from error
    db.session.commit()
    click.echo(f"Licence number {'set' if licence.strip() else 'removed'} for {email}.")


@commands.command("medical-lead")
@click.option("--email", required=True)
@click.option("--off", "remove", is_flag=True, help="Remove the flag instead of setting it.")
@with_appcontext
def medical_lead(email: str, remove: bool) -> None:
    """Make an account the medical lead (the last step of the escalation ladder), or stop it being one."""
    user = _find(email)
    try:
        accounts.set_medical_lead(user, not remove)
    except accounts.AccountError as error:
        raise _refused(error) from error
    db.session.commit()
    click.echo(f"{email} is {'no longer' if remove else 'now'} a medical lead.")


@commands.command("set-password")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def set_password(email: str, password: str) -> None:
    """Set a new password (asked for twice, hidden); signs the user out everywhere."""
    try:
        accounts.reset_password(_find(email), password)
    except accounts.AccountError as error:
        raise _refused(error) from error
    db.session.commit()
    click.echo(f"Password changed for {email}.")
