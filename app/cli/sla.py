"""`flask sla check`: queue at-risk and overdue alerts for the 24-hour target (safe to run any time)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.sla import AT_RISK, OVERDUE


@click.group("sla", help="The 24-hour response target.")
def commands() -> None:
    pass


@commands.command("check")
@with_appcontext
def check_command() -> None:
    """Queue alerts for requests at risk or overdue; each alert is queued once, however often this runs."""
    from app.sla_check import check

    counts = check()
    click.echo(
        f"at risk: {counts[AT_RISK]} request(s), overdue: {counts[OVERDUE]} request(s), "
        f"emails queued: {counts['emails']}"
    )
