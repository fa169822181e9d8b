"""`flask mail deliver`: send due emails from the outbox (retries with backoff; safe in parallel)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.outbox import DEFAULT_BATCH


@click.group("mail", help="The email outbox.")
def commands() -> None:
    pass


@commands.command("deliver")
@click.option("--limit", default=DEFAULT_BATCH, show_default=True, help="Most emails to send in this run.")
@with_appcontext
def deliver_command(limit: int) -> None:
    """Answer waiting "lost your link?" requests, then send pending emails that are due.

    Without MAIL_SERVER nothing is sent; staff see them on /staff/."""
    from app.consultations.submission import send_requested_links
    from app.outbox import deliver, mail_configured

    send_requested_links()  # "lost your link?" requests become emails first, so they go in this run
    counts = deliver(limit=limit)
    if not mail_configured():
        click.echo(f"MAIL_SERVER is not set: {counts['waiting']} email(s) wait in the outbox (see /staff/).")
        return
    click.echo(f"sent: {counts['sent']}, retrying later: {counts['retrying']}, failed: {counts['failed']}")
