"""Configuration classes; every setting can be overridden by an environment variable of the same name."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    # Pixels all the photos of one form post may take to decode, together (a JPEG counts at the reduced
    # scale it is decoded at, about 3 MP for a phone photo; PNG, WebP and HEIC in full). Measured from
    # the files' headers before any is decoded, so one post cannot make a worker decode without end.
    MAX_PIXELS_PER_REQUEST = 100_000_000
    # Stored photos keep a long edge of up to 2048 px (about 3 MP): well above the 800x600 that
    # store-and-forward teledermatology guidance asks for, and small enough that a 12-48 MP phone
    # photo is decoded at 1/2 or 1/4 scale straight from the JPEG (fast, little memory).
    PHOTO_MAX_EDGE = 2048
    THUMBNAIL_EDGE = 400

    # Printed at the top of every patient's letter (the PDF of an answer).
    CLINIC_NAME = "Skin Clinic"
    CLINIC_ADDRESS = "Vilnius, Lithuania"
    # The seller's registration on receipts (Lithuania: the company code, and the VAT payer code if the
    # clinic is registered for VAT); empty: the line is left out.
    CLINIC_COMPANY_CODE = ""
    CLINIC_VAT_NUMBER = ""

    RESPONSE_TARGET_HOURS = 24
    SLA_WARNING_HOURS = 4
    # A request whose red-flag answers mean "do not wait" (content/triage.yaml) is urgent: it has
    # this target instead, and is at risk in the last quarter of it (see clock.warning_for).
    URGENT_TARGET_HOURS = 4
    TRIAGE_FILE = str(BASE_DIR / "content" / "triage.yaml")
    SLA_CALENDAR = "calendar"  # "calendar": every hour counts; "clinic": opening hours only
    CLINIC_OPENING_HOUR = 8
    CLINIC_CLOSING_HOUR = 20
    CLINIC_HOLIDAYS_COUNTRY = "LT"
    DISPLAY_TIMEZONE = "Europe/Vilnius"
    # The duty rota and the escalation ladder (docs/operations-sla.md): weekly hours do not apply on
    # CLINIC_HOLIDAYS_COUNTRY's public holidays; requests still overdue this many hours after their
    # due moment go to the medical lead; AUTO_ASSIGN gives new and released requests to the on-duty
    # dermatologist with the fewest open ones.
    ROTA_HOLIDAYS_OFF = True
    ESCALATE_AFTER_HOURS = 4
    AUTO_ASSIGN = False
    # Every Monday from 08:00 (clinic time) the worker emails staff last week's figures.
    WEEKLY_SUMMARY = True

    MAIL_SERVER: str | None = None
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_DEFAULT_SENDER = "Skin Clinic <no-reply@clinic.example>"
    # True: the mail server delivers to addresses with letters outside A-Z before the @ (SMTPUTF8),
    # so the consultation form accepts them. False: the form asks for another address instead.
    MAIL_SMTPUTF8 = False
    MAIL_TIMEOUT = 10
    STAFF_ALERT_EMAILS: list[str] = []
    STAFF_ALERT_LANGUAGE = "en"  # the language of alerts to STAFF_ALERT_EMAILS (en or lt)
    PUBLIC_BASE_URL = "http://127.0.0.1:5000"
    # Host names the app answers to (Flask checks each request's Host against them; a leading dot
    # admits subdomains). Empty: the host of PUBLIC_BASE_URL, plus localhost and 127.0.0.1 in
    # development and testing. Every absolute URL the app writes is on PUBLIC_BASE_URL anyway.
    TRUSTED_HOSTS: list[str] = []
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

    # Paid consultations (docs/operations.md, "Payments"). Off: every request is free and no key is needed.
    PAYMENTS_ENABLED = False
    # The tiers a patient chooses from, in the order shown: name:hours:price, comma-separated, where
    # hours is the tier's response target and price is in euro cents (3900 = 39.00 EUR).
    PAYMENT_TIERS = "standard:24:3900,express:12:5900"
    # How much of the price goes back, automatically, when the first reply misses the tier's target.
    LATE_REFUND_PERCENT = 100
    # An unpaid request waits this long for its payment (the private link offers to pay again), then
    # goes with its photos.
    UNPAID_KEEP_HOURS = 24
    STRIPE_SECRET_KEY: str | None = None
    STRIPE_WEBHOOK_SECRET: str | None = None
    STRIPE_API_BASE = "https://api.stripe.com"
    # Where Stripe's payment page lives: the form that sends a patient there must be allowed to (CSP form-action).
    STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"

    # A dermatologist may ask to hear back in 2-12 weeks; the patient may reply for this many days
    # after the check-in email (the follow-up window, opened again).
    CHECK_IN_REPLY_DAYS = 14
    PROXY_FIX_HOPS = 0
    # True: every staff account must set up an authenticator app (asked for at the next sign-in).
    REQUIRE_TOTP = False
    TOTP_ISSUER = "Skin Clinic"
    # Fingerprinted static URLs (?v=<hash>) can be cached for a year.
    SEND_FILE_MAX_AGE_DEFAULT = 365 * 24 * 3600
    # Public pages (home, A-Z, condition pages, sitemap) for readers without a cookie: how long any
    # cache (browser, nginx's micro-cache, a CDN) may keep them, and how much longer it may answer
    # with the old copy while it fetches a fresh one (app/conditions/cache.py).
    PUBLIC_PAGE_MAX_AGE = 300
    PUBLIC_PAGE_STALE_SECONDS = 600
    # A folder where those pages are also written as files, for the shipped nginx site to send without
    # asking the app (app/published.py; docs/operations.md). Empty: not written.
    PUBLIC_PAGES_DIR = ""
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
                if not re.fullmatch(r"\s*-?\d+\s*", raw):
                    raise ConfigError(name, raw, "a whole number")
                settings[name] = int(raw)
            elif isinstance(default, list):
                settings[name] = _env_list(raw)
            else:
                settings[name] = raw
        if "DATABASE_URL" in os.environ:
            settings["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
        if "MAX_CONTENT_LENGTH" in os.environ:
            raw = os.environ["MAX_CONTENT_LENGTH"]
            if not raw.strip().isdigit():
                raise ConfigError("MAX_CONTENT_LENGTH", raw, "a whole number of bytes")
            settings["MAX_CONTENT_LENGTH"] = int(raw)


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
    WEEKLY_SUMMARY = False  # tests of the summary turn it on; others count their emails exactly


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


def load(config_name: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Return the checked settings for an environment name (default: APP_CONFIG or development).

    Tests ignore the environment, except TEST_DATABASE_URL, so that a developer's
    MAIL_SERVER or DATABASE_URL never leaks into a test run. `overrides` go on top (tests, tools);
    the result is checked with `validate`, so a wrong setting stops the process before it serves.
    """
    name = config_name or os.environ.get("APP_CONFIG", "development")
    if name not in CONFIGS:
        raise ConfigError("APP_CONFIG", name, f"one of {', '.join(CONFIGS)}")
    cls = CONFIGS[name]
    settings = {key: getattr(cls, key) for key in dir(cls) if key.isupper()}
    if name == "testing":
        if os.environ.get("TEST_DATABASE_URL"):
            settings["SQLALCHEMY_DATABASE_URI"] = os.environ["TEST_DATABASE_URL"]
    else:
        Config.apply_environment(settings)
    settings.update(overrides or {})
    if not settings.get("MAX_CONTENT_LENGTH"):
        settings["MAX_CONTENT_LENGTH"] = settings["MAX_PHOTOS"] * settings["MAX_PHOTO_BYTES"] + 2 * 1024 * 1024
    if name == "production" and not settings.get("SECRET_KEY"):
        raise ConfigError("SECRET_KEY", "", "a long random value (it must be set in production)")
    settings["CONFIG_NAME"] = name
    if not settings.get("TRUSTED_HOSTS"):
        settings["TRUSTED_HOSTS"] = default_trusted_hosts(settings.get("PUBLIC_BASE_URL"), name)
    validate(settings)
    return settings


