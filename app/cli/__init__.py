"""Flask CLI commands, one module per group (users, sla, mail, worker, demo, photos, retention)."""

from __future__ import annotations

import importlib

from flask import Flask

# Each module exposes `commands`: a click group or command registered on the app.
COMMAND_MODULES = ("users", "sla", "mail", "worker", "demo", "photos", "retention")


def register_cli(app: Flask) -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"app.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"app.cli.{name}":
                raise
            continue
        app.cli.add_command(module.commands)
