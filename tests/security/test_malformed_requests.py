"""Malformed requests that used to answer 500: a multipart part without a name, and numbers in
paths and queries larger than any row id or page."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import FAILED, OutboundEmail
from tests.factories import login_as, make_consultation, make_user
from tests.security.attack import app_with, assert_refused

NAMELESS_FIELD = b"--B\r\nContent-Disposition: form-data\r\n\r\nhello\r\n--B--\r\n"
NAMELESS_FILE = (
    b'--B\r\nContent-Disposition: form-data; filename="rash.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    b"\xff\xd8\xff\r\n--B--\r\n"
)


@pytest.mark.parametrize("part", [NAMELESS_FIELD, NAMELESS_FILE], ids=["field", "file"])
@pytest.mark.parametrize("path", ["/login", "/consultation/new", "/consultation/link", "/logout", "/login/code"])
def test_a_multipart_part_without_a_name_is_a_400(tmp_path, path, part):
    """[F8] Flask-WTF's CSRF check tripped over the None key of a nameless part: 500 before sign-in."""
    with app_with(tmp_path, WTF_CSRF_ENABLED=True, PROPAGATE_EXCEPTIONS=False) as app:
        response = app.test_client().post(path, data=part, content_type="multipart/form-data; boundary=B")
        assert_refused(response, 400)


def test_a_nameless_part_is_refused_on_the_private_page_too(tmp_path):
    """[F8] The reply form checks its CSRF token itself; a nameless part is refused before that as well."""
    with app_with(tmp_path, WTF_CSRF_ENABLED=True, PROPAGATE_EXCEPTIONS=False) as app:
        _, token = make_consultation()
        response = app.test_client().post(
            f"/c/{token}/reply", data=NAMELESS_FILE, content_type="multipart/form-data; boundary=B"
        )
        assert_refused(response, 400)


HUGE = "9223372036854775808"  # 2**63: past a 64-bit integer


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", f"/staff/users/{HUGE}"),
        ("post", f"/staff/users/{HUGE}/deactivate"),
        ("post", f"/staff/users/{HUGE}/role"),
        ("post", f"/staff/users/{HUGE}/password"),
        ("get", f"/staff/outbox/{HUGE}"),
        ("post", f"/staff/outbox/{HUGE}/retry"),
        ("get", "/staff/users/2147483648"),  # 2**31: past PostgreSQL's INTEGER
        ("get", "/staff/users/" + "9" * 400),
        ("get", "/queue/?page=9223372036854775807"),
        ("get", "/queue/?page=" + "9" * 400),
    ],
)
def test_huge_numbers_in_paths_and_pages_are_a_404(tmp_path, method, path):
    """[F9] Integers past the database's range answered 500 (an overflow deep in the query)."""
    with app_with(tmp_path, PROPAGATE_EXCEPTIONS=False) as app:
        client = app.test_client()
        login_as(client, make_user("admin"))
        assert_refused(getattr(client, method)(path), 404)


def test_ordinary_ids_and_pages_still_work(tmp_path):
    """[F9] The bound leaves every real id and page alone."""
    with app_with(tmp_path, PROPAGATE_EXCEPTIONS=False) as app:
        client = app.test_client()
        admin = make_user("admin")
        login_as(client, admin)
        assert client.get(f"/staff/users/{admin.id}").status_code == 200
        assert client.get("/queue/?page=2").status_code == 200
        email = OutboundEmail(recipient="a@example.com", template="link_resent", status=FAILED)
        db.session.add(email)
        db.session.commit()
        assert client.get(f"/staff/outbox/{email.id}").status_code == 200
