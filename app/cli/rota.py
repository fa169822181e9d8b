"""`flask rota`: the duty rota from the command line: weekly hours, time off, extra shifts, and who is
on duty now and next. Times are the clinic's (DISPLAY_TIMEZONE)."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext
from flask_babel import force_locale

from app import accounts
from app.consultations import rota
from app.extensions import db
from app.models import ExceptionKind, User
from app.runtime import current_actor, policies
from app.timeutil import as_utc, utcnow


@click.group("rota", help="The dermatologists' duty rota (clinic time).")
def commands() -> None:
    pass


def _refused(error: rota.RotaError) -> click.ClickException:
    db.session.rollback()
    with force_locale("en"):
        return click.ClickException(str(error))


def _dermatologist(email: str) -> User:
    user = accounts.find_by_email(email)
    if user is None:
        raise click.ClickException(f"No account with email {email}.")
    return user


def _local(moment: datetime) -> str:
    return as_utc(moment).astimezone(policies().rota.zone).strftime("%a %Y-%m-%d %H:%M")


@commands.command("set")
@click.option("--email", required=True, help="The dermatologist's sign-in email.")
@click.option(
    "--weekly",
    required=True,
    help='Weekly hours, e.g. "Mon-Fri 08:00-16:00, Sat 09:00-13:00" or "Sun 22:00-06:00"; "off" for none.',
)
@with_appcontext
def set_weekly(email: str, weekly: str) -> None:
    """Replace a dermatologist's weekly working hours."""
    user = _dermatologist(email)
    try:
        shifts = rota.parse_weekly(weekly)
        rota.set_weekly(user, shifts, current_actor())
    except rota.RotaError as error:
        raise _refused(error) from error
    click.echo(f"Weekly hours of {user.email}: {rota.format_weekly(shifts) or 'none'}.")


def _period(user: User, kind: ExceptionKind, starts: str, ends: str) -> None:
    policy = policies().rota
    try:
        entry = rota.add_exception(
            user,
            kind,
            rota.parse_local_moment(starts, policy),
            rota.parse_local_moment(ends, policy, end=True),
            current_actor(),
        )
    except rota.RotaError as error:
        raise _refused(error) from error
    what = "Time off" if kind == ExceptionKind.OFF else "Extra shift"
    click.echo(f"{what} for {user.email}: {_local(entry.starts_at)} to {_local(entry.ends_at)}.")


@commands.command("off")
@click.option("--email", required=True, help="The dermatologist's sign-in email.")
@click.option("--from", "starts", required=True, help="First day (YYYY-MM-DD) or moment (YYYY-MM-DD HH:MM).")
@click.option("--to", "ends", required=True, help="Last day, included (YYYY-MM-DD), or moment (YYYY-MM-DD HH:MM).")
@with_appcontext
def time_off(email: str, starts: str, ends: str) -> None:
    """Time off (leave, sickness, training): weekly hours in the period do not count."""
    _period(_dermatologist(email), ExceptionKind.OFF, starts, ends)


@commands.command("extra")
@click.option("--email", required=True, help="The dermatologist's sign-in email.")
@click.option("--from", "starts", required=True, help="Start (YYYY-MM-DD HH:MM, or a day for the whole day).")
@click.option("--to", "ends", required=True, help="End (YYYY-MM-DD HH:MM, or a day, included).")
@with_appcontext
def extra_shift(email: str, starts: str, ends: str) -> None:
    """An extra shift (a weekend, a public holiday): on duty whatever the weekly hours say."""
    _period(_dermatologist(email), ExceptionKind.EXTRA, starts, ends)


@commands.command("show")
@with_appcontext
def show() -> None:
    """Everyone's weekly hours, who is on duty now and who is next."""
    now = utcnow()
    board = rota.duty_board(policies().rota, now, upcoming=5)
    if not board.in_use:
        click.echo("No rota yet: every active dermatologist counts as on duty. Set hours with `flask rota set`.")
        return
    shifts = rota.weekly_shifts()
    for user in rota.active_dermatologists():
        click.echo(f"{user.email:<32} {rota.format_weekly(shifts.get(user.id, [])) or 'no weekly hours'}")
        for entry in rota.upcoming_exceptions(user, now):
            click.echo(f"{'':<32}   {entry.kind}: {_local(entry.starts_at)} to {_local(entry.ends_at)}")
    on_now = ", ".join(f"{user.email} (until {_local(until)})" for user, until in board.now if until) or "nobody"
    click.echo(f"On duty now: {on_now}")
    for user, starts, ends in board.next:
        click.echo(f"Next: {user.email} {_local(starts)} to {_local(ends)}")
