"""The application factory: configuration, extensions, blueprints, error pages and CLI."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask, abort, has_request_context, jsonify, render_template, request, session
from sqlalchemy import event, text
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

import config as app_config
from app import logs
from app.conditions import cache as page_cache
from app.extensions import babel, compress, csrf, db, limiter, login_manager, mail, migrate, talisman
from app.negotiation import preferred_language

ROOT = Path(__file__).resolve().parent.parent

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "object-src": "'none'",
}
PERMISSIONS_POLICY = {
    "camera": "(self)",
    "microphone": "()",
    "geolocation": "()",
    "payment": "()",
    "usb": "()",
    "interest-cohort": "()",
}


def create_app(config_name: str | None = None, overrides: dict | None = None) -> Flask:
    """Build the app for an environment (development, testing, production)."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(app_config.load(config_name, overrides))
    logs.install()
    os.makedirs(app.instance_path, exist_ok=True)
    os.makedirs(app.config["UPLOAD_DIR"], exist_ok=True)

    _init_extensions(app)
    app.url_map.converters["int"] = DatabaseIdConverter  # before any route is added
    _register_blueprints(app)
    _register_security_hooks(app)
    _register_error_pages(app)
    _register_template_helpers(app)
    _register_health(app)

    from app import payments_provider
    from app.cli import register_cli
    from app.consultations.policies import Policies

    # Built once from the checked settings; the rules get them explicitly (app/runtime.py for the doors).
    app.extensions["clinic_policies"] = Policies.from_config(app.config)
    app.extensions["payment_provider"] = payments_provider.from_config(app.config)
    register_cli(app)
    _install_middleware(app)
    return app


# Row ids are 32-bit INTEGER columns on PostgreSQL; a larger number in a path is no row of ours.
LARGEST_ID = 2**31 - 1


class DatabaseIdConverter(IntegerConverter):
    """`<int:…>` in every route: numbers beyond any row id are a 404, never a database overflow."""

    def __init__(self, url_map: Map, *args: Any, **options: Any) -> None:
        options.setdefault("max", LARGEST_ID)
        super().__init__(url_map, *args, **options)


class HostAgnosticHealthCheck:
    """WSGI middleware: /healthz answers whatever Host a probe sends.

    Load balancers and monitors probe each machine by its address on the private network, not by
    the clinic's public name, so TRUSTED_HOSTS would refuse them. The health answer holds no URL
    and nothing built from the host, so for that path alone the host is set to a trusted one.
    """

    def __init__(self, wsgi_app, host: str) -> None:
        self.wsgi_app = wsgi_app
        self.host = host

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            environ["HTTP_HOST"] = self.host
        return self.wsgi_app(environ, start_response)


def _install_middleware(app: Flask) -> None:
    """The anonymous page cache sits inside ProxyFix, so it sees the scheme and host the client used."""
    from app.conditions.library import articles

    # Wrapping app.wsgi_app is how Flask's documentation adds WSGI middleware; mypy sees a method there.
    app.wsgi_app = HostAgnosticHealthCheck(app.wsgi_app, app.config["TRUSTED_HOSTS"][0])  # type: ignore[method-assign]
    app.wsgi_app = page_cache.AnonymousResponseCache(  # type: ignore[method-assign]
        app.wsgi_app, app.config["LANGUAGES"], articles(app).current_version
    )
    if app.config["PROXY_FIX_HOPS"]:
        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # middleware, as above
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )


def content_security_policy(config) -> dict[str, str]:
    """The CSP; with payments on, the consultation form and the private page may send the browser on to
    the provider's payment page (form-action also governs the redirect that follows a form)."""
    policy = dict(CONTENT_SECURITY_POLICY)
    if config.get("PAYMENTS_ENABLED"):
        policy["form-action"] = f"'self' {config['STRIPE_CHECKOUT_ORIGIN']}"
    return policy


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    mail.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=_select_locale, timezone_selector=lambda: app.config["DISPLAY_TIMEZONE"])
    talisman.init_app(
        app,
        content_security_policy=content_security_policy(app.config),
        force_https=app.config["FORCE_HTTPS"],
        strict_transport_security=app.config["FORCE_HTTPS"],
        strict_transport_security_max_age=31536000,
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        session_cookie_http_only=True,
        frame_options="DENY",
        referrer_policy="no-referrer",
        permissions_policy=PERMISSIONS_POLICY,
    )
    page_cache.init_app(app)  # before Flask-Compress, which reads its cache settings at init
    compress.init_app(app)
    app.after_request(_compress_public_responses)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"

    from app import models  # noqa: F401  (register the mappers before first use)

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _tune_sqlite)


PUBLIC_ENDPOINTS = {
    "static",
    "conditions.home",
    "conditions.index",
    "conditions.condition",
    "conditions.sitemap",
    "conditions.robots",
}


def _compress_public_responses(response):
    """gzip/brotli for public pages and static files only (private pages stay uncompressed); then,
    on the bytes as sent, the headers that let any cache keep a shareable page (Cache-Control, ETag)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return page_cache.public_cache_headers(compress.after_request(response))
    return response


def _tune_sqlite(dbapi_connection, _record) -> None:
    """WAL and a busy timeout let several processes share one SQLite file without 'database is locked'."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _select_locale() -> str:
    from flask import current_app

    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI and worker: emails pick their language with force_locale
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = request.args.get("lang")
    if chosen is not None and chosen in languages:
        session["lang"] = chosen
        return chosen
    if session.get("lang") in languages:
        return session["lang"]
    return (
        preferred_language(request.headers.get("Accept-Language"), languages)
        or current_app.config["BABEL_DEFAULT_LOCALE"]
    )


