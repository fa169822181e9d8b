"""`flask sla check`: queue at-risk and overdue alerts for the 24-hour target (safe to run any time)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.consultations.alerts import check
from app.consultations.clock import AT_RISK, OVERDUE
from app.runtime import policies


@click.group("sla", help="The 24-hour response target.")
def commands() -> None:
    pass


@commands.command("check")
@with_appcontext
def check_command() -> None:
    """Queue alerts for requests at risk or overdue; each alert is queued once, however often this runs."""
    counts = check(policies())
    click.echo(
        f"at risk: {counts[AT_RISK]} request(s), overdue: {counts[OVERDUE]} request(s), "
        f"emails queued: {counts['emails']}"
    )
