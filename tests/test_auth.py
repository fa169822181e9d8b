"""Staff sign-in and accounts: passwords, lockout, rate limit, session rotation and expiry,
safe redirects, roles, and the admin account pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.auth.signin import safe_next, source_of
from app.extensions import db
from app.models import AuditEvent, SignInFailures, User
from app.passwords import verify_password
from tests.conftest import build_app, empty_database, reset_database
from tests.factories import DEFAULT_PASSWORD, failed_sign_ins, login_as, make_user

GENERIC_FAILURE = "That email and password did not match an active account."
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def sign_in(client, email, password, **extra):
    return client.post("/login", data={"email": email, "password": password, **extra})


def audit_trail(action: str) -> list[AuditEvent]:
    return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


def session_cookie(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


# --- signing in ----------------------------------------------------------------------------


def test_login_page_renders(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'autocomplete="current-password"' in page and "Staff sign in" in page


def test_sign_in_lands_on_the_queue_and_is_audited(client, app):
    derm = make_user("dermatologist", email="Ruta@Clinic.example")
    response = sign_in(client, "  ruta@clinic.EXAMPLE ".strip(), DEFAULT_PASSWORD)
    assert response.status_code == 302 and response.location == "/queue/"
    assert client.get("/queue/").status_code == 200
    assert fresh(derm).last_login_at is not None
    (event,) = audit_trail("login")
    assert event.actor_user_id == derm.id and event.ip == "127.0.0.1"


def test_wrong_password_and_unknown_email_get_the_same_message(client, app):
    derm = make_user("dermatologist")
    wrong = sign_in(client, derm.email, "not the password")
    unknown = sign_in(client, "nobody@clinic.example", DEFAULT_PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert GENERIC_FAILURE in response.get_data(as_text=True)
    assert 'value="not the password"' not in wrong.get_data(as_text=True)
    assert failed_sign_ins(derm) == 1
    events = audit_trail("failed_login")
    assert [e.actor_user_id for e in events] == [derm.id, None]
    assert client.get("/queue/").status_code == 302


def test_a_deactivated_account_cannot_sign_in(client, app):
    gone = make_user("dermatologist", active=False)
    assert GENERIC_FAILURE in sign_in(client, gone.email, DEFAULT_PASSWORD).get_data(as_text=True)
    assert client.get("/queue/").status_code == 302


def test_ten_failures_lock_the_account_for_15_minutes(client, app):
    derm = make_user("dermatologist")
    with time_machine.travel(START, tick=False) as traveller:
        for _ in range(9):
            sign_in(client, derm.email, "wrong guess")
        assert fresh(derm).paused_until is None
        sign_in(client, derm.email, "wrong guess")
        assert fresh(derm).paused_until == START + timedelta(minutes=15)

        # Even the right password is refused while locked, with the same message as any failure.
        response = sign_in(client, derm.email, DEFAULT_PASSWORD)
        assert GENERIC_FAILURE in response.get_data(as_text=True)
        assert client.get("/queue/").status_code == 302
        assert audit_trail("failed_login")[-1].detail == "locked"

        traveller.shift(timedelta(minutes=15, seconds=1))
        assert sign_in(client, derm.email, DEFAULT_PASSWORD).status_code == 302
        assert failed_sign_ins(derm) == 0 and fresh(derm).paused_until is None


def test_a_success_resets_the_failure_count(client, app):
    derm = make_user("dermatologist")
    for _ in range(9):
        sign_in(client, derm.email, "wrong")
    assert sign_in(client, derm.email, DEFAULT_PASSWORD).status_code == 302
    assert failed_sign_ins(derm) == 0


def test_login_posts_are_rate_limited(tmp_path):
    app = build_app(tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    reset_database(app)
    try:
        with app.app_context():
            client = app.test_client()
            for _ in range(3):
                assert sign_in(client, "x@clinic.example", "wrong").status_code == 200
            assert sign_in(client, "x@clinic.example", "wrong").status_code == 429
            assert client.get("/login").status_code == 200  # reading the page is not limited
            db.session.remove()
    finally:
        empty_database(app)


# --- sessions ------------------------------------------------------------------------------


def test_the_session_is_replaced_at_sign_in(client, app):
    derm = make_user("dermatologist")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
        session["lang"] = "lt"
    before = session_cookie(client)
    login_as(client, derm)
    after = session_cookie(client)
    assert after and after != before
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["lang"] == "lt"  # the reader's language survives
        assert session["_user_id"] == f"{derm.id}:{derm.session_version}"
        assert session.permanent


def test_an_idle_session_is_signed_out(client, app):
    derm = make_user("dermatologist")
    with time_machine.travel(START, tick=False) as traveller:
        login_as(client, derm)
        traveller.shift(timedelta(minutes=29))
        assert client.get("/queue/").status_code == 200  # activity keeps the session alive
        traveller.shift(timedelta(minutes=29))
        assert client.get("/queue/").status_code == 200
        traveller.shift(timedelta(minutes=31))
        response = client.get("/queue/?filter=mine")
        assert response.status_code == 302
        assert response.location == "/login?next=/queue/?filter%3Dmine"
        page = client.get(response.location).get_data(as_text=True)
        assert "signed out because the session was idle" in page
        assert client.get("/queue/").status_code == 302


def test_a_session_ends_after_its_lifetime_even_when_busy(client, app):
    derm = make_user("dermatologist")
    with time_machine.travel(START, tick=False) as traveller:
        login_as(client, derm)
        for _ in range(8 * 3):  # a click every 20 minutes for 8 hours
            traveller.shift(timedelta(minutes=20))
            client.get("/queue/")
        traveller.shift(timedelta(minutes=20))
        assert client.get("/queue/").status_code == 302


def test_sign_out_is_a_post_and_ends_the_session(client, app):
    derm = make_user("dermatologist")
    login_as(client, derm)
    assert client.get("/logout").status_code == 405
    response = client.post("/logout", follow_redirects=True)
    assert "You have signed out" in response.get_data(as_text=True)
    assert client.get("/queue/").status_code == 302
    assert [e.actor_user_id for e in audit_trail("logout")] == [derm.id]


def test_sign_out_needs_the_csrf_token(tmp_path):
    app = build_app(tmp_path, WTF_CSRF_ENABLED=True)
    reset_database(app)
    try:
        with app.app_context():
            derm = make_user("dermatologist")
            client = app.test_client()
            page = client.get("/login").get_data(as_text=True)
            token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
            login = client.post("/login", data={"email": derm.email, "password": DEFAULT_PASSWORD, "csrf_token": token})
            assert login.status_code == 302
            assert client.post("/logout").status_code == 400  # a forged sign-out from another site
            assert client.get("/queue/").status_code == 200
            db.session.remove()
    finally:
        empty_database(app)


def test_bumping_the_session_version_signs_the_user_out(client, app):
    derm = make_user("dermatologist")
    login_as(client, derm)
    derm.session_version += 1
    db.session.commit()
    assert client.get("/queue/").status_code == 302


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/queue/?filter=mine", "/queue/?filter=mine"),
        ("/queue/DRM-7K3Q9X", "/queue/DRM-7K3Q9X"),
        ("//evil.example/", None),
        ("/\\evil.example", None),
        ("/\t/evil.example", None),
        ("https://evil.example/queue/", None),
        ("javascript:alert(1)", None),
        ("queue", None),
        ("", None),
        (None, None),
    ],
)
def test_safe_next_only_allows_local_paths(target, expected):
    assert safe_next(target) == expected


def test_sign_in_follows_a_local_next_and_ignores_another_site(client, app):
    derm = make_user("dermatologist")
    page = client.get("/login?next=/queue/?filter=mine").get_data(as_text=True)
    assert 'value="/queue/?filter=mine"' in page
    response = sign_in(client, derm.email, DEFAULT_PASSWORD, next="/queue/?filter=mine")
    assert response.location == "/queue/?filter=mine"
    client.post("/logout")
    response = sign_in(client, derm.email, DEFAULT_PASSWORD, next="//evil.example/steal")
    assert response.location == "/queue/"


# --- roles and the admin account pages ----------------------------------------------------


@pytest.mark.parametrize("role", ["dermatologist", "staff"])
def test_only_admins_reach_account_management(client, app, role):
    user = make_user(role)
    assert client.get("/staff/users").status_code == 302  # anonymous: sign in first
    login_as(client, user)
    assert client.get("/staff/users").status_code == 403
    assert client.get("/staff/users/new").status_code == 403
    assert client.post(f"/staff/users/{user.id}/role", data={"role": "admin"}).status_code == 403
    assert fresh(user).role == role


def test_admin_creates_an_account_that_can_sign_in(client, app):
    admin = make_user("admin")
    login_as(client, admin)
    form = {
        "name": "Dr Eglė Vaitkutė",
        "email": "Egle@Clinic.example",
        "role": "dermatologist",
        "password": "a long enough password",
        "confirm": "a long enough password",
    }
    response = client.post("/staff/users/new", data=form, follow_redirects=True)
    assert "Account created for Dr Eglė Vaitkutė" in response.get_data(as_text=True)
    created = db.session.execute(select(User).where(User.email == "egle@clinic.example")).scalar_one()
    assert created.role == "dermatologist" and verify_password(created.password_hash, "a long enough password")
    assert audit_trail("user_created")[0].actor_user_id == admin.id
    assert "Dr Eglė Vaitkutė" in client.get("/staff/users").get_data(as_text=True)

    again = client.post("/staff/users/new", data=form)
    assert "An account with this email already exists." in again.get_data(as_text=True)
    short = client.post(
        "/staff/users/new", data={**form, "email": "x@clinic.example", "password": "short", "confirm": "short"}
    )
    assert "Use at least 12 characters." in short.get_data(as_text=True)
    other = app.test_client()
    assert login_as(other, created, "a long enough password").status_code == 302


def test_admin_changes_a_role_and_the_old_session_ends(client, app):
    admin = make_user("admin")
    derm = make_user("dermatologist")
    derm_client = app.test_client()
    login_as(derm_client, derm)
    login_as(client, admin)
    client.post(f"/staff/users/{derm.id}/role", data={"role": "staff"})
    assert fresh(derm).role == "staff"
    assert derm_client.get("/queue/").status_code == 302


def test_admin_deactivates_and_reactivates_an_account(client, app):
    admin = make_user("admin")
    derm = make_user("dermatologist")
    derm_client = app.test_client()
    login_as(derm_client, derm)
    login_as(client, admin)
    response = client.post(f"/staff/users/{derm.id}/deactivate", follow_redirects=True)
    assert "Account deactivated" in response.get_data(as_text=True)
    assert derm_client.get("/queue/").status_code == 302
    assert GENERIC_FAILURE in sign_in(derm_client, derm.email, DEFAULT_PASSWORD).get_data(as_text=True)
    client.post(f"/staff/users/{derm.id}/reactivate")
    assert sign_in(derm_client, derm.email, DEFAULT_PASSWORD).status_code == 302


def test_admin_signs_someone_out_everywhere_and_resets_a_password(client, app):
    admin = make_user("admin")
    derm = make_user("dermatologist")
    derm_client = app.test_client()
    login_as(derm_client, derm)
    login_as(client, admin)
    client.post(f"/staff/users/{derm.id}/sign-out")
    assert derm_client.get("/queue/").status_code == 302
    paused = SignInFailures(
        user_id=derm.id,
        source=source_of("127.0.0.1"),
        failures=0,
        locked_until=datetime.now(UTC) + timedelta(minutes=10),
    )
    db.session.add(paused)
    db.session.commit()
    mismatch = client.post(
        f"/staff/users/{derm.id}/password", data={"password": "new password 123", "confirm": "different 12345"}
    )
    assert "The passwords differ." in mismatch.get_data(as_text=True)
    client.post(
        f"/staff/users/{derm.id}/password", data={"password": "new password 123", "confirm": "new password 123"}
    )
    assert fresh(derm).paused_until is None
    assert login_as(derm_client, derm, "new password 123").status_code == 302


def test_the_last_admin_cannot_be_removed_or_deactivate_themselves(client, app):
    admin = make_user("admin")
    login_as(client, admin)
    response = client.post(f"/staff/users/{admin.id}/role", data={"role": "staff"})
    assert response.status_code == 409
    assert "only active admin account" in response.get_data(as_text=True)
    response = client.post(f"/staff/users/{admin.id}/deactivate")
    assert "You cannot deactivate your own account." in response.get_data(as_text=True)
    assert fresh(admin).role == "admin" and fresh(admin).active
