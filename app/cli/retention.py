"""`flask retention purge`: remove requests nobody has touched for longer than RETENTION_DAYS
(the rule is app.consultations.retention). Run it daily (cron or a systemd timer); `--dry-run`
lists what would go and changes nothing.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from app.consultations.retention import due_for_purge, purge
from app.extensions import db
from app.runtime import policies
from app.storage import photo_storage
from app.timeutil import utcnow


@click.group("retention", help="Remove requests kept longer than RETENTION_DAYS.")
def commands() -> None:
    pass


@commands.command("purge")
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@with_appcontext
def purge_command(dry_run: bool) -> None:
    """Remove closed, withdrawn and answered requests idle for longer than RETENTION_DAYS."""
    days = int(current_app.config["RETENTION_DAYS"])
    now = utcnow()
    if dry_run:
        due = [c.reference for c in due_for_purge(now, days)]
        db.session.rollback()
        click.echo(f"Would purge {len(due)} request(s) idle for more than {days} days.")
        for reference in due:
            click.echo(f"  {reference}")
        return
    result = purge(now, days, photo_storage(), policies().upload_dir)
    click.echo(
        f"Purged {len(result.references)} request(s) idle for more than {days} days; "
        f"{result.files_removed} photo file(s) removed."
    )
    if result.files_left:
        click.echo(f"{result.files_left} photo file(s) could not be removed; `flask photos orphans --delete` retries.")