def _register_blueprints(app: Flask) -> None:
    from app.auth import bp as auth_bp
    from app.conditions import bp as conditions_bp
    from app.intake import bp as intake_bp
    from app.payments import bp as payments_bp
    from app.queue import bp as queue_bp
    from app.staff import bp as staff_bp

    app.register_blueprint(conditions_bp)
    limiter.exempt(conditions_bp)  # public articles: nothing to protect, and the hottest pages
    app.register_blueprint(intake_bp)
    app.register_blueprint(queue_bp, url_prefix="/queue")
    app.register_blueprint(staff_bp, url_prefix="/staff")
    app.register_blueprint(auth_bp)
    app.register_blueprint(payments_bp)


# Blueprints whose forms may carry photos; every other POST gets FORM_MAX_CONTENT_LENGTH.
UPLOAD_BLUEPRINTS = {"intake"}


def _register_security_hooks(app: Flask) -> None:
    """A small body limit outside the patient pages, and nothing but public pages in any cache."""

    def limit_request_bodies() -> None:
        if request.blueprint not in UPLOAD_BLUEPRINTS:
            limit, ceiling = app.config["FORM_MAX_CONTENT_LENGTH"], app.config.get("MAX_CONTENT_LENGTH")
            request.max_content_length = min(limit, ceiling) if ceiling else limit

    # First of all hooks, before CSRFProtect reads the form: a 40 MB post to /login is refused unread;
    # then, still before CSRFProtect (which trips over it), a form part without a name is refused.
    app.before_request_funcs.setdefault(None, []).insert(0, limit_request_bodies)
    app.before_request_funcs[None].insert(1, refuse_nameless_parts)
    app.before_request(refuse_nul_characters)

    @app.after_request
    def no_store_unless_public(response):
        # Queue pages, private links, photos, exports and forms carry health data or one-time tokens.
        # An error page is never worth keeping: the next try may well succeed.
        public = (request.endpoint in PUBLIC_ENDPOINTS or request.endpoint == "healthz") and response.status_code < 400
        if not public and not response.cache_control.no_store:
            response.headers["Cache-Control"] = "no-store, private"
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


def refuse_nameless_parts() -> None:
    """Every field a browser sends has a name; a multipart part without one (a None key) is a
    malformed request, answered 400 before any code that expects names reads the form."""
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and (None in request.form or None in request.files):
        abort(400)


def refuse_nul_characters() -> None:
    """No text anyone types holds a NUL character, and PostgreSQL refuses to store one: a clean 400
    (404 in the path) here, instead of a database error deep inside a view."""
    if "\x00" in request.path:
        abort(404)
    texts = [value for values in (*request.args.listvalues(), *request.form.listvalues()) for value in values]
    texts += [upload.filename or "" for uploads in request.files.listvalues() for upload in uploads]
    if any("\x00" in text for text in texts):
        abort(400)


# The last resort when the error page itself cannot be drawn: plain HTML with nothing to fail.
BARE_ERROR_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{code}</title></head>'
    "<body><h1>{code}</h1><p>Something went wrong. Please try again in a few minutes.</p>"
    '<p><a href="/">Skin Clinic</a></p></body></html>'
)


def _register_error_pages(app: Flask) -> None:
    def render_error(error: HTTPException):
        code = error.code or 500
        if isinstance(error, SecurityError):
            # A Host not in TRUSTED_HOSTS: nothing may be built from it, not even a link home.
            return BARE_ERROR_PAGE.format(code=code), code, {"Content-Type": "text/html; charset=utf-8"}
        if request.accept_mimetypes.best == "application/json":
            return jsonify(error=error.name), code
        return _error_page(code, error)

    for code in (400, 403, 404, 405, 410, 413, 429):
        app.register_error_handler(code, render_error)

    @app.errorhandler(500)
    def internal_error(error):
        try:
            db.session.rollback()
        except Exception:  # the database may be what failed; the page must still go out
            logging.getLogger(__name__).exception("rollback after an error failed")
        return _error_page(500, error)


def _error_page(code: int, error: Exception):
    """The error page, which must never fail itself: a failure here would leave the server's bare
    page, without the security headers the app adds to every response it returns."""
    try:
        return render_template("errors/error.html", code=code, error=error), code
    except Exception:  # anything at all: the page below cannot fail, and the log keeps the cause
        logging.getLogger(__name__).exception("the error page could not be drawn")
        return BARE_ERROR_PAGE.format(code=int(code)), code, {"Content-Type": "text/html; charset=utf-8"}


def _register_template_helpers(app: Flask) -> None:
    from app import templating

    templating.register(app)


def _register_health(app: Flask) -> None:
    @app.get("/healthz")
    @limiter.exempt
    @talisman(force_https=False)  # load balancers probe over plain HTTP on the private network
    def healthz():
        try:
            db.session.execute(text("SELECT 1"))
        except Exception:  # any database failure means unhealthy; the reason goes to the log
            logging.getLogger(__name__).exception("health check: database unreachable")
            return jsonify(status="error", database="unreachable"), 503
        return jsonify(status="ok", database="ok")
