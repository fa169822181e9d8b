"""Links from the route table, for emails and the command line, where there is no request.

The rules queue emails with link *specs* (`link("queue.detail", reference=...)`): an endpoint and its
values, stored with the email. The outbox turns them into absolute URLs on PUBLIC_BASE_URL when it
renders the email, from the same route table the app serves, so a renamed route cannot leave a
dead link in an email, and the worker and the CLI build them exactly as the web does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from werkzeug.routing import MapAdapter

LinkSpec = dict[str, Any]


def link(endpoint: str, **values: str) -> LinkSpec:
    """A link to `endpoint`, to be made absolute when the email is rendered."""
    return {"endpoint": endpoint, "values": values}


def is_link(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {"endpoint", "values"}


def _adapter(app: Flask) -> MapAdapter:
    adapters = app.extensions.setdefault("external_links", {})
    base = app.config["PUBLIC_BASE_URL"]
    if base not in adapters:
        parts = urlsplit(base)
        adapters[base] = app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme)
    return adapters[base]


def external_url(endpoint: str, **values: Any) -> str:
    """The absolute URL of `endpoint` on PUBLIC_BASE_URL (never the Host a request came with)."""
    return _adapter(current_app).build(endpoint, values, force_external=True)


def resolve(value: Any) -> Any:
    """`value` with every link spec in it (in lists and dicts too) turned into its absolute URL."""
    if is_link(value):
        return external_url(value["endpoint"], **value["values"])
    if isinstance(value, list):
        return [resolve(item) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item) for key, item in value.items()}
    return value
