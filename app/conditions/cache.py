"""Public pages rendered once and kept in memory, with their compressed forms.

Condition pages are the same for every anonymous reader of a language, so rendering the
templates and compressing the HTML on every request is wasted work. Pages for signed-in
staff (a CSRF token in the sign-out form, and drafts) or with a flashed message are never
cached, here or anywhere else: they are sent with Cache-Control: no-store, private.
Entries are keyed by the scheme and host, the full path, the language and the library's
version, so an edited article shows at once; the cache is bounded (least recently used
entries go first).

Shareable pages also tell every cache on the way (the browser, nginx's micro-cache, a CDN)
that it may keep them: Cache-Control: public with PUBLIC_PAGE_MAX_AGE and
PUBLIC_PAGE_STALE_SECONDS, and a strong ETag of the bytes sent, so a reader who asks again
with If-None-Match gets a 304 and no body. A response that sets a cookie is never shareable.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import wraps

from flask import Flask, Request, Response, current_app, make_response, request, session
from flask_babel import get_locale
from flask_login import current_user
from werkzeug.http import parse_etags, remove_entity_headers

from app.conditions.library import articles
from app.negotiation import preferred_language

MAX_ENTRIES = 512
NOT_CACHED = "-"
ENVIRON_KEY = "skin_clinic.page_cache_key"


class LRUCache:
    """A small thread-safe least-recently-used map (also the backend Flask-Compress caches in)."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        if key is None or key.endswith(NOT_CACHED):
            return None
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def set(self, key, value) -> None:
        if key is None or key.endswith(NOT_CACHED):
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def init_app(app: Flask) -> None:
    """One cache of pages and one of compressed bodies per app (Flask-Compress builds its own)."""
    app.extensions["page_cache"] = LRUCache()
    app.config["COMPRESS_CACHE_BACKEND"] = LRUCache
    app.config["COMPRESS_CACHE_KEY"] = page_key


def page_key(req: Request) -> str:
    """COMPRESS_CACHE_KEY and the page cache's key; ends in NOT_CACHED when the page is personal.

    Worked out once per request: the page cache and Flask-Compress both ask for it.
    """
    key = req.environ.get(ENVIRON_KEY)
    if key is None:
        key = req.environ[ENVIRON_KEY] = _key_for(req)
    return key


def _key_for(req: Request) -> str:
    if not _shareable():
        return NOT_CACHED
    # Scheme and host too: pages build their absolute URLs on PUBLIC_BASE_URL, but should one ever
    # depend on the request's host, a visitor on one host must never get a page made for another.
    return f"{req.scheme}://{req.host}{req.full_path}|{get_locale()}|{articles().current_version()}"


def _shareable() -> bool:
    # A signed-in reader is staff, whose pages may show drafts: never shareable.
    return request.method in ("GET", "HEAD") and not current_user.is_authenticated and not session.get("_flashes")


def cached_page(view: Callable) -> Callable:
    """Serve the view's HTML from memory for anonymous readers; render it on a miss.

    A personal page (signed-in staff, a flashed message) is rendered afresh and marked
    no-store, so no cache between here and the browser keeps a staff view or a draft either.
    """

    @wraps(view)
    def wrapper(*args, **kwargs):
        pages: LRUCache = current_app.extensions["page_cache"]
        key = page_key(request)
        if key.endswith(NOT_CACHED):
            response = make_response(view(*args, **kwargs))
            response.headers["Cache-Control"] = "no-store, private"
            return response
        request.environ[SHAREABLE] = True
        html = pages.get(key)
        if html is None:
            html = view(*args, **kwargs)
            if isinstance(html, str):
                pages.set(key, html)
        return html

    return wrapper


SHAREABLE = "skin_clinic.shareable_page"


