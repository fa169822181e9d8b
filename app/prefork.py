"""Work done once in gunicorn's master before it forks the workers (preload_app in gunicorn.conf.py).

The master imports the app, then asks for every public page (home, the A-Z, each condition) in
every language and encoding, so the articles are parsed, the templates compiled, the translations
loaded and each page rendered and compressed once (app/conditions/cache.py); with PUBLIC_PAGES_DIR
set, the pages are also written there for nginx to send (app/published.py). Every worker
forked afterwards starts with all of it in memory shared with the master, so recycling a worker costs a
fork, not an import and a warm-up. Database connections are never shared across a fork: the master
closes the ones the warm-up opened, and a worker drops any it finds without touching their sockets.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from app.conditions.library import EXTENSION_KEY
from app.extensions import db
from app.published import public_paths, publish

# What browsers and plain clients send; each gets its own compressed copy.
ENCODINGS = ("br", "gzip", "")


def warm(app: object) -> int:
    """Render and compress every public page in every language; returns how many responses that took.

    Anything that is not the clinic's app (gunicorn serving another WSGI callable) is left alone.
    """
    if not isinstance(app, Flask) or EXTENSION_KEY not in app.extensions:
        return 0
    client = app.test_client(use_cookies=False)
    asked = 0
    for path in public_paths(app):
        for language in app.config["LANGUAGES"]:
            for encoding in ENCODINGS:
                headers = {"Accept-Language": language, **({"Accept-Encoding": encoding} if encoding else {})}
                # The public address, so pages that name themselves (JSON-LD) carry the real host.
                client.get(path, base_url=app.config["PUBLIC_BASE_URL"], headers=headers)
                asked += 1
    if app.config["PUBLIC_PAGES_DIR"]:
        publish(app, Path(app.config["PUBLIC_PAGES_DIR"]))
    _drop_connections(app, close=True)
    return asked


def after_fork(app: object) -> None:
    """In a new worker: forget the master's pooled connections (their sockets stay the master's)."""
    if isinstance(app, Flask) and "sqlalchemy" in app.extensions:
        _drop_connections(app, close=False)


def _drop_connections(app: Flask, close: bool) -> None:
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose(close=close)
