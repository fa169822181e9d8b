"""Security headers on every kind of response, no-store where health data or tokens are shown,
and cookies (Secure and HSTS in production, HttpOnly and SameSite=Lax everywhere)."""

from __future__ import annotations

import pytest

from app import create_app
from app.extensions import db
from tests.factories import DEFAULT_PASSWORD, login_as, make_consultation, make_photo, make_user, submit_request


@pytest.fixture
def site(app, client):
    """A request with a photo, a signed-in admin (who sees every staff page) and a patient's link."""
    consultation, token = make_consultation()
    photo = make_photo(consultation)
    staff_client = app.test_client()
    login_as(staff_client, make_user("admin"))
    return {"ref": consultation.reference, "token": token, "key": photo.storage_key, "staff": staff_client}


# (who, method, path) for every kind of page; {ref}, {token} and {key} are filled in from `site`.
PAGES = {
    "home": ("patient", "get", "/"),
    "condition index": ("patient", "get", "/conditions/"),
    "condition article": ("patient", "get", "/conditions/acne"),
    "sitemap": ("patient", "get", "/sitemap.xml"),
    "health check (json)": ("patient", "get", "/healthz"),
    "consultation form": ("patient", "get", "/consultation/new"),
    "lost link form": ("patient", "get", "/consultation/link"),
    "private page": ("patient", "get", "/c/{token}"),
    "private photo": ("patient", "get", "/c/{token}/photos/{key}"),
    "private thumbnail": ("patient", "get", "/c/{token}/photos/{key}/thumb"),
    "data download (zip)": ("patient", "post", "/c/{token}/export"),
    "erase confirmation": ("patient", "get", "/c/{token}/erase"),
    "sign in": ("patient", "get", "/login"),
    "queue": ("staff", "get", "/queue/"),
    "request page": ("staff", "get", "/queue/{ref}"),
    "queue photo": ("staff", "get", "/queue/{ref}/photos/{key}"),
    "audit log": ("staff", "get", "/queue/{ref}/audit"),
    "staff dashboard": ("staff", "get", "/staff/"),
    "csv export": ("staff", "get", "/staff/export.csv"),
    "accounts": ("staff", "get", "/staff/users"),
    "two-step settings": ("staff", "get", "/account/two-step"),
    "two-step set-up": ("staff", "get", "/account/two-step/setup"),
    "not found": ("patient", "get", "/no/such/page"),
    "method not allowed": ("patient", "get", "/logout"),
    "forbidden": ("staff", "post", "/queue/{ref}/claim"),  # claiming is for dermatologists
}
# Pages that show health data, a private link or a one-time secret: never kept in any cache.
PRIVATE = [
    "private page",
    "private photo",
    "private thumbnail",
    "data download (zip)",
    "erase confirmation",
    "request page",
    "queue photo",
    "queue",
    "audit log",
    "staff dashboard",
    "csv export",
    "two-step set-up",
    "consultation form",
    "sign in",
]


def fetch(site, client, name):
    who, method, path = PAGES[name]
    browser = site["staff"] if who == "staff" else client
    return getattr(browser, method)(path.format(**site))


@pytest.mark.parametrize("name", list(PAGES))
def test_every_kind_of_response_carries_the_security_headers(site, client, name):
    response = fetch(site, client, name)
    assert response.status_code < 500
    csp = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert not any("unsafe-inline" in value or "unsafe-eval" in value or "*" in value for value in csp.values())
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "camera=(self)" in response.headers["Permissions-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # HTTP in development: see production below


@pytest.mark.parametrize("name", PRIVATE)
def test_private_pages_and_photos_are_never_cached(site, client, name):
    response = fetch(site, client, name)
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    assert "public" not in response.headers["Cache-Control"]


def test_the_confirmation_with_the_private_link_is_never_cached(app, client):
    submit_request(client)
    response = client.get("/consultation/received")
    assert response.status_code == 200 and "/c/" in response.get_data(as_text=True)
    assert "no-store" in response.headers["Cache-Control"]


def test_session_cookies_are_httponly_and_samesite_lax(app, client):
    derm = make_user("dermatologist")
    response = login_as(client, derm)
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies and all("HttpOnly" in c and "SameSite=Lax" in c for c in cookies)


@pytest.fixture
def production_app(tmp_path, monkeypatch):
    """The production configuration (HTTPS only), on a throwaway SQLite database."""
    monkeypatch.setenv("SECRET_KEY", "production-test-secret-key")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'production.sqlite'}")
    monkeypatch.setenv("UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://clinic.example")  # the only host production answers to
    app = create_app("production")
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_production_sends_hsts_and_secure_cookies(production_app):
    client = production_app.test_client()
    https = {"base_url": "https://clinic.example"}
    derm = make_user("dermatologist")
    page = client.get("/login", **https)
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    token = page.get_data(as_text=True).split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    form = {"email": derm.email, "password": DEFAULT_PASSWORD, "csrf_token": token}
    # No Referer header, as a browser sends none under Referrer-Policy: no-referrer: still accepted.
    signed_in = client.post("/login", data=form, **https)
    assert signed_in.status_code == 302
    cookies = page.headers.getlist("Set-Cookie") + signed_in.headers.getlist("Set-Cookie")
    assert cookies
    for cookie in cookies:
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_moves_plain_http_to_https(production_app):
    response = production_app.test_client().get("/conditions/acne", base_url="http://clinic.example")
    assert response.status_code in (301, 302)
    assert response.location.startswith("https://")
