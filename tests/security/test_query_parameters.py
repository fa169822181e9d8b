"""Query parameters that used to reach url_for: named like a view argument or like one of
url_for's own options, they made every HTML page answer 500, and the error page failed too."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from app import templating
from tests.factories import login_as, make_consultation, make_user
from tests.security.attack import app_with, assert_refused, body


def language_links(text: str) -> list[str]:
    """The href of every language-switch link on a page."""
    section = text.split('class="lang-switch"', 1)[1].split("</nav>", 1)[0]
    return [part.split('"', 1)[0].replace("&amp;", "&") for part in section.split('href="')[1:]]


@pytest.mark.parametrize(
    "path",
    [
        "/?endpoint=x",
        "/conditions/?endpoint=x&q=acne",
        "/conditions/acne?slug=x",
        "/conditions/acne?endpoint=x",
        "/consultation/new?endpoint=x",
        "/login?endpoint=x&values=y",
    ],
)
def test_a_query_parameter_named_like_a_view_argument_is_not_a_500(tmp_path, path):
    """[F7] ?endpoint=x on any page, and a query key equal to a view argument, answered 500."""
    with app_with(tmp_path, PROPAGATE_EXCEPTIONS=False) as app:
        response = app.test_client().get(path)
        text = assert_refused(response, 200)
        for link in language_links(text):
            parts = urlsplit(link)
            assert not parts.netloc, link
            query = parse_qsl(parts.query)
            assert query.count(("lang", "lt")) == 1
            # Everything else the visitor had in the address stays, as a query string only.
            assert set(query) - {("lang", "lt")} == set(parse_qsl(urlsplit(path).query)), link
        assert urlsplit(language_links(text)[0]).path == urlsplit(path).path


def test_the_private_page_and_the_request_page_survive_a_parameter_named_like_their_argument(tmp_path):
    """[F7] /c/<token>?token=x and /queue/<ref>?reference=x answered 500."""
    with app_with(tmp_path, PROPAGATE_EXCEPTIONS=False) as app:
        consultation, token = make_consultation()
        patient = app.test_client()
        text = assert_refused(patient.get(f"/c/{token}?token=x"), 200)
        assert all(urlsplit(link).path == f"/c/{token}" for link in language_links(text))
        staff = app.test_client()
        login_as(staff, make_user("dermatologist"))
        text = assert_refused(staff.get(f"/queue/{consultation.reference}?reference=x"), 200)
        assert all(urlsplit(link).path == f"/queue/{consultation.reference}" for link in language_links(text))


@pytest.mark.parametrize("option", ["_external=1", "_scheme=https", "_anchor=x", "_method=POST"])
def test_url_for_options_in_the_query_do_not_change_the_links(tmp_path, option):
    """[F7][F3] ?_external=1 made the language links absolute on the request's Host (cache poisoning)."""
    with app_with(tmp_path, PROPAGATE_EXCEPTIONS=False) as app:
        response = app.test_client().get(f"/conditions/acne?{option}")
        text = assert_refused(response, 200)
        for link in language_links(text):
            parts = urlsplit(link)
            assert (parts.scheme, parts.netloc, parts.fragment) == ("", "", ""), link
            assert parts.path == "/conditions/acne"


def test_the_error_page_itself_cannot_fail_and_keeps_the_security_headers(tmp_path, monkeypatch):
    """[F7] When drawing a page failed and the error page failed too, the server's bare page went
    out without the app's security headers."""

    def broken(code: str) -> str:
        raise RuntimeError("the language switcher broke")

    monkeypatch.setattr(templating, "switch_language_url", broken)
    with app_with(tmp_path, PROPAGATE_EXCEPTIONS=False) as app:
        response = app.test_client().get("/conditions/acne")
        assert response.status_code == 500
        assert "Something went wrong" in body(response)
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store, private"
        missing = app.test_client().get("/no/such/page")
        assert missing.status_code == 404
        assert "Content-Security-Policy" in missing.headers
