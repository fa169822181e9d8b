"""The Host header: the app answers only to its own names (TRUSTED_HOSTS) and builds every
absolute URL on PUBLIC_BASE_URL, so a forged Host can never end up in a cached public page."""

from __future__ import annotations

import json
import re

import pytest

import config as app_config
from tests.factories import submit_request
from tests.security.attack import app_with, assert_refused, body

PUBLIC = "https://clinic.example"


def json_ld_url(text: str) -> str:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', text, re.S)
    assert match, "no JSON-LD on the page"
    return json.loads(match.group(1))["url"]


def test_the_json_ld_url_is_on_public_base_url_whatever_host_was_asked(tmp_path):
    """[F3] After requests with another Host, ordinary visitors got that host in the page's JSON-LD url."""
    with app_with(tmp_path, PUBLIC_BASE_URL=PUBLIC, TRUSTED_HOSTS=["clinic.example", "other.example"]) as app:
        client = app.test_client()
        first = client.get("/conditions/acne", base_url="http://other.example")
        assert json_ld_url(body(first)) == f"{PUBLIC}/conditions/acne"
        # The page cache now holds the page: an ordinary visitor gets the same, right, URL.
        again = app.test_client().get("/conditions/acne", base_url=PUBLIC)
        assert json_ld_url(body(again)) == f"{PUBLIC}/conditions/acne"


def test_a_host_the_clinic_does_not_use_is_refused_before_any_page_is_built(tmp_path):
    """[F3] Any Host was answered, and absolute URLs were built on it."""
    with app_with(tmp_path, PUBLIC_BASE_URL=PUBLIC, PROPAGATE_EXCEPTIONS=False) as app:
        client = app.test_client()
        for path in ("/", "/conditions/acne", "/conditions/?q=acne", "/sitemap.xml", "/login", "/consultation/new"):
            response = client.get(path, headers={"Host": "evil.example"})
            text = assert_refused(response, 400)
            assert "evil.example" not in text
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        posted = client.post("/login", data={"email": "a@b.c"}, headers={"Host": "evil.example"})
        assert_refused(posted, 400)
        # The clinic's own name and the local names of development and testing are answered.
        assert client.get("/conditions/acne", base_url=PUBLIC).status_code == 200
        assert client.get("/conditions/acne", base_url="http://localhost").status_code == 200
        page = client.get("/conditions/acne", base_url="http://127.0.0.1:5000")
        assert json_ld_url(body(page)) == f"{PUBLIC}/conditions/acne"


def test_health_probes_by_address_are_answered(tmp_path):
    """[F3] Load balancers probe by the machine's address; /healthz holds no URL, so any host may ask."""
    with app_with(tmp_path, PUBLIC_BASE_URL=PUBLIC, PROPAGATE_EXCEPTIONS=False) as app:
        response = app.test_client().get("/healthz", headers={"Host": "10.0.0.11:8000"})
        assert response.status_code == 200 and response.json == {"status": "ok", "database": "ok"}


def test_sitemap_robots_and_the_confirmation_link_are_on_public_base_url(tmp_path):
    """[F3] Absolute URLs only from PUBLIC_BASE_URL, never from the request."""
    with app_with(tmp_path, PUBLIC_BASE_URL=PUBLIC, TRUSTED_HOSTS=["localhost"]) as app:
        client = app.test_client()
        sitemap = body(client.get("/sitemap.xml"))
        locations = re.findall(r"<loc>(.*?)</loc>", sitemap)
        assert locations and all(location.startswith(f"{PUBLIC}/") for location in locations)
        assert f"Sitemap: {PUBLIC}/sitemap.xml" in body(client.get("/robots.txt"))
        sent = submit_request(client)
        assert sent.status_code == 303
        links = re.findall(r'https?://[^"<\s]+/c/[A-Za-z0-9_-]+', body(client.get(sent.location)))
        assert links and all(link.startswith(f"{PUBLIC}/c/") for link in links)


def test_trusted_hosts_default_to_the_public_host_and_local_names_only_outside_production():
    """[F3] TRUSTED_HOSTS: the host of PUBLIC_BASE_URL; localhost forms in development and testing."""
    production = app_config.load("production", {"SECRET_KEY": "x" * 40, "PUBLIC_BASE_URL": PUBLIC})
    assert production["TRUSTED_HOSTS"] == ["clinic.example"]
    testing = app_config.load("testing", {"PUBLIC_BASE_URL": PUBLIC})
    assert testing["TRUSTED_HOSTS"] == ["clinic.example", "localhost", "127.0.0.1"]
    chosen = app_config.load("production", {"SECRET_KEY": "x" * 40, "TRUSTED_HOSTS": ["clinic.example", ".clinic.lt"]})
    assert chosen["TRUSTED_HOSTS"] == ["clinic.example", ".clinic.lt"]


@pytest.mark.parametrize("hosts", [["clinic.example:443"], ["*"], ["https://clinic.example"], ["evil example"]])
def test_a_wrong_trusted_hosts_setting_stops_the_app(hosts):
    """[F3] A host list Flask could not match (or an empty one, which would admit every host) is refused."""
    with pytest.raises(app_config.ConfigError, match="TRUSTED_HOSTS"):
        app_config.load("testing", {"TRUSTED_HOSTS": hosts})
