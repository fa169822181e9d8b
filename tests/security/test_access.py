"""Reaching what is not yours: other requests' photos and references, guessed and broken private
links, password guessing, roles, and sessions that should have ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, User
from tests.factories import DEFAULT_PASSWORD, login_as, make_consultation, make_photo, make_user
from tests.security.attack import app_with, assert_refused

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


# --- The private page -----------------------------------------------------------------------


def test_another_requests_photo_cannot_be_opened_with_your_link(app, client):
    mine, my_token = make_consultation(email="me@example.com")
    theirs, _ = make_consultation(email="them@example.com")
    their_photo = make_photo(theirs)
    make_photo(mine)
    for path in (
        f"/c/{my_token}/photos/{their_photo.storage_key}",
        f"/c/{my_token}/photos/{their_photo.storage_key}/thumb",
        f"/c/{my_token}/photos/{their_photo.thumbnail_key}",
    ):
        assert_refused(client.get(path), 404)
    viewed = db.session.execute(select(AuditEvent).where(AuditEvent.action == "photo_viewed")).first()
    assert viewed is None


def test_a_reference_is_not_a_key_to_the_private_page(app, client):
    consultation, _ = make_consultation()
    for path in (f"/c/{consultation.reference}", f"/c/{consultation.reference.lower()}", f"/c/{consultation.id}"):
        assert_refused(client.get(path), 404)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda token: token[:20], id="truncated"),
        pytest.param(lambda token: token[:-1], id="last character missing"),
        pytest.param(lambda token: token + "x", id="one character extra"),
        pytest.param(lambda token: token.swapcase(), id="case changed"),
        pytest.param(lambda token: "A" * 43, id="made up"),
        pytest.param(lambda token: token * 4, id="very long"),
        pytest.param(lambda token: "..%2F..%2Fqueue%2F", id="path traversal"),
        pytest.param(lambda token: "' OR '1'='1", id="sql injection"),
    ],
)
def test_broken_and_made_up_private_links_are_a_plain_404(app, client, mangle):
    consultation, token = make_consultation()
    make_photo(consultation)
    text = assert_refused(client.get(f"/c/{mangle(token)}"), 404)
    assert consultation.reference not in text
    assert_refused(client.get(f"/c/{mangle(token)}/photos/{consultation.photos[0].storage_key}"), 404)
    assert_refused(client.post(f"/c/{mangle(token)}/export"), 404)


def test_an_erased_requests_link_stops_working(app, client):
    consultation, token = make_consultation()
    key = make_photo(consultation).storage_key
    assert client.post(f"/c/{token}/erase", data={"confirm": "y"}).status_code == 303
    assert_refused(client.get(f"/c/{token}"), 404)
    assert_refused(client.get(f"/c/{token}/photos/{key}"), 404)


# --- The queue ------------------------------------------------------------------------------


def test_a_photo_key_of_another_request_is_refused_on_the_queue(app, client):
    first, _ = make_consultation()
    second, _ = make_consultation()
    photo = make_photo(second)
    login_as(client, make_user("dermatologist"))
    assert_refused(client.get(f"/queue/{first.reference}/photos/{photo.storage_key}"), 404)
    for key in ("..%2F..%2F..%2Fetc%2Fpasswd", "../../config.py", photo.storage_key.replace(".jpg", ".png")):
        assert_refused(client.get(f"/queue/{second.reference}/photos/{key}"), 404)
    assert client.get(f"/queue/{second.reference}/photos/{photo.storage_key}").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/queue/", "/queue/DRM-2345AB", "/staff/", "/staff/users", "/staff/export.csv", "/account/two-step"],
)
def test_anonymous_visitors_are_sent_to_sign_in(app, client, path):
    response = client.get(path)
    assert_refused(response, 302)
    assert response.location.startswith("/login")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/staff/users"),
        ("get", "/staff/users/new"),
        ("get", "/staff/users/{admin}"),
        ("post", "/staff/users/{admin}/role"),
        ("post", "/staff/users/{admin}/deactivate"),
        ("post", "/staff/users/{admin}/password"),
        ("get", "/staff/"),
        ("get", "/staff/export.csv"),
    ],
)
def test_a_dermatologist_cannot_reach_admin_pages(app, client, method, path):
    admin = make_user("admin")
    login_as(client, make_user("dermatologist"))
    response = getattr(client, method)(path.format(admin=admin.id), data={"role": "dermatologist"})
    assert_refused(response, 403)
    assert db.session.get(User, admin.id).role == "admin"


# --- Passwords and sessions -----------------------------------------------------------------


def test_thirty_wrong_passwords_lock_the_account_and_then_hit_the_rate_limit(tmp_path):
    with app_with(tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="20 per 5 minutes") as app:
        derm = make_user("dermatologist")
        client = app.test_client()
        with time_machine.travel(START, tick=False):
            codes = [
                client.post("/login", data={"email": derm.email, "password": f"guess {n}"}).status_code
                for n in range(30)
            ]
            assert codes == [200] * 20 + [429] * 10
            db.session.expire_all()
            assert db.session.get(User, derm.id).paused_until == START + timedelta(minutes=15)
            assert assert_refused(client.get("/queue/"), 302)
            # The dermatologist, at their own address, is not locked out by a stranger (F15).
            own = app.test_client()
            response = own.post(
                "/login",
                data={"email": derm.email, "password": DEFAULT_PASSWORD},
                environ_base={"REMOTE_ADDR": "198.51.100.7"},
            )
            assert response.status_code == 302
        failed = db.session.execute(select(AuditEvent).where(AuditEvent.action == "failed_login")).scalars().all()
        assert len(failed) == 20  # the 20 that reached the check


def test_an_expired_session_cannot_open_requests_or_photos(app, client):
    consultation, _ = make_consultation()
    photo = make_photo(consultation)
    with time_machine.travel(START, tick=False) as traveller:
        login_as(client, make_user("dermatologist"))
        assert client.get(f"/queue/{consultation.reference}").status_code == 200
        traveller.shift(timedelta(minutes=31))
        for path in (f"/queue/{consultation.reference}", f"/queue/{consultation.reference}/photos/{photo.storage_key}"):
            response = client.get(path)
            assert_refused(response, 302)
            assert response.location.startswith("/login")
        assert client.get("/queue/").status_code == 302  # signed out, not merely redirected once


def test_a_tampered_session_cookie_is_ignored(app, client):
    derm = make_user("dermatologist")
    login_as(client, derm)
    cookie = client.get_cookie("session")
    client.set_cookie("session", cookie.value[:-4] + "AAAA")
    assert_refused(client.get("/queue/"), 302)
