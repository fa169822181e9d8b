"""Two-step sign-in: setting up an authenticator app (QR drawn on the server), codes after the
password, replay and lockout, recovery codes, REQUIRE_TOTP, turning it off, secrets at rest."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pyotp
import time_machine
from sqlalchemy import select

from app.auth import totp
from app.extensions import db
from app.models import AuditEvent, User
from tests.conftest import build_app, empty_database, reset_database
from tests.factories import DEFAULT_PASSWORD, failed_sign_ins, login_as, make_user

START = datetime(2026, 11, 2, 9, 0, 10, tzinfo=UTC)
WRONG_CODE = "That code did not work."


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def audit_trail(action: str) -> list[AuditEvent]:
    return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


def text(response) -> str:
    return response.get_data(as_text=True)


def setup_key(page: str) -> str:
    """The key a person would type into their app when they cannot scan the QR code."""
    return re.search(r'<code class="setup-key">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")


def code_from_app(secret: str, moment: datetime) -> str:
    return pyotp.TOTP(secret).at(moment)


def recovery_codes_on(page: str) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</code></li>", page)


def turn_on_two_step(client, moment: datetime) -> tuple[str, list[str]]:
    """Set up the app from the set-up page like a person would; returns (secret, recovery codes)."""
    secret = setup_key(text(client.get("/account/two-step/setup")))
    page = client.post("/account/two-step/setup", data={"code": code_from_app(secret, moment)})
    assert page.status_code == 200, text(page)
    return secret, recovery_codes_on(text(page))


def enrolled_user(client) -> tuple[User, str, list[str]]:
    """A dermatologist who has set up the app just now (the clock is frozen by the caller)."""
    user = make_user("dermatologist")
    login_as(client, user)
    secret, codes = turn_on_two_step(client, datetime.now(UTC))
    client.post("/logout")
    return fresh(user), secret, codes


def password_step(client, user: User, **extra):
    return client.post("/login", data={"email": user.email, "password": DEFAULT_PASSWORD, **extra})


# --- setting up ----------------------------------------------------------------------------


def test_setup_shows_a_server_drawn_qr_code_and_the_key(client, app):
    login_as(client, make_user("dermatologist"))
    page = text(client.get("/account/two-step/setup"))
    qr = re.search(r'<img class="qr-code" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page)
    assert qr, "the QR code is an inline data: image"
    svg = base64.b64decode(qr.group(1)).decode()
    assert "<svg" in svg and "<path" in svg and "script" not in svg
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from another host
    assert len(setup_key(page)) == 32
    # The same key until it is confirmed (reloading the page must not break a half-done set-up).
    assert setup_key(text(client.get("/account/two-step/setup"))) == setup_key(page)


def test_turning_it_on_shows_ten_recovery_codes_once_and_keeps_no_secret_in_clear(client, app):
    derm = make_user("dermatologist")
    other_browser = app.test_client()
    with time_machine.travel(START, tick=False):
        login_as(other_browser, derm)
        login_as(client, derm)
        secret = setup_key(text(client.get("/account/two-step/setup")))
        wrong = client.post("/account/two-step/setup", data={"code": "000000"})
        assert wrong.status_code == 422 and WRONG_CODE in text(wrong)
        page = client.post("/account/two-step/setup", data={"code": code_from_app(secret, START)})
        codes = recovery_codes_on(text(page))
        assert len(codes) == 10 and len(set(codes)) == 10
        assert "the only time they are shown" in text(page)
        assert page.headers["Cache-Control"].startswith("no-store")
        assert client.get("/queue/").status_code == 200  # this session carries on
        assert other_browser.get("/queue/").status_code == 302  # a session that only passed the password ends
        assert "Two-step sign-in is on" in text(client.get("/account/two-step"))

    stored = fresh(derm)
    assert stored.totp_enabled_at == START
    assert secret not in stored.totp_secret and len(stored.totp_secret) <= 64
    assert totp.unseal_secret(stored.totp_secret, stored.id) == secret
    hashes = stored.recovery_code_hashes
    assert len(hashes) == 10 and not any(code.replace("-", "") in hashes or code in hashes for code in codes)
    assert [e.actor_user_id for e in audit_trail("totp_enabled")] == [derm.id]


def test_the_provisioning_link_names_the_clinic_and_the_account(app):
    user = make_user("dermatologist", email="ruta@clinic.example")
    secret = totp.start_enrolment(user)
    uri = totp.provisioning_uri(secret, user)
    assert uri.startswith("otpauth://totp/Skin%20Clinic:ruta%40clinic.example?")
    assert f"secret={secret}" in uri and "issuer=Skin%20Clinic" in uri


def test_a_sealed_secret_opens_only_for_its_account_and_key(app):
    secret = pyotp.random_base32()
    sealed = totp.seal_secret(secret, 7)
    assert len(sealed) == 64 and secret not in sealed
    assert totp.unseal_secret(sealed, 7) == secret
    assert totp.unseal_secret(sealed, 8) is None  # copied onto another account: useless
    app.config["SECRET_KEY"] = "another key"
    assert totp.unseal_secret(sealed, 7) is None
    assert totp.unseal_secret("not base64 at all!", 7) is None


# --- signing in with a code ----------------------------------------------------------------
# Each test sets the app up at START, then moves on 30 s or more: a code is never accepted twice.

LATER = START + timedelta(seconds=60)


def test_password_then_code_signs_in_and_the_password_alone_does_not(client, app):
    with time_machine.travel(START, tick=False) as traveller:
        derm, secret, _ = enrolled_user(client)
        traveller.move_to(LATER)
        response = password_step(client, derm, next="/queue/?filter=mine")
        assert response.status_code == 302 and response.location == "/login/code"
        assert client.get("/queue/").status_code == 302  # not signed in between the steps
        assert 'autocomplete="one-time-code"' in text(client.get("/login/code"))

        wrong = client.post("/login/code", data={"code": "123456"})
        assert wrong.status_code == 422 and WRONG_CODE in text(wrong)
        right = client.post("/login/code", data={"code": code_from_app(secret, LATER)})
        assert right.status_code == 302 and right.location == "/queue/?filter=mine"
        assert client.get("/queue/").status_code == 200
    assert audit_trail("login")[-1].detail == "password and authenticator"
    assert failed_sign_ins(derm) == 0


def test_a_code_is_accepted_only_once(client, app):
    with time_machine.travel(START, tick=False) as traveller:
        derm, secret, _ = enrolled_user(client)
        traveller.move_to(LATER)
        code = code_from_app(secret, LATER)
        password_step(client, derm)
        assert client.post("/login/code", data={"code": code}).status_code == 302
        client.post("/logout")
        password_step(client, derm)
        replay = client.post("/login/code", data={"code": code})  # seen over a shoulder, used again
        assert replay.status_code == 422
        assert client.get("/queue/").status_code == 302


def test_a_recovery_code_works_once(client, app):
    with time_machine.travel(START, tick=False):
        derm, _, codes = enrolled_user(client)
        password_step(client, derm)
        response = client.post("/login/code", data={"code": codes[0].upper().replace("-", " ")}, follow_redirects=True)
        assert "You used a recovery code; 9 are left." in text(response)
        assert audit_trail("login")[-1].detail == "password and recovery code"
        client.post("/logout")
        password_step(client, derm)
        assert client.post("/login/code", data={"code": codes[0]}).status_code == 422
        assert client.post("/login/code", data={"code": codes[1]}).status_code == 302
    assert totp.recovery_codes_left(fresh(derm)) == 8


def test_wrong_codes_lock_the_account_like_wrong_passwords(client, app):
    with time_machine.travel(START, tick=False) as traveller:
        derm, secret, _ = enrolled_user(client)
        traveller.move_to(LATER)
        password_step(client, derm)
        for _ in range(9):
            client.post("/login/code", data={"code": "000000"})
            password_step(client, derm)  # the right password again must not reset the count
            assert fresh(derm).paused_until is None
        client.post("/login/code", data={"code": "000000"})
        assert fresh(derm).paused_until == LATER + timedelta(minutes=15)
        refused = client.post("/login/code", data={"code": code_from_app(secret, LATER)})
        assert refused.status_code == 422 and client.get("/queue/").status_code == 302
        assert audit_trail("failed_login")[-1].detail == "locked"

        unlocked = LATER + timedelta(minutes=15, seconds=1)
        traveller.move_to(unlocked)
        password_step(client, derm)
        assert client.post("/login/code", data={"code": code_from_app(secret, unlocked)}).status_code == 302


def test_the_code_step_expires_after_ten_minutes(client, app):
    with time_machine.travel(START, tick=False) as traveller:
        derm, secret, _ = enrolled_user(client)
        password_step(client, derm)
        late = START + timedelta(minutes=10, seconds=1)
        traveller.move_to(late)
        response = client.post("/login/code", data={"code": code_from_app(secret, late)}, follow_redirects=True)
        assert "Please sign in again" in text(response)
        assert client.get("/queue/").status_code == 302


def test_the_code_page_needs_the_password_first(client, app):
    response = client.get("/login/code")
    assert response.status_code == 302 and response.location == "/login"
    with client.session_transaction() as session:  # a forged pending step for someone else's account
        session["sign_in"] = {"user": "1:1", "since": "yesterday", "step": "verify"}
    assert client.post("/login/code", data={"code": "123456"}).status_code == 302


def test_code_guesses_are_rate_limited(tmp_path):
    app = build_app(tmp_path, RATELIMIT_ENABLED=True, TWO_FACTOR_RATE_LIMIT="3 per minute")
    reset_database(app)
    try:
        with app.app_context():
            client = app.test_client()
            derm, _, _ = enrolled_user(client)
            password_step(client, derm)
            for _ in range(3):
                assert client.post("/login/code", data={"code": "000000"}).status_code == 422
            assert client.post("/login/code", data={"code": "000000"}).status_code == 429
            db.session.remove()
    finally:
        empty_database(app)


# --- REQUIRE_TOTP --------------------------------------------------------------------------


def test_when_required_the_first_sign_in_sets_up_the_app_before_anything_else(tmp_path):
    app = build_app(tmp_path, REQUIRE_TOTP=True)
    reset_database(app)
    try:
        with app.app_context(), time_machine.travel(START, tick=False):
            client = app.test_client()
            derm = make_user("dermatologist")
            response = password_step(client, derm, next="/queue/?filter=mine")
            assert response.location == "/account/two-step/setup"
            assert client.get("/queue/").status_code == 302  # not signed in until the app is set up
            page = text(client.get(response.location))
            assert "The clinic asks every staff account to use an authenticator app" in page
            done = client.post("/account/two-step/setup", data={"code": code_from_app(setup_key(page), START)})
            assert len(recovery_codes_on(text(done))) == 10
            assert 'href="/queue/?filter=mine"' in text(done)
            assert client.get("/queue/").status_code == 200
            assert fresh(derm).totp_enabled_at == START
            refused = client.post("/account/two-step/off", data={"code": "123456"}, follow_redirects=True)
            assert "cannot be turned off" in text(refused) and fresh(derm).totp_enabled_at is not None
            db.session.remove()
    finally:
        empty_database(app)


def test_when_required_an_older_session_without_the_app_is_sent_to_set_up(tmp_path):
    app = build_app(tmp_path)
    reset_database(app)
    try:
        with app.app_context():
            client = app.test_client()
            login_as(client, make_user("staff"))
            assert client.get("/queue/").status_code == 200
            app.config["REQUIRE_TOTP"] = True  # the admin turns the rule on
            response = client.get("/queue/")
            assert response.status_code == 302 and response.location == "/account/two-step/setup"
            assert client.get("/account/two-step/setup").status_code == 200
            db.session.remove()
    finally:
        empty_database(app)


# --- managing it ---------------------------------------------------------------------------


def test_new_recovery_codes_replace_the_old_ones(client, app):
    with time_machine.travel(START, tick=False) as traveller:
        derm, secret, old_codes = enrolled_user(client)
        password_step(client, derm)
        client.post("/login/code", data={"code": old_codes[0]})
        refused = client.post("/account/two-step/recovery-codes", data={"code": "000000"}, follow_redirects=True)
        assert WRONG_CODE in text(refused)
        traveller.move_to(LATER)
        page = client.post("/account/two-step/recovery-codes", data={"code": code_from_app(secret, LATER)})
        new_codes = recovery_codes_on(text(page))
        assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
        client.post("/logout")
        password_step(client, derm)
        assert client.post("/login/code", data={"code": old_codes[1]}).status_code == 422
        assert client.post("/login/code", data={"code": new_codes[0]}).status_code == 302


def test_turning_it_off_needs_a_current_code(client, app):
    with time_machine.travel(START, tick=False) as traveller:
        derm, secret, codes = enrolled_user(client)
        password_step(client, derm)
        client.post("/login/code", data={"code": codes[0]})
        traveller.move_to(LATER)
        client.post("/account/two-step/off", data={"code": "000000"})
        assert totp.is_enabled(fresh(derm))
        response = client.post(
            "/account/two-step/off", data={"code": code_from_app(secret, LATER)}, follow_redirects=True
        )
        assert "Two-step sign-in is off" in text(response)
        assert client.get("/queue/").status_code == 200
        stored = fresh(derm)
        assert stored.totp_secret is None and stored.recovery_code_hashes is None
        client.post("/logout")
        assert password_step(client, derm).location == "/queue/"


def test_an_admin_removes_the_app_of_someone_who_lost_their_phone(client, app):
    with time_machine.travel(START, tick=False) as traveller:
        derm, _secret, _codes = enrolled_user(client)
        admin = make_user("admin")
        traveller.move_to(LATER)
        login_as(client, admin)  # an admin without the app: REQUIRE_TOTP is off in these tests
        page = text(client.get(f"/staff/users/{derm.id}"))
        assert "Remove two-step sign-in" in page
        response = client.post(f"/staff/users/{derm.id}/two-step-off")
        assert response.status_code == 302
        derm = fresh(derm)
        assert derm.totp_secret is None and derm.totp_enabled_at is None and derm.recovery_code_hashes is None
        assert "two-step sign-in turned off" in audit_trail("user_updated")[-1].detail
        client.post("/logout")
        # The password alone now signs in again (and with REQUIRE_TOTP they would be sent to set-up).
        assert password_step(client, derm).location != "/login/code"


def test_a_dermatologist_cannot_remove_anyone_elses_app(client, app):
    with time_machine.travel(START, tick=False):
        derm, _secret, _codes = enrolled_user(client)
        other = make_user("dermatologist")
        login_as(client, other)
        assert client.post(f"/staff/users/{derm.id}/two-step-off").status_code == 403
        assert fresh(derm).totp_secret is not None
