"""Configuration classes; every setting can be overridden by an environment variable of the same name."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Config:
    """Defaults shared by every environment."""

    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI = f"sqlite:///{INSTANCE_DIR / 'dermatology.sqlite'}"
    # Database errors must never quote the values they failed on (names, symptoms) into a log or traceback.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"hide_parameters": True}
    UPLOAD_DIR = str(INSTANCE_DIR / "uploads")
    # "local" (files under UPLOAD_DIR) or "module:factory" for another store (see app/storage.py).
    STORAGE_BACKEND = "local"
    CONTENT_DIR = str(BASE_DIR / "content" / "conditions")

    # Photos: 1-6 files, each at most MAX_PHOTO_BYTES; the body limit leaves room for the form.
    MAX_PHOTOS = 6
    MAX_PHOTO_BYTES = 20 * 1024 * 1024
    MAX_CONTENT_LENGTH: int | None = None  # derived in finalise() unless set
    # Only the patient pages take photos; every other form (sign-in, queue, staff) has this much smaller limit.
    FORM_MAX_CONTENT_LENGTH = 1024 * 1024
    MAX_IMAGE_PIXELS = 60_000_000
    # Stored photos keep a long edge of up to 2048 px (about 3 MP): well above the 800x600 that
    # store-and-forward teledermatology guidance asks for, and small enough that a 12-48 MP phone
    # photo is decoded at 1/2 or 1/4 scale straight from the JPEG (fast, little memory).
    PHOTO_MAX_EDGE = 2048
    THUMBNAIL_EDGE = 400

    RESPONSE_TARGET_HOURS = 24
    SLA_WARNING_HOURS = 4
    SLA_CALENDAR = "calendar"  # "calendar": every hour counts; "clinic": opening hours only
    CLINIC_OPENING_HOUR = 8
    CLINIC_CLOSING_HOUR = 20
    CLINIC_HOLIDAYS_COUNTRY = "LT"
    DISPLAY_TIMEZONE = "Europe/Vilnius"

    MAIL_SERVER: str | None = None
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_DEFAULT_SENDER = "Skin Clinic <no-reply@clinic.example>"
    MAIL_TIMEOUT = 10
    STAFF_ALERT_EMAILS: list[str] = []
    STAFF_ALERT_LANGUAGE = "en"  # the language of alerts to STAFF_ALERT_EMAILS (en or lt)
    PUBLIC_BASE_URL = "http://127.0.0.1:5000"
    OUTBOX_MAX_ATTEMPTS = 8
    OUTBOX_BACKOFF_SECONDS = 60
    WORKER_INTERVAL_SECONDS = 30

    RATELIMIT_STORAGE_URI = "memory://"
    # If Redis goes away, count in memory per process rather than failing sign-ins and submits.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_ENABLED = True
    SUBMIT_RATE_LIMIT = "10 per hour"
    RESEND_RATE_LIMIT = "5 per hour"
    LOGIN_RATE_LIMIT = "20 per 5 minutes"
    PRIVATE_LINK_RATE_LIMIT = "120 per minute"
    TWO_FACTOR_RATE_LIMIT = "10 per 5 minutes"

    LANGUAGES = ["en", "lt"]
    BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "translations")
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_DEFAULT_TIMEZONE = "Europe/Vilnius"
    CONSENT_VERSION = "2026-11"
    RETENTION_DAYS = 3650

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = 8 * 3600
    STAFF_IDLE_TIMEOUT_SECONDS = 30 * 60
    FORCE_HTTPS = False
    WTF_CSRF_TIME_LIMIT = 6 * 3600
    # Pages send Referrer-Policy: no-referrer (private links are tokens in URLs), so browsers send no
    # Referer; Flask-WTF's HTTPS referrer check would refuse every form. The CSRF token, checked on
    # every POST, and SameSite=Lax cookies carry the protection.
    WTF_CSRF_SSL_STRICT = False
    PATIENT_FOLLOW_UP_DAYS = 14
    PROXY_FIX_HOPS = 0
    # True: every staff account must set up an authenticator app (asked for at the next sign-in).
    REQUIRE_TOTP = False
    TOTP_ISSUER = "Skin Clinic"
    # Fingerprinted static URLs (?v=<hash>) can be cached for a year.
    SEND_FILE_MAX_AGE_DEFAULT = 365 * 24 * 3600
    # Compression is applied only to public pages and assets (see app/__init__.py), never to
    # private pages, where reflected input next to secrets would invite BREACH-style attacks.
    COMPRESS_REGISTER = False
    COMPRESS_MIMETYPES = [
        "text/html",
        "text/css",
        "text/javascript",
        "application/javascript",
        "application/json",
        "application/xml",
        "image/svg+xml",
        "text/plain",
    ]

    @staticmethod
    def apply_environment(settings: dict) -> None:
        """Override settings from environment variables, typed like their defaults."""
        for name, default in list(settings.items()):
            if name not in os.environ:
                continue
            raw = os.environ[name]
            if isinstance(default, bool):
                settings[name] = _env_bool(raw)
            elif isinstance(default, int):
                settings[name] = int(raw)
            elif isinstance(default, list):
                settings[name] = _env_list(raw)
            else:
                settings[name] = raw
        if "DATABASE_URL" in os.environ:
            settings["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
        if "MAX_CONTENT_LENGTH" in os.environ:
            settings["MAX_CONTENT_LENGTH"] = int(os.environ["MAX_CONTENT_LENGTH"])


class DevelopmentConfig(Config):
    SECRET_KEY = "development-only-not-secret"  # noqa: S105  (never used in production)
    DEBUG = False


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-only-not-secret"  # noqa: S105
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = False
    SERVER_NAME = None
    PUBLIC_BASE_URL = "http://localhost"
    STAFF_ALERT_EMAILS = ["alerts@clinic.example"]


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    FORCE_HTTPS = True
    PROXY_FIX_HOPS = 1


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load(config_name: str | None = None) -> dict:
    """Return the settings for an environment name (default: APP_CONFIG or development).

    Tests ignore the environment, except TEST_DATABASE_URL, so that a developer's
    MAIL_SERVER or DATABASE_URL never leaks into a test run.
    """
    name = config_name or os.environ.get("APP_CONFIG", "development")
    if name not in CONFIGS:
        raise RuntimeError(f"Unknown APP_CONFIG {name!r}; use one of {', '.join(CONFIGS)}")
    cls = CONFIGS[name]
    settings = {key: getattr(cls, key) for key in dir(cls) if key.isupper()}
    if name == "testing":
        if os.environ.get("TEST_DATABASE_URL"):
            settings["SQLALCHEMY_DATABASE_URI"] = os.environ["TEST_DATABASE_URL"]
    else:
        Config.apply_environment(settings)
    if not settings.get("MAX_CONTENT_LENGTH"):
        settings["MAX_CONTENT_LENGTH"] = settings["MAX_PHOTOS"] * settings["MAX_PHOTO_BYTES"] + 2 * 1024 * 1024
    if name == "production" and not settings.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY must be set in production")
    settings["CONFIG_NAME"] = name
    return settings
