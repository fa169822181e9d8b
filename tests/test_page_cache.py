"""Public pages are rendered once for anonymous readers; personal pages never come from the cache."""

from __future__ import annotations

from contextlib import contextmanager

from flask import template_rendered

from app.conditions.library import EXTENSION_KEY, articles
from tests.factories import login_as, make_user


@contextmanager
def rendered_templates(app):
    names: list[str] = []

    def record(sender, template, context, **extra):
        names.append(template.name)

    template_rendered.connect(record, app)
    try:
        yield names
    finally:
        template_rendered.disconnect(record, app)


def test_an_anonymous_condition_page_is_rendered_once(app, client):
    with rendered_templates(app) as names:
        first = client.get("/conditions/acne")
        second = client.get("/conditions/acne")
    assert names.count("conditions/condition.html") == 1
    assert first.data == second.data and second.status_code == 200


def test_each_language_and_query_has_its_own_entry(app, client):
    with rendered_templates(app) as names:
        client.get("/conditions/", query_string={"q": "acne"})
        client.get("/conditions/", query_string={"q": "psoriasis"})
        english = client.get("/conditions/acne").get_data(as_text=True)
        lithuanian = client.get("/conditions/acne", query_string={"lang": "lt"}).get_data(as_text=True)
    assert names.count("conditions/index.html") == 2
    assert names.count("conditions/condition.html") == 2
    assert english != lithuanian


def test_an_edited_article_is_rendered_again(app, client):
    with rendered_templates(app) as names:
        client.get("/conditions/acne")
        articles().version += 1
        client.get("/conditions/acne")
    assert names.count("conditions/condition.html") == 2


def test_each_app_builds_its_library_once_and_keeps_it_in_its_extensions(app, tmp_path):
    from app.conditions.content import Library
    from tests.conftest import build_app

    assert isinstance(app.extensions[EXTENSION_KEY], Library)
    assert articles() is articles(app) is app.extensions[EXTENSION_KEY]
    other = build_app(tmp_path / "other", CONTENT_DIR=str(tmp_path))
    assert articles(other) is not articles(app) and articles(other).folder == tmp_path


def test_signed_in_staff_never_get_a_cached_page(app, client):
    client.get("/conditions/acne")  # an anonymous copy is now cached
    login_as(client, make_user("dermatologist"))
    response = client.get("/conditions/acne")
    assert "Sign out" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store, private"  # nor in any cache on the way


def test_compressed_bodies_are_cached_per_encoding_and_decompress_to_the_page(app, client):
    import gzip

    import brotli

    plain = client.get("/conditions/acne").data
    gz = client.get("/conditions/acne", headers={"Accept-Encoding": "gzip"})
    br = client.get("/conditions/acne", headers={"Accept-Encoding": "br"})
    assert gz.headers["Content-Encoding"] == "gzip" and gzip.decompress(gz.data) == plain
    assert br.headers["Content-Encoding"] == "br" and brotli.decompress(br.data) == plain


@contextmanager
def requests_reaching_flask(app):
    from flask import request_started

    seen: list[str] = []

    def record(sender, **extra):
        from flask import request

        seen.append(request.path)

    request_started.connect(record, app)
    try:
        yield seen
    finally:
        request_started.disconnect(record, app)


def test_cookie_less_visitors_are_served_whole_responses_from_memory(app):
    client = app.test_client(use_cookies=False)
    with requests_reaching_flask(app) as seen:
        first = client.get("/conditions/acne", headers={"Accept-Encoding": "br"})
        second = client.get("/conditions/acne", headers={"Accept-Encoding": "br"})
    assert seen == ["/conditions/acne"]
    assert second.data == first.data
    assert second.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]
    assert second.headers["Content-Encoding"] == "br"


def test_language_and_encoding_keep_separate_entries(app):
    client = app.test_client(use_cookies=False)
    with requests_reaching_flask(app) as seen:
        client.get("/conditions/acne", headers={"Accept-Language": "lt"})
        lithuanian = client.get("/conditions/acne", headers={"Accept-Language": "lt"})
        english = client.get("/conditions/acne", headers={"Accept-Language": "en"})
        gzipped = client.get("/conditions/acne", headers={"Accept-Language": "en", "Accept-Encoding": "gzip"})
    assert len(seen) == 3
    assert 'lang="lt"' in lithuanian.get_data(as_text=True)
    assert 'lang="en"' in english.get_data(as_text=True)
    assert gzipped.headers["Content-Encoding"] == "gzip"


def test_responses_that_set_a_cookie_or_requests_with_one_always_reach_the_app(app):
    client = app.test_client(use_cookies=False)
    with requests_reaching_flask(app) as seen:
        chosen = client.get("/conditions/acne?lang=lt")
        client.get("/conditions/acne?lang=lt")
        client.get("/conditions/acne", headers={"Cookie": "session=anything"})
        client.get("/conditions/acne", headers={"Cookie": "session=anything"})
    assert "Set-Cookie" in chosen.headers
    assert len(seen) == 4


def test_private_pages_are_never_kept(app):
    client = app.test_client(use_cookies=False)
    with requests_reaching_flask(app) as seen:
        client.get("/consultation/new")
        client.get("/consultation/new")
        client.get("/c/not-a-real-token-at-all")
        client.get("/c/not-a-real-token-at-all")
    assert len(seen) == 4
