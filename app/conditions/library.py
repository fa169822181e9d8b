"""The app's one condition Library, built when the conditions blueprint is registered.

It lives in app.extensions["condition_library"]; everything reaches it through articles(), so the
page cache, the views and the middleware share one copy per app and nothing is kept per process.
"""

from __future__ import annotations

from flask import Flask, current_app

from app.conditions.content import Library

EXTENSION_KEY = "condition_library"


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION_KEY] = Library(app.config["CONTENT_DIR"])


def articles(app: Flask | None = None) -> Library:
    """The condition articles of `app` (by default the app handling the current request)."""
    return (app or current_app).extensions[EXTENSION_KEY]
