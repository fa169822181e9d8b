"""`flask demo seed`: demo accounts and consultation requests to try the app with (app/demo/ makes them)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.demo import accounts, store
from app.demo import seed as seeding
from app.demo.accounts import DEMO_ACCOUNTS
from app.demo.cases import DEMO_CASES
from app.demo.photos import skin_photo, skin_photo_jpeg
from app.demo.summary import summary
from app.timeutil import utcnow

# The benchmarks (bench/) still import these from here.
__all__ = ["DEMO_ACCOUNTS", "commands", "skin_photo", "skin_photo_jpeg"]

commands = AppGroup("demo", help="Demo data for trying the app locally (never in production).")


@commands.command("seed")
@click.option(
    "--requests",
    "total",
    type=click.IntRange(min=0),
    default=len(DEMO_CASES),
    show_default=True,
    help=f"How many demo requests there should be in all. The first {len(DEMO_CASES)} are hand-written "
    "examples with photos; the rest are bulk rows without photos (fast: 20,000 take seconds).",
)
@click.option("--reset", is_flag=True, help="Delete the demo requests and restore the demo passwords first.")
def seed(total: int, reset: bool) -> None:
    """Create demo accounts and consultation requests (safe to run again: only what is missing is added)."""
    if current_app.config["CONFIG_NAME"] == "production":
        raise click.ClickException("Demo data has public passwords; it is never created under APP_CONFIG=production.")
    if reset:
        click.echo(f"Removed {store.remove_requests()} demo requests.")
    logins = accounts.ensure_accounts(reset)
    created = seeding.ensure_requests(total, accounts.dermatologists(logins), utcnow())
    click.echo(summary(logins, created))
