"""The shipped nginx site (deploy/nginx-skin-clinic.conf) micro-caches public pages and nothing else.

nginx runs with the site as shipped, only moved to loopback ports (bench/nginx.py), in front of the
real app served on loopback; every request that reaches the app is counted. Skipped where nginx is
not installed (`make bench` installs Debian's nginx; the tests need no root otherwise).
"""

from __future__ import annotations

import gzip
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from flask import Flask, request, request_started
from werkzeug.serving import make_server

from app.negotiation import preferred_language
from app.published import publish
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


@contextmanager
def serving(tmp_path, *, published: bool) -> Iterator[tuple[Flask, Site]]:
    """The app on loopback behind the site; with `published`, its public pages written where the site
    looks for them (PUBLIC_PAGES_DIR), as gunicorn's master does at start."""
    from app.extensions import db
    from tests.factories import make_user

    app = build_app(
        tmp_path,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'site.sqlite'}",
        PROXY_FIX_HOPS=1,
        TRUSTED_HOSTS=[nginx.HOST],  # the site's server_name, which every request through it carries
        PUBLIC_BASE_URL=f"https://{nginx.HOST}",
    )
    with app.app_context():
        db.create_all()
        make_user("dermatologist", email="dr.cache@clinic.example")
        db.session.remove()
    pages = tmp_path / "pages"
    if published:
        publish(app, pages)
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
        with nginx.Nginx(tmp_path / "nginx", server.server_port, static, pages) as running:
            yield app, Site(running.url, reached)
    finally:
        server.shutdown()
        request_started.disconnect(count, app)


@pytest.fixture
def site(tmp_path) -> Iterator[Site]:
    """Nothing published: every public page comes from the app, through the micro-cache."""
    with serving(tmp_path, published=False) as (_, running):
        yield running


@pytest.fixture
def published(tmp_path) -> Iterator[tuple[Flask, Site]]:
    with serving(tmp_path, published=True) as both:
        yield both


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


# Published pages (PUBLIC_PAGES_DIR): nginx sends the file and the app never hears of the request.

# Headers that nginx writes for any file it sends, or that differ on every answer.
OWN_HEADERS = {"Date", "Server", "ETag", "Last-Modified", "Accept-Ranges", "Connection", "Strict-Transport-Security"}


def _as_the_app_sends_it(app: Flask, path: str, headers: dict | None = None):
    client = app.test_client(use_cookies=False)
    return client.get(path, base_url=app.config["PUBLIC_BASE_URL"], headers=headers or {})


@pytest.mark.parametrize("path", ["/", "/conditions/", "/conditions/acne"])
def test_a_published_page_is_sent_as_a_file_with_the_apps_headers(published, path):
    app, site = published
    answer = site.get(path)
    from_app = _as_the_app_sends_it(app, path)
    assert answer.status == 200 and answer.body == from_app.get_data()
    assert site.reached == []
    sent = {name: value for name, value in answer.headers.items() if name not in OWN_HEADERS}
    expected = {name: value for name, value in from_app.headers.items() if name not in OWN_HEADERS}
    assert sent == expected
    assert answer.headers["ETag"].startswith('"')  # a strong validator, of nginx's making


def test_published_pages_carry_the_apps_hsts(published, tmp_path):
    _, site = published
    production_like = build_app(
        tmp_path / "hsts", FORCE_HTTPS=True, TRUSTED_HOSTS=[nginx.HOST], PUBLIC_BASE_URL=f"https://{nginx.HOST}"
    )
    expected = _as_the_app_sends_it(production_like, "/conditions/acne").headers["Strict-Transport-Security"]
    assert site.get("/conditions/acne").headers["Strict-Transport-Security"] == expected


def test_a_published_page_is_sent_gzipped_and_answers_if_none_match(published):
    _, site = published
    plain = site.get("/conditions/psoriasis")
    zipped = site.get("/conditions/psoriasis", {"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.body) == plain.body
    again = site.get("/conditions/psoriasis", {"If-None-Match": plain.headers["ETag"]})
    assert again.status == 304 and again.body == b""
    assert site.reached == []


# What browsers send, answered from the files; then headers nginx leaves to the app.
FROM_FILES = ["", "en-GB,en;q=0.9", "lt-LT,lt;q=0.9,en-US;q=0.8,en;q=0.7", "lt,en-US;q=0.7,en;q=0.3", "en-GB,lt;q=0.9"]
FROM_THE_APP = [
    "de-DE,de;q=0.9,lt;q=0.8,en;q=0.5",  # the first language is not offered
    "en;q=0.5, lt;q=0.9",  # not in order of preference
    "en, lt",  # two equally wanted
    "LT",  # upper case: no folder of that name
    "*",
]


def test_nginx_and_the_app_give_every_reader_the_same_language(published):
    app, site = published
    from_files = []
    for header in FROM_FILES + FROM_THE_APP:
        answer = site.get("/conditions/acne", {"Accept-Language": header} if header else {})
        language = preferred_language(header, app.config["LANGUAGES"]) or app.config["BABEL_DEFAULT_LOCALE"]
        assert f'<html lang="{language}">'.encode() in answer.body, header
        if "Last-Modified" in answer.headers:  # nginx's mark of a file; the app sends none
            from_files.append(header)
    assert from_files == FROM_FILES


@pytest.mark.parametrize(
    ("path", "headers", "data"),
    [
        ("/conditions/acne", {"Cookie": "session=a-readers-own"}, None),
        ("/conditions/acne?lang=lt", None, None),
        ("/conditions/?q=acne", None, None),
        ("/conditions/acne", None, {"anything": "x"}),
        ("/consultation/new", None, None),
    ],
)
def test_a_cookie_a_query_a_form_or_another_page_goes_to_the_app(published, path, headers, data):
    _, site = published
    site.get(path, headers, data)
    assert site.reached == [path]


def test_a_page_not_published_comes_from_the_app(published, tmp_path):
    _, site = published
    for page in (tmp_path / "pages").rglob("acne.html*"):
        page.unlink()
    assert site.get("/conditions/acne").status == 200
    assert site.reached == ["/conditions/acne"]
