"""Flask CLI commands, one module per group (users, rota, sla, mail, worker, demo, photos, retention,
pages)."""

from __future__ import annotations

from flask import Flask

from app.cli import demo, mail, pages, photos, retention, rota, sla, users, worker


def register_cli(app: Flask) -> None:
    """Each module exposes `commands`: a click group (or, for the worker, a command)."""
    for module in (users, rota, sla, mail, worker, demo, photos, retention, pages):
        app.cli.add_command(module.commands)