LOCAL_HOSTS = ("localhost", "127.0.0.1")


def default_trusted_hosts(public_base_url: Any, config_name: str) -> list[str]:
    """The host of PUBLIC_BASE_URL; in development and testing also the local names a browser uses."""
    hosts = []
    if isinstance(public_base_url, str) and _base_url(public_base_url):
        hosts.append(urlsplit(public_base_url).hostname or "")
    if config_name in ("development", "testing"):
        hosts += [host for host in LOCAL_HOSTS if host not in hosts]
    return [host for host in hosts if host]


# --- Checking the settings when they are loaded ------------------------------------------------


class ConfigError(RuntimeError):
    """A setting with a value the app cannot run with: one line naming it, its value and what is allowed."""

    def __init__(self, setting: str, value: object, allowed: str):
        self.setting = setting
        super().__init__(f"Setting {setting}={value!r} is not allowed: use {allowed}.")


SUPPORTED_LANGUAGES = ("en", "lt")  # every language the interface and the articles are written in
CALENDAR_MODES = ("calendar", "clinic")


def _whole(low: int, high: int | None = None) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= (high or value)

    return check


def _rate_limit(value: Any) -> bool:
    from limits import parse_many

    try:
        return isinstance(value, str) and bool(parse_many(value))
    except ValueError:
        return False


