"""Application-wide behaviour: configuration, security headers, compression, static caching, error pages."""

from __future__ import annotations

import re

import pytest

import config as app_config
from app import create_app


def test_production_refuses_to_start_without_a_secret_key(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production")


def test_environment_variables_override_settings_with_their_types(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("RESPONSE_TARGET_HOURS", "12")
    monkeypatch.setenv("MAIL_USE_TLS", "true")
    monkeypatch.setenv("STAFF_ALERT_EMAILS", "a@clinic.example, b@clinic.example")
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/elsewhere.sqlite")
    settings = app_config.load("production")
    assert settings["RESPONSE_TARGET_HOURS"] == 12
    assert settings["MAIL_USE_TLS"] is True
    assert settings["STAFF_ALERT_EMAILS"] == ["a@clinic.example", "b@clinic.example"]
    assert settings["SQLALCHEMY_DATABASE_URI"] == "sqlite:////tmp/elsewhere.sqlite"
    assert settings["SESSION_COOKIE_SECURE"] is True


def test_unknown_config_name_is_refused():
    with pytest.raises(RuntimeError, match="APP_CONFIG"):
        app_config.load("staging")


def test_every_response_carries_the_security_headers(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "geolocation=()" in response.headers["Permissions-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_pages_load_nothing_from_other_hosts(client):
    for path in ("/", "/conditions/", "/conditions/acne"):
        page = client.get(path).get_data(as_text=True)
        assert not re.search(r'(src|href)="(https?:)?//', page), path


def test_public_pages_are_compressed_and_static_files_fingerprinted(client):
    response = client.get("/conditions/acne", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    page = client.get("/conditions/acne").get_data(as_text=True)
    css_url = re.search(r'href="(/static/css/app\.css\?v=[0-9a-f]{12})"', page).group(1)
    css = client.get(css_url)
    assert css.status_code == 200
    assert "max-age=31536000" in css.headers["Cache-Control"]


def test_oversized_body_gets_the_friendly_413_page(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/consultation/new", data={"description": "x" * 4096})
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)


def test_error_pages_keep_the_site_layout(client):
    page = client.get("/nowhere").get_data(as_text=True)
    assert "Skin Clinic" in page and "Go to the home page" in page


def test_forms_work_over_https_although_pages_send_no_referrer(tmp_path):
    """Browsers send no Referer (Referrer-Policy: no-referrer); the CSRF token alone must suffice."""
    from tests.conftest import build_app, empty_database, reset_database

    app = build_app(tmp_path, WTF_CSRF_ENABLED=True)
    reset_database(app)
    try:
        client = app.test_client()
        page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        response = client.post(
            "/login",
            base_url="https://localhost",
            data={"csrf_token": token, "email": "nobody@clinic.example", "password": "wrong password"},
        )
        assert response.status_code != 400
        assert "did not match" in response.get_data(as_text=True)
    finally:
        empty_database(app)


def test_production_redirects_to_https_but_health_checks_answer_over_http(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "production-secret-for-this-test")
    monkeypatch.setenv("UPLOAD_DIR", str(tmp_path))
    app = create_app(
        "production", {"SQLALCHEMY_DATABASE_URI": "sqlite://", "PUBLIC_BASE_URL": "https://clinic.example"}
    )
    client = app.test_client()
    assert client.get("/conditions/acne", base_url="http://clinic.example").status_code == 302
    health = client.get("/healthz")  # by whatever address the probe uses
    assert health.status_code == 200 and health.json["status"] == "ok"
