"""`flask demo seed`: demo accounts and consultation requests to try the app with (app/demo/ makes them)."""

from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import AppGroup

from app.demo import accounts, history, store
from app.demo import seed as seeding
from app.demo.cases import DEMO_CASES
from app.demo.summary import summary
from app.timeutil import utcnow

commands = AppGroup("demo", help="Demo data for trying the app locally (never in production).")

# At most one progress line this often (and one at the end of each stage).
PROGRESS_EVERY = 10.0


@commands.command("seed")
@click.option(
    "--requests",
    "total",
    type=click.IntRange(min=0),
    default=len(DEMO_CASES),
    show_default=True,
    help=f"How many demo requests there should be in all. The first {len(DEMO_CASES)} are hand-written "
    f"examples with photos; the rest a made-up history going back in time, {history.RATE_PER_DAY} requests "
    "a day, without photos (COPY on PostgreSQL, batched INSERTs on SQLite: 1,000,000, ten years, in minutes).",
)
@click.option("--reset", is_flag=True, help="Delete the demo requests and restore the demo passwords first.")
def seed(total: int, reset: bool) -> None:
    """Create demo accounts and consultation requests (safe to run again: only what is missing is added)."""
    if current_app.config["CONFIG_NAME"] == "production":
        raise click.ClickException("Demo data has public passwords; it is never created under APP_CONFIG=production.")
    if reset:
        click.echo(f"Removed {store.remove_requests()} demo requests.")
    logins = accounts.ensure_accounts(reset)
    progress = ProgressLines()
    created = seeding.ensure_requests(total, accounts.dermatologists(logins), utcnow(), progress)
    if progress.total:  # includes the indexes and statistics on PostgreSQL
        click.echo(f"History: {progress.total:,} requests written in {duration(progress.elapsed())}.")
    click.echo(summary(logins, created))


class ProgressLines:
    """Prints how far the history is: counts and time only."""

    def __init__(self) -> None:
        self.started = self.printed = time.monotonic()
        self.total = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, done: int, total: int, stage: str) -> None:
        now = time.monotonic()
        if done == 0 and stage == "rows":  # the history starts (the examples were played before it)
            self.started = self.printed = now
            click.echo(f"History: writing {total:,} requests…")
            return
        self.total = done
        if stage == "indexes":
            click.echo(f"History: {done:,} requests written ({duration(self.elapsed())}); building the indexes…")
        elif now - self.printed >= PROGRESS_EVERY and done < total:  # the last batch: the next line says so
            click.echo(f"History: {done:,} of {total:,} requests written ({duration(self.elapsed())})…")
        else:
            return
        self.printed = now


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"