def _time_zone(value: Any) -> bool:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _holiday_country(value: Any) -> bool:
    import holidays

    return isinstance(value, str) and value in holidays.list_supported_countries()


def _storage_backend(value: Any) -> bool:
    return value == "local" or bool(isinstance(value, str) and re.fullmatch(r"[\w.]+:\w+", value))


def _languages(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and set(value) <= set(SUPPORTED_LANGUAGES)


def _one_line(limit: int, *, required: bool) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, str) or len(value) > limit or any(ord(ch) < 32 for ch in value):
            return False
        return bool(value.strip()) or not required

    return check


def _base_url(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value))


def _origin(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", value))


# --- Payment tiers ----------------------------------------------------------------------------

TIER_PATTERN = re.compile(r"([a-z][a-z0-9_-]{0,19}):(\d{1,3}):(\d{1,7})")
MAX_TIERS = 6
# Stripe's smallest charge in euros is 0.50; the largest a clinic would ask for a consultation, 10 000.
TIER_PRICE_CENTS = (50, 1_000_000)
TIER_HOURS = (1, 24 * 14)


def parse_payment_tiers(value: str) -> list[tuple[str, int, int]]:
    """PAYMENT_TIERS as (name, hours, price in cents) in the order written; ValueError says what is wrong."""
    tiers: list[tuple[str, int, int]] = []
    for item in (part.strip() for part in str(value).split(",")):
        match = TIER_PATTERN.fullmatch(item)
        if match is None:
            raise ValueError(f"{item!r} is not name:hours:cents")
        name, hours, cents = match.group(1), int(match.group(2)), int(match.group(3))
        if not TIER_HOURS[0] <= hours <= TIER_HOURS[1]:
            raise ValueError(f"{name}: hours must be from {TIER_HOURS[0]} to {TIER_HOURS[1]}")
        if not TIER_PRICE_CENTS[0] <= cents <= TIER_PRICE_CENTS[1]:
            raise ValueError(f"{name}: the price must be from {TIER_PRICE_CENTS[0]} to {TIER_PRICE_CENTS[1]} cents")
        if name in {tier[0] for tier in tiers}:
            raise ValueError(f"{name} is named twice")
        tiers.append((name, hours, cents))
    if not 1 <= len(tiers) <= MAX_TIERS:
        raise ValueError(f"from 1 to {MAX_TIERS} tiers")
    return tiers


def _payment_tiers(value: Any) -> bool:
    try:
        parse_payment_tiers(value)
    except ValueError:
        return False
    return True


_HOST_NAME = re.compile(r"\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")


def _host_names(value: Any) -> bool:
    # Never empty: an empty list would let Flask accept any Host at all.
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(host, str) and _HOST_NAME.fullmatch(host) for host in value)
    )


