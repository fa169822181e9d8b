"""`flask sla check`: queue at-risk and overdue alerts for the 24-hour target (safe to run any time)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.consultations.alerts import LEAD, check
from app.consultations.clock import AT_RISK, OVERDUE
from app.runtime import policies


@click.group("sla", help="The 24-hour response target.")
def commands() -> None:
    pass


@commands.command("check")
@with_appcontext
def check_command() -> None:
    """Take the escalation ladder's due steps (at risk, overdue, medical lead): each once per round, however often."""
    counts = check(policies())
    click.echo(
        f"at risk: {counts[AT_RISK]} request(s), overdue: {counts[OVERDUE]} request(s), "
        f"medical lead: {counts[LEAD]} request(s), emails queued: {counts['emails']}"
    )
