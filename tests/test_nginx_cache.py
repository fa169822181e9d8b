"""The shipped nginx site (deploy/nginx-skin-clinic.conf) micro-caches public pages and nothing else.

nginx runs with the site as shipped, only moved to loopback ports (bench/nginx.py), in front of the
real app served on loopback; every request that reaches the app is counted. Skipped where nginx is
not installed (`make bench` installs Debian's nginx; the tests need no root otherwise).
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from flask import request, request_started
from werkzeug.serving import make_server

from bench import nginx
from tests.conftest import build_app
from tests.factories import DEFAULT_PASSWORD

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(nginx.binary() is None, reason="nginx is not installed (Debian's nginx; `make bench` adds it)"),
]


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes
    cookies: list[str]  # name=value of each Set-Cookie


@dataclass
class Site:
    url: str
    reached: list[str] = field(default_factory=list)  # paths that got past nginx to the app

    def get(self, path: str, headers: dict | None = None, data: dict | None = None) -> Answer:
        sent = {"Host": nginx.HOST, **(headers or {})}
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        asked = urllib.request.Request(self.url + path, headers=sent, data=body)
        opener = urllib.request.build_opener(NoRedirects)
        try:
            with opener.open(asked, timeout=10) as answer:
                return Answer(answer.status, dict(answer.headers), answer.read(), _cookies(answer.headers))
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read(), _cookies(error.headers))


def _cookies(headers) -> list[str]:
    return [value.split(";", 1)[0] for value in headers.get_all("Set-Cookie") or []]


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    from app.extensions import db
    from tests.factories import make_user

    app = build_app(
        tmp_path,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'site.sqlite'}",
        PROXY_FIX_HOPS=1,
        TRUSTED_HOSTS=[nginx.HOST],  # the site's server_name, which every request through it carries
    )
    with app.app_context():
        db.create_all()
        make_user("dermatologist", email="dr.cache@clinic.example")
        db.session.remove()
    reached: list[str] = []

    def count(sender, **extra):
        reached.append(request.full_path.rstrip("?"))

    request_started.connect(count, app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    static = tmp_path / "static"
    static.mkdir()
    try:
        with nginx.Nginx(tmp_path / "nginx", server.server_port, static) as running:
            yield Site(running.url, reached)
    finally:
        server.shutdown()
        request_started.disconnect(count, app)


def test_a_public_page_reaches_the_app_once_and_every_reader_gets_the_copy(site: Site):
    answers = [site.get("/conditions/acne") for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 200]
    assert answers[0].body == answers[1].body == answers[2].body
    assert site.reached.count("/conditions/acne") == 1
    assert answers[2].headers["Cache-Control"].startswith("public")


def test_each_language_a_browser_asks_for_is_kept_apart(site: Site):
    lithuanian = [site.get("/conditions/acne", {"Accept-Language": "lt-LT,lt;q=0.9"}) for _ in range(2)]
    english = [site.get("/conditions/acne", {"Accept-Language": "en-GB,en;q=0.9"}) for _ in range(2)]
    assert all(b'lang="lt"' in a.body for a in lithuanian)
    assert all(b'lang="en"' in a.body for a in english)
    assert site.reached.count("/conditions/acne") == 2


def test_each_encoding_is_kept_apart(site: Site):
    import brotli

    plain = site.get("/conditions/acne")
    compressed = site.get("/conditions/acne", {"Accept-Encoding": "br"})
    again = site.get("/conditions/acne")
    assert "Content-Encoding" not in plain.headers and again.body == plain.body
    assert compressed.headers["Content-Encoding"] == "br" and brotli.decompress(compressed.body) == plain.body
    assert site.reached.count("/conditions/acne") == 2


def test_if_none_match_is_answered_from_the_copy(site: Site):
    first = site.get("/conditions/psoriasis")
    again = site.get("/conditions/psoriasis", {"If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and again.body == b""
    assert site.reached.count("/conditions/psoriasis") == 1


def test_requests_with_a_cookie_always_reach_the_app(site: Site):
    site.get("/conditions/acne")
    for _ in range(2):
        site.get("/conditions/acne", {"Cookie": "session=a-readers-own"})
    assert site.reached.count("/conditions/acne") == 3


def test_a_language_chosen_on_the_site_is_never_kept_for_others(site: Site):
    for _ in range(2):  # the answer sets the reader's cookie, so nginx keeps no copy of it
        chosen = site.get("/conditions/acne?lang=lt")
        assert chosen.cookies and b'<html lang="lt">' in chosen.body
    assert site.reached.count("/conditions/acne?lang=lt") == 2
    assert b'<html lang="en">' in site.get("/conditions/acne").body


def test_private_pages_are_never_kept(site: Site):
    for _ in range(2):
        assert site.get("/consultation/new").status == 200
        assert site.get("/c/not-a-real-token-at-all").status in (404, 410)
    assert site.reached.count("/consultation/new") == 2
    assert site.reached.count("/c/not-a-real-token-at-all") == 2


def test_signed_in_staff_get_their_own_page_not_the_shared_copy(site: Site):
    shared = site.get("/conditions/acne")  # now kept by nginx
    assert b"Sign out" not in shared.body
    signed_in = site.get("/login", data={"email": "dr.cache@clinic.example", "password": DEFAULT_PASSWORD})
    assert signed_in.status in (302, 303)
    assert any(cookie.startswith("session=") for cookie in signed_in.cookies)
    staff = site.get("/conditions/acne", {"Cookie": "; ".join(signed_in.cookies)})
    assert b"Sign out" in staff.body
    assert staff.headers["Cache-Control"] == "no-store, private"
    assert site.get("/conditions/acne").body == shared.body  # readers still get the shared copy
