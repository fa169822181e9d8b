"""`flask pages publish [FOLDER]`: write the public pages for nginx to send (app/published.py).

gunicorn's master publishes them when it starts and `flask worker` again whenever an article
changes on disk; this command does it at once, for example after editing an article where no
worker runs. FOLDER defaults to PUBLIC_PAGES_DIR.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.published import publish


@click.group("pages")
def commands() -> None:
    """The public pages as files, for nginx to send without asking the app."""


@commands.command("publish")
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def publish_command(folder: Path | None) -> None:
    """Write every public page in every language (and a gzip copy) under FOLDER or PUBLIC_PAGES_DIR."""
    if folder is None:
        if not current_app.config["PUBLIC_PAGES_DIR"]:
            raise click.UsageError("Give a folder, or set PUBLIC_PAGES_DIR.")
        folder = Path(current_app.config["PUBLIC_PAGES_DIR"])
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    published = publish(app, folder.absolute())
    click.echo(
        f"Public pages in {folder}: {published.written} files written, {published.unchanged} unchanged, "
        f"{published.removed} removed."
    )