# setting -> (is the value allowed?, what is allowed, in words)
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "SLA_CALENDAR": (lambda v: v in CALENDAR_MODES, "'calendar' (every hour counts) or 'clinic' (opening hours)"),
    "CLINIC_OPENING_HOUR": (_whole(0, 23), "a whole hour from 0 to 23"),
    "CLINIC_CLOSING_HOUR": (_whole(1, 24), "a whole hour from 1 to 24"),
    "CLINIC_HOLIDAYS_COUNTRY": (_holiday_country, "a country code the holidays package knows, such as LT"),
    "DISPLAY_TIMEZONE": (_time_zone, "an IANA time zone such as Europe/Vilnius"),
    "RESPONSE_TARGET_HOURS": (_whole(1, 24 * 14), "a whole number of hours from 1 to 336"),
    "SLA_WARNING_HOURS": (_whole(1, 24 * 14), "a whole number of hours from 1 to 336"),
    "ESCALATE_AFTER_HOURS": (_whole(1, 24 * 14), "a whole number of hours from 1 to 336"),
    "AUTO_ASSIGN": (lambda v: isinstance(v, bool), "true or false"),
    "ROTA_HOLIDAYS_OFF": (lambda v: isinstance(v, bool), "true or false"),
    "WEEKLY_SUMMARY": (lambda v: isinstance(v, bool), "true or false"),
    "URGENT_TARGET_HOURS": (_whole(1, 24 * 14), "a whole number of hours from 1 to 336"),
    "TRIAGE_FILE": (lambda v: isinstance(v, str) and Path(v).is_file(), "the path of the red-flag questions file"),
    "CHECK_IN_REPLY_DAYS": (_whole(1, 365), "a whole number of days from 1 to 365"),
    "LANGUAGES": (_languages, f"a comma-separated list of {', '.join(SUPPORTED_LANGUAGES)}"),
    "STAFF_ALERT_LANGUAGE": (lambda v: v in SUPPORTED_LANGUAGES, " or ".join(SUPPORTED_LANGUAGES)),
    "BABEL_DEFAULT_LOCALE": (lambda v: v in SUPPORTED_LANGUAGES, " or ".join(SUPPORTED_LANGUAGES)),
    "STORAGE_BACKEND": (_storage_backend, "'local' or 'package.module:factory'"),
    "SUBMIT_RATE_LIMIT": (_rate_limit, "a rate such as '10 per hour'"),
    "RESEND_RATE_LIMIT": (_rate_limit, "a rate such as '5 per hour'"),
    "LOGIN_RATE_LIMIT": (_rate_limit, "a rate such as '20 per 5 minutes'"),
    "PRIVATE_LINK_RATE_LIMIT": (_rate_limit, "a rate such as '120 per minute'"),
    "TWO_FACTOR_RATE_LIMIT": (_rate_limit, "a rate such as '10 per 5 minutes'"),
    "PHOTO_MAX_EDGE": (_whole(800, 8192), "a whole number of pixels from 800 to 8192"),
    "THUMBNAIL_EDGE": (_whole(100, 1024), "a whole number of pixels from 100 to 1024"),
    "MAX_PHOTOS": (_whole(1, 12), "a whole number from 1 to 12"),
    "MAX_PHOTO_BYTES": (_whole(100_000, 100 * 1024 * 1024), "a number of bytes from 100000 to 104857600"),
    "MAX_IMAGE_PIXELS": (_whole(1_000_000, 200_000_000), "a number of pixels from 1000000 to 200000000"),
    "MAX_PIXELS_PER_REQUEST": (_whole(1_000_000, 1_000_000_000), "a number of pixels from 1000000 to 1000000000"),
    "PATIENT_FOLLOW_UP_DAYS": (_whole(0, 365), "a whole number of days from 0 to 365"),
    "RETENTION_DAYS": (_whole(1), "a whole number of days, at least 1"),
    "OUTBOX_MAX_ATTEMPTS": (_whole(1, 100), "a whole number from 1 to 100"),
    "OUTBOX_BACKOFF_SECONDS": (_whole(1), "a whole number of seconds, at least 1"),
    "WORKER_INTERVAL_SECONDS": (_whole(1, 3600), "a whole number of seconds from 1 to 3600"),
    "MAIL_PORT": (_whole(1, 65535), "a port number from 1 to 65535"),
    "MAIL_SMTPUTF8": (lambda v: isinstance(v, bool), "true or false"),
    "PUBLIC_BASE_URL": (_base_url, "an http(s) address such as https://clinic.example, without a query"),
    "PROXY_FIX_HOPS": (_whole(0, 5), "a whole number of proxies from 0 to 5"),
    "CLINIC_NAME": (_one_line(120, required=True), "the clinic's name on one line, at most 120 characters"),
    "CLINIC_ADDRESS": (_one_line(300, required=False), "the clinic's address on one line, at most 300 characters"),
    "CLINIC_COMPANY_CODE": (_one_line(40, required=False), "the company code on one line, at most 40 characters"),
    "CLINIC_VAT_NUMBER": (_one_line(40, required=False), "the VAT payer code on one line, at most 40 characters"),
    "PAYMENT_TIERS": (
        _payment_tiers,
        "1 to 6 tiers as name:hours:cents, comma-separated, e.g. 'standard:24:3900,express:12:5900' "
        "(lower-case names, hours from 1 to 336, prices from 50 to 1000000 euro cents)",
    ),
    "LATE_REFUND_PERCENT": (_whole(1, 100), "a whole percent from 1 to 100"),
    "UNPAID_KEEP_HOURS": (_whole(1, 24 * 7), "a whole number of hours from 1 to 168"),
    "STRIPE_API_BASE": (_base_url, "an http(s) address such as https://api.stripe.com"),
    "STRIPE_CHECKOUT_ORIGIN": (_origin, "an origin such as https://checkout.stripe.com (no path)"),
    "TRUSTED_HOSTS": (_host_names, "a comma-separated list of host names such as clinic.example (no ports)"),
    "PUBLIC_PAGE_MAX_AGE": (_whole(0, 86400), "a whole number of seconds from 0 to 86400"),
    "PUBLIC_PAGE_STALE_SECONDS": (_whole(0, 86400), "a whole number of seconds from 0 to 86400"),
    "PUBLIC_PAGES_DIR": (lambda v: v == "" or os.path.isabs(v), "empty, or the absolute path of a folder"),
}


