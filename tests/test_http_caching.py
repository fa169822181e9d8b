"""Public pages tell every cache it may keep them (Cache-Control: public, a strong ETag, 304 answers);
private pages, staff pages and responses that set a cookie never do. And the work gunicorn's master
does before forking (app/prefork.py) leaves every public page ready in memory."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from flask import request_started, template_rendered

import config
from app.conditions.cache import SHAREABLE
from app.prefork import after_fork, warm
from app.published import public_paths
from tests.conftest import build_app
from tests.factories import login_as, make_consultation, make_user

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ("/", "/conditions/", "/conditions/acne", "/conditions/?q=acne", "/sitemap.xml", "/robots.txt")


def _is_public(response) -> bool:
    return "public" in response.headers.get("Cache-Control", "")


@pytest.mark.parametrize("path", PUBLIC)
def test_public_pages_may_be_kept_by_any_cache_with_a_strong_etag(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300, stale-while-revalidate=600"
    etag = response.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert {"Accept-Encoding", "Accept-Language"} <= {v.strip() for v in response.headers["Vary"].split(",")}
    # The server writes Date as it sends; a copy kept in memory must not repeat an old one.
    assert "Date" not in response.headers


def test_cache_lifetimes_come_from_the_settings(tmp_path):
    app = build_app(tmp_path, PUBLIC_PAGE_MAX_AGE=60, PUBLIC_PAGE_STALE_SECONDS=5)
    response = app.test_client().get("/conditions/acne")
    assert response.headers["Cache-Control"] == "public, max-age=60, stale-while-revalidate=5"


@pytest.mark.parametrize("name", ["PUBLIC_PAGE_MAX_AGE", "PUBLIC_PAGE_STALE_SECONDS"])
def test_a_negative_lifetime_is_refused_at_start_up(name):
    with pytest.raises(config.ConfigError, match=name):
        config.load("testing", {name: -1})


def test_asking_again_with_the_etag_gets_304_and_no_body(app, tmp_path):
    client = app.test_client(use_cookies=False)
    first = client.get("/conditions/psoriasis")
    # From the app itself (a fresh process has nothing in memory yet), then from the copy in memory.
    fresh = build_app(tmp_path / "fresh").test_client(use_cookies=False)
    for answering in (fresh, client):
        again = answering.get("/conditions/psoriasis", headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == first.headers["ETag"]
        assert again.headers["Cache-Control"] == first.headers["Cache-Control"]
        assert "Content-Encoding" not in again.headers
    stale = client.get("/conditions/psoriasis", headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.data == first.data


def test_each_encoding_has_its_own_etag(app):
    client = app.test_client(use_cookies=False)
    plain = client.get("/conditions/acne")
    gzipped = client.get("/conditions/acne", headers={"Accept-Encoding": "gzip"})
    assert gzip.decompress(gzipped.data) == plain.data
    assert gzipped.headers["ETag"] != plain.headers["ETag"]
    # The plain page's ETag does not validate the gzipped bytes.
    again = client.get("/conditions/acne", headers={"Accept-Encoding": "gzip", "If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 200 and again.headers["Content-Encoding"] == "gzip"


def test_an_edited_article_gets_a_new_etag(tmp_path):
    import shutil

    from app.conditions.library import articles

    folder = tmp_path / "content"
    folder.mkdir()
    shutil.copy(ROOT / "content" / "conditions" / "acne.md", folder / "acne.md")
    app = build_app(tmp_path, CONTENT_DIR=str(folder))
    client = app.test_client(use_cookies=False)
    before = client.get("/conditions/acne").headers["ETag"]
    with (folder / "acne.md").open("a", encoding="utf-8") as article:
        article.write("\nOne more sentence from the editor.\n")
    articles(app)._checked_at = float("-inf")  # look at the folder now rather than within a second
    after = client.get("/conditions/acne", headers={"If-None-Match": before})
    assert after.status_code == 200 and after.headers["ETag"] != before
    assert "One more sentence from the editor." in after.get_data(as_text=True)


def test_signed_in_staff_get_no_store_and_no_etag(app, client):
    login_as(client, make_user("dermatologist"))
    for path in ("/", "/conditions/acne", "/conditions/"):
        response = client.get(path)
        assert response.headers["Cache-Control"] == "no-store, private", path
        assert "ETag" not in response.headers


def test_a_page_that_sets_a_cookie_is_never_shareable(app):
    client = app.test_client(use_cookies=False)
    chosen = client.get("/conditions/acne?lang=lt")
    assert "Set-Cookie" in chosen.headers
    assert chosen.headers["Cache-Control"] == "no-store, private"
    assert "ETag" not in chosen.headers
    # and it was not kept in memory either: asked again, the app answers (and sets the cookie) again
    assert "Set-Cookie" in client.get("/conditions/acne?lang=lt").headers


def test_a_page_with_a_flashed_message_is_never_shareable(app, client):
    with client.session_transaction() as session:
        session["_flashes"] = [("info", "Something for this reader only")]
    response = client.get("/conditions/acne")
    assert response.headers["Cache-Control"] == "no-store, private" and "ETag" not in response.headers


def test_private_and_staff_pages_are_never_shareable(app, client):
    consultation, token = make_consultation()
    staff = make_user("staff")
    paths = ["/consultation/new", f"/c/{token}", "/login", "/healthz"]
    for path in paths:
        response = client.get(path)
        assert not _is_public(response) and "ETag" not in response.headers, path
    login_as(client, staff)
    for path in ("/staff/", "/queue/", f"/queue/{consultation.reference}", "/staff/export.csv"):
        response = client.get(path)
        assert response.status_code in (200, 403), path
        assert "no-store" in response.headers["Cache-Control"] and "ETag" not in response.headers, path


def test_a_missing_condition_is_not_marked_shareable(client):
    response = client.get("/conditions/no-such-condition")
    assert response.status_code == 404 and not _is_public(response) and "ETag" not in response.headers


def test_head_is_shareable_like_get(client):
    response = client.head("/conditions/acne")
    assert _is_public(response) and response.data == b""


# --- Before the fork: gunicorn.conf.py (preload_app) and app/prefork.py --------------------------------


def test_the_master_renders_every_public_page_before_forking(app):
    paths = public_paths(app)
    assert "/" in paths and "/conditions/acne" in paths and len(paths) > 10
    asked = warm(app)
    assert asked == len(paths) * len(app.config["LANGUAGES"]) * 3
    rendered: list[str] = []
    reached: list[str] = []

    def record_template(sender, template, context, **extra):
        rendered.append(template.name)

    def record_request(sender, **extra):
        reached.append("flask")

    template_rendered.connect(record_template, app)
    request_started.connect(record_request, app)
    try:
        # A reader with a cookie goes through Flask, and still gets the page the master rendered.
        client = app.test_client(use_cookies=False)
        for language in app.config["LANGUAGES"]:
            headers = {"Accept-Language": language, "Accept-Encoding": "br", "Cookie": "consent=yes"}
            response = client.get("/conditions/acne", headers=headers)
            assert response.status_code == 200 and response.headers["Content-Encoding"] == "br"
    finally:
        template_rendered.disconnect(record_template, app)
        request_started.disconnect(record_request, app)
    assert reached == ["flask", "flask"] and rendered == []


def test_warming_leaves_other_wsgi_apps_alone():
    assert warm(lambda environ, start_response: []) == 0
    after_fork(object())  # nothing to do, and no error


def test_after_the_fork_a_worker_opens_its_own_database_connections(tmp_path):
    from sqlalchemy import text

    from app.extensions import db

    app = build_app(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'file.sqlite'}")
    with app.app_context():
        db.session.execute(text("SELECT 1"))
        db.session.remove()
        pool = db.engine.pool
        assert pool.checkedin() == 1  # the connection the master used, back in its pool
        after_fork(app)
        assert db.engine.pool is not pool and db.engine.pool.checkedin() == 0
        assert db.session.execute(text("SELECT 1")).scalar() == 1


def test_gunicorn_preloads_the_app_and_hooks_the_fork():
    from tests.gunicorn_conf_loader import load_module

    settings = load_module()
    assert settings.preload_app is True
    assert callable(settings.when_ready) and callable(settings.post_fork)
    # Workers are recycled rarely: bench/leak.py measured ~2 MiB per 100,000 requests (docs/performance.md).
    assert settings.max_requests >= 20_000


def test_shareable_is_set_only_for_reads(app):
    with app.test_request_context("/sitemap.xml", method="POST"):
        from flask import request

        from app.conditions.cache import shareable

        shareable(lambda: "x")()
        assert SHAREABLE not in request.environ
