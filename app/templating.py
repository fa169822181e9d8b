"""Jinja filters and globals shared by every template."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from babel.dates import get_datetime_format
from flask import Flask, current_app, request, url_for
from flask_babel import format_date, format_datetime, format_time, get_locale
from flask_babel import lazy_gettext as _l
from werkzeug.routing import BuildError

from app.timeutil import as_utc


def register(app: Flask) -> None:
    from app.consultations.lateness import LATE_REASON_LABELS, NO_REASON

    app.add_template_filter(when, "when")
    # Reasons for late replies by key, in the reader's (or the email's) language when shown.
    app.jinja_env.globals["late_reason_labels"] = {
        **{str(reason): label for reason, label in LATE_REASON_LABELS.items()},
        NO_REASON: _l("No reason given"),
    }
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
    static_folder = current_app.static_folder  # None only for an app without static files
    if endpoint != "static" or static_folder is None or "filename" not in values or "v" in values:
        return
    path = Path(static_folder) / values["filename"]
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
    """A moment in the clinic's time zone, formatted for the reader's language.

    "medium" is the language's medium date with its short time ("Nov 25, 2026, 2:00 PM",
    "2026-11-25 14:00"): seconds mean nothing to a patient waiting for an answer.
    """
    if moment is None:
        return ""
    moment = as_utc(moment)
    if style != "medium":
        return format_datetime(moment, style)
    # Babel annotates a DateTimePattern, but the locale data holds the plain "{1}, {0}" string.
    pattern = str(get_datetime_format("medium", locale=get_locale()))
    return pattern.replace("{1}", format_date(moment, "medium")).replace("{0}", format_time(moment, "short"))


def iso_utc(moment: datetime | None) -> str:
    """Machine-readable UTC time for <time datetime> and the countdown script."""
    if moment is None:
        return ""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def switch_language_url(code: str) -> str:
    """The current page in another language (the choice is remembered in the session).

    Only `lang` changes. The page's own path (its view arguments) is rebuilt from the route, and
    every other query parameter is copied back as a query string, never handed to url_for: a
    parameter named like a view argument or one of url_for's options (endpoint, _external,
    _anchor, _scheme...) must not change what is built, or fail it.
    """
    home = url_for("conditions.home", lang=code)
    # A page shown after a POST (a form sent back with corrections) switches to the same page
    # reloaded by GET, when it has one, rather than sending the reader to the home page.
    if not request.endpoint or request.url_rule is None or "GET" not in (request.url_rule.methods or ()):
        return home
    try:
        path = url_for(request.endpoint, **(request.view_args or {}))
    except (BuildError, TypeError, ValueError):  # an endpoint that cannot be rebuilt: the home page
        return home
    query = [(key, value) for key, value in request.args.items(multi=True) if key != "lang"]
    return f"{path}{'&' if '?' in path else '?'}{urlencode([*query, ('lang', code)])}"
