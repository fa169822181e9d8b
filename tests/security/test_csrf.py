"""Cross-site request forgery: with CSRF protection on (as in production), every form post without
the session's token, or with a token from another session, is refused and changes nothing."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import ConsultationRequest, User
from tests.factories import DEFAULT_PASSWORD, intake_answers, make_consultation, make_user, photo_bytes
from tests.security.attack import app_with, assert_refused, nothing_stored


@pytest.fixture
def csrf_app(tmp_path):
    with app_with(tmp_path, WTF_CSRF_ENABLED=True) as app:
        yield app


def token_on(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, user: User) -> None:
    data = {"email": user.email, "password": DEFAULT_PASSWORD, "csrf_token": token_on(client, "/login")}
    assert client.post("/login", data=data).status_code == 302


def forged_token(app) -> str:
    """A well-formed token, signed with the right key, but for another visitor's session."""
    return token_on(app.test_client(), "/login")


def with_token(data: dict, how: str, app) -> dict:
    if how == "forged":
        return {**data, "csrf_token": forged_token(app)}
    return data


HOW = ["missing", "forged"]


@pytest.mark.parametrize("how", HOW)
def test_consultation_form(csrf_app, how):
    client = csrf_app.test_client()
    key = re.search(r'name="submission_key" type="hidden" value="([^"]+)"', client.get("/consultation/new").text)[1]
    data = {**intake_answers(), "submission_key": key, "photos": [(io.BytesIO(photo_bytes()), "rash.jpg")]}
    with nothing_stored(csrf_app):
        response = client.post("/consultation/new", data=with_token(data, how, csrf_app))
        assert "has expired, so nothing has been sent yet" in assert_refused(response, 400)


@pytest.mark.parametrize("how", HOW)
def test_lost_link_form(csrf_app, how):
    make_consultation(email="ona@example.com")
    with nothing_stored(csrf_app):
        response = csrf_app.test_client().post(
            "/consultation/link", data=with_token({"email": "ona@example.com"}, how, csrf_app)
        )
        assert_refused(response, 400)


@pytest.mark.parametrize("how", HOW)
def test_sign_in(csrf_app, how):
    derm = make_user("dermatologist")
    client = csrf_app.test_client()
    client.get("/login")
    response = client.post(
        "/login", data=with_token({"email": derm.email, "password": DEFAULT_PASSWORD}, how, csrf_app)
    )
    assert_refused(response, 400)
    assert client.get("/queue/").status_code == 302


@pytest.mark.parametrize("how", HOW)
def test_claiming_a_request(csrf_app, how):
    derm = make_user("dermatologist")
    consultation, _ = make_consultation()
    client = csrf_app.test_client()
    sign_in(client, derm)
    assert_refused(client.post(f"/queue/{consultation.reference}/claim", data=with_token({}, how, csrf_app)), 400)
    db.session.expire_all()
    assert db.session.get(ConsultationRequest, consultation.id).claimed_by_id is None


@pytest.mark.parametrize("how", HOW)
def test_answering_a_request(csrf_app, how):
    derm = make_user("dermatologist")
    consultation, _ = make_consultation(status="in_review", claimed_by=derm)
    client = csrf_app.test_client()
    sign_in(client, derm)
    answer = {"assessment": "Contact dermatitis.", "treatment": "Stop the new soap."}
    with nothing_stored(csrf_app):
        response = client.post(f"/queue/{consultation.reference}/answer", data=with_token(answer, how, csrf_app))
        assert_refused(response, 400)


@pytest.mark.parametrize("how", HOW)
def test_creating_a_staff_account(csrf_app, how):
    admin = make_user("admin")
    client = csrf_app.test_client()
    sign_in(client, admin)
    form = {
        "name": "Mallory",
        "email": "mallory@evil.example",
        "role": "admin",
        "password": "x" * 20,
        "confirm": "x" * 20,
    }
    assert_refused(client.post("/staff/users/new", data=with_token(form, how, csrf_app)), 400)
    assert db.session.execute(select(func.count(User.id))).scalar_one() == 1


@pytest.mark.parametrize("how", HOW)
def test_a_patient_reply(csrf_app, how):
    _, token = make_consultation(status="awaiting_patient")
    with nothing_stored(csrf_app):
        response = csrf_app.test_client().post(f"/c/{token}/reply", data=with_token({"body": "Forged."}, how, csrf_app))
        assert_refused(response, 400)


@pytest.mark.parametrize("how", HOW)
def test_erasing_a_request(csrf_app, how):
    consultation, token = make_consultation()
    response = csrf_app.test_client().post(f"/c/{token}/erase", data=with_token({"confirm": "y"}, how, csrf_app))
    assert_refused(response, 400, 422)
    db.session.expire_all()
    assert db.session.get(ConsultationRequest, consultation.id) is not None


@pytest.mark.parametrize("how", HOW)
def test_downloading_a_patients_data(csrf_app, how):
    _, token = make_consultation()
    response = csrf_app.test_client().post(f"/c/{token}/export", data=with_token({}, how, csrf_app))
    assert_refused(response, 400)
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("how", HOW)
def test_signing_out(csrf_app, how):
    derm = make_user("dermatologist")
    client = csrf_app.test_client()
    sign_in(client, derm)
    assert_refused(client.post("/logout", data=with_token({}, how, csrf_app)), 400)
    assert client.get("/queue/").status_code == 200