def validate(settings: Mapping[str, Any]) -> None:
    """Refuse settings the app cannot run with, before anything is served or sent."""
    for name, (allowed, words) in CHECKS.items():
        if name in settings and not allowed(settings[name]):
            raise ConfigError(name, settings[name], words)
    if settings["CLINIC_OPENING_HOUR"] >= settings["CLINIC_CLOSING_HOUR"]:
        raise ConfigError(
            "CLINIC_CLOSING_HOUR",
            settings["CLINIC_CLOSING_HOUR"],
            f"an hour after CLINIC_OPENING_HOUR ({settings['CLINIC_OPENING_HOUR']})",
        )
    if settings["SLA_WARNING_HOURS"] >= settings["RESPONSE_TARGET_HOURS"]:
        raise ConfigError(
            "SLA_WARNING_HOURS",
            settings["SLA_WARNING_HOURS"],
            f"fewer hours than RESPONSE_TARGET_HOURS ({settings['RESPONSE_TARGET_HOURS']})",
        )
    if settings.get("URGENT_TARGET_HOURS", 1) > settings["RESPONSE_TARGET_HOURS"]:
        raise ConfigError(
            "URGENT_TARGET_HOURS",
            settings["URGENT_TARGET_HOURS"],
            f"no more hours than RESPONSE_TARGET_HOURS ({settings['RESPONSE_TARGET_HOURS']}): urgent is faster",
        )
    for name in ("STAFF_ALERT_LANGUAGE", "BABEL_DEFAULT_LOCALE"):
        if settings[name] not in settings["LANGUAGES"]:
            raise ConfigError(name, settings[name], f"one of LANGUAGES ({', '.join(settings['LANGUAGES'])})")
    if settings.get("PAYMENTS_ENABLED"):
        _validate_payments(settings)
    catalogues = Path(settings["BABEL_TRANSLATION_DIRECTORIES"])
    for language in settings["LANGUAGES"]:
        if language != "en" and not (catalogues / language / "LC_MESSAGES" / "messages.mo").is_file():
            raise ConfigError(
                "LANGUAGES",
                ",".join(settings["LANGUAGES"]),
                f"languages with a compiled catalogue; run `pybabel compile -d translations` for {language!r}",
            )


def _validate_payments(settings: Mapping[str, Any]) -> None:
    """With payments on, the keys must be there and every tier must leave room for its at-risk warning."""
    if not re.fullmatch(r"(sk|rk)_(test|live)_\w+", str(settings.get("STRIPE_SECRET_KEY") or "")):
        raise ConfigError(
            "STRIPE_SECRET_KEY", "[hidden]", "the secret key from the Stripe dashboard (sk_test_… or sk_live_…)"
        )
    if not re.fullmatch(r"whsec_\w+", str(settings.get("STRIPE_WEBHOOK_SECRET") or "")):
        raise ConfigError(
            "STRIPE_WEBHOOK_SECRET", "[hidden]", "the webhook endpoint's signing secret from Stripe (whsec_…)"
        )
    for name, hours, _cents in parse_payment_tiers(settings["PAYMENT_TIERS"]):
        if hours <= settings["SLA_WARNING_HOURS"]:
            raise ConfigError(
                "PAYMENT_TIERS",
                settings["PAYMENT_TIERS"],
                f"tiers with more hours than SLA_WARNING_HOURS ({settings['SLA_WARNING_HOURS']}); {name} has {hours}",
            )
