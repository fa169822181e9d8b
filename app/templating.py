"""Jinja filters and globals shared by every template."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from flask import Flask, current_app, request, url_for
from flask_babel import format_datetime, get_locale
from werkzeug.routing import BuildError

from app.timeutil import as_utc


def register(app: Flask) -> None:
    app.add_template_filter(when, "when")
    app.url_defaults(_fingerprint_static)
    app.add_template_filter(iso_utc, "iso_utc")

    @app.context_processor
    def inject_globals() -> dict:
        return {
            "current_locale": str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"]),
            "languages": {"en": "English", "lt": "Lietuvių"},
            "switch_language_url": switch_language_url,
        }


_fingerprints: dict[str, tuple[int, str]] = {}


def _fingerprint_static(endpoint: str, values: dict) -> None:
    """Add ?v=<content hash> to static URLs so they can be cached for a year and change on deploy."""
    if endpoint != "static" or "filename" not in values or "v" in values:
        return
    path = Path(current_app.static_folder) / values["filename"]
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return
    cached = _fingerprints.get(str(path))
    if cached is None or cached[0] != mtime:
        cached = (mtime, hashlib.sha256(path.read_bytes()).hexdigest()[:12])
        _fingerprints[str(path)] = cached
    values["v"] = cached[1]


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
