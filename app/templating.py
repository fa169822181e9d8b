"""Jinja filters and globals shared by every template."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, request, url_for
from flask_babel import format_datetime, get_locale
from werkzeug.routing import BuildError

from app.timeutil import as_utc


def register(app: Flask) -> None:
    app.add_template_filter(when, "when")
    app.add_template_filter(iso_utc, "iso_utc")

    @app.context_processor
    def inject_globals() -> dict:
        return {
            "current_locale": str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"]),
            "languages": {"en": "English", "lt": "Lietuvių"},
            "switch_language_url": switch_language_url,
        }


def when(moment: datetime | None, style: str = "medium") -> str:
    """A moment in the clinic's time zone, formatted for the reader's language."""
    if moment is None:
        return ""
    return format_datetime(as_utc(moment), style)


def iso_utc(moment: datetime | None) -> str:
    """Machine-readable UTC time for <time datetime> and the countdown script."""
    if moment is None:
        return ""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def switch_language_url(code: str) -> str:
    """The current page in another language (the choice is remembered in the session)."""
    args = dict(request.view_args or {})
    query = request.args.to_dict()
    query["lang"] = code
    if request.endpoint and request.method == "GET":
        try:
            return url_for(request.endpoint, **args, **query)
        except BuildError:  # an endpoint that cannot be rebuilt: fall back to the home page
            return url_for("conditions.home", lang=code)
    return url_for("conditions.home", lang=code)