def shareable(view: Callable) -> Callable:
    """Mark a page that is the same for everyone who asks (sitemap.xml, robots.txt) as shareable,
    without keeping its body here: caches on the way may keep it (see public_cache_headers)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if request.method in ("GET", "HEAD"):
            request.environ[SHAREABLE] = True
        return view(*args, **kwargs)

    return wrapper


def public_cache_headers(response: Response) -> Response:
    """Cache-Control: public and a strong ETag on a shareable page, answering If-None-Match with 304.

    Runs after compression, so the ETag names the exact bytes sent (each encoding has its own).
    A shareable page whose response sets a cookie (a language chosen with ?lang=) is sent
    no-store, private instead; every other page keeps what the app's other hooks gave it.
    """
    if not request.environ.get(SHAREABLE) or response.status_code != 200 or response.is_streamed:
        return response
    if _sets_cookie(response):
        request.environ.pop(SHAREABLE, None)
        response.headers["Cache-Control"] = "no-store, private"
        return response
    config = current_app.config
    response.headers["Cache-Control"] = (
        f"public, max-age={config['PUBLIC_PAGE_MAX_AGE']}, stale-while-revalidate={config['PUBLIC_PAGE_STALE_SECONDS']}"
    )
    response.vary.add("Accept-Language")  # a reader without a cookie gets the language their browser asks for
    response.add_etag(overwrite=True)  # strong: a hash of the body as sent
    response.make_conditional(request)
    # The server adds Date as it sends the response; the one make_conditional writes would be
    # repeated (stale) by every copy of the response kept in memory.
    response.headers.pop("Date", None)
    return response


def _sets_cookie(response: Response) -> bool:
    """Whether this response sets (or removes) a cookie; the session's is only added after this runs."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return "Set-Cookie" in response.headers or session.modified or app.session_interface.should_set_cookie(app, session)


class AnonymousResponseCache:
    """WSGI middleware: whole responses to cookie-less GETs of public pages, served from memory.

    A visitor with no cookie at all has no session, no sign-in and no flashed message, so the
    response (security headers and compressed body included) is the same for everyone who
    asks for the same URL in the same language and encoding; it acts like a reverse proxy's
    micro-cache in front of the app. Only responses the view marked shareable (SHAREABLE in
    the environ), with status 200 and no Set-Cookie, are kept; an edited article changes the
    library's version and with it every key.
    """

    def __init__(self, wsgi_app, languages: list[str], library_version: Callable[[], int]):
        self.wsgi_app = wsgi_app
        self.languages = languages
        self.library_version = library_version
        self.entries = LRUCache()

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("HTTP_COOKIE"):
            return self.wsgi_app(environ, start_response)
        key = self._key(environ)
        hit = self.entries.get(key)
        if hit is not None:
            status, headers, body = hit
            if _not_modified(environ, headers):
                kept = list(headers)
                remove_entity_headers(kept)  # in place: a 304 has no body, so no Content-* headers
                start_response("304 Not Modified", kept)
                return []
            start_response(status, list(headers))
            return [body]
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured.update(status=status, headers=headers)
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        if self._storable(environ, captured):
            headers = tuple((name, value) for name, value in captured["headers"] if name.lower() != "date")
            self.entries.set(key, (captured["status"], headers, body))
        return [body]

    def _key(self, environ) -> str:
        language = preferred_language(environ.get("HTTP_ACCEPT_LANGUAGE"), self.languages)
        return "|".join(
            (
                environ.get("wsgi.url_scheme", ""),
                environ.get("HTTP_HOST", ""),
                environ.get("PATH_INFO", ""),
                environ.get("QUERY_STRING", ""),
                language or "",
                environ.get("HTTP_ACCEPT_ENCODING", ""),
                environ.get("HTTP_ACCEPT", ""),
                str(self.library_version()),
            )
        )

    @staticmethod
    def _storable(environ, captured: dict) -> bool:
        return (
            environ.get(SHAREABLE) is True
            and captured.get("status", "").startswith("200")
            and not any(name.lower() == "set-cookie" for name, _ in captured.get("headers", ()))
        )


def _not_modified(environ, headers) -> bool:
    """Whether the reader's If-None-Match names the stored response's ETag (weak comparison, RFC 9110)."""
    wanted = environ.get("HTTP_IF_NONE_MATCH")
    if not wanted:
        return False
    etag = next((value for name, value in headers if name.lower() == "etag"), None)
    if etag is None:
        return False
    return parse_etags(wanted).contains_weak(etag.removeprefix("W/").strip('"'))
