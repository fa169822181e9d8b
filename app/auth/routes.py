"""Staff sign-in and sign-out, and the idle timeout that signs a quiet session out.

Signing in is one or two steps: the password, then (for accounts with an authenticator app, or
when REQUIRE_TOTP asks every account to have one) a code; see app.auth.two_step_routes. Between
the steps the session holds only who passed the password and when, never a signed-in user.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale, gettext
from flask_login import current_user, login_user, logout_user

from app import accounts
from app.auth import bp, totp
from app.auth.forms import LoginForm
from app.auth.signin import check_password, complete_sign_in, safe_next, session_expired
from app.extensions import db, limiter
from app.models import User
from app.timeutil import utcnow

# Kept across the session reset at sign-in and sign-out: the reader's language is not a secret.
_KEPT_SESSION_KEYS = ("lang",)
PENDING_KEY = "sign_in"
# Endpoints a signed-in user without the required authenticator app can still reach.
_OPEN_WHILE_ENROLLING = {"static", "auth.logout", "auth.setup_two_step", "auth.login"}


def _login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def reset_session() -> None:
    """Start a fresh session so nothing from before sign-in (or sign-out) carries over."""
    kept = {key: session[key] for key in _KEPT_SESSION_KEYS if key in session}
    session.clear()
    session.update(kept)


def open_session(user: User, now: datetime, signed_in_at: float | None = None) -> None:
    """A fresh session (new cookie contents) for this user; also after their session version changed."""
    reset_session()
    login_user(user)
    session.permanent = True
    session["signed_in_at"] = signed_in_at or now.timestamp()
    session["last_seen"] = now.timestamp()


def start_session(user: User, now: datetime, next_url: str | None = None):
    """Every step passed: a fresh session for this user, then on to where they were going."""
    open_session(user, now)
    return redirect(safe_next(next_url) or url_for("queue.index"))


def _start_second_step(user: User, step: str, now: datetime, next_url: str | None):
    reset_session()
    session[PENDING_KEY] = {"user": user.get_id(), "since": now.timestamp(), "step": step, "next": next_url or ""}
    return redirect(url_for("auth.verify_code" if step == "verify" else "auth.setup_two_step"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        if current_user.is_authenticated:
            return redirect(form.next.data or url_for("queue.index"))
    if form.validate_on_submit():
        now = utcnow()
        user = check_password(form.email.data, form.password.data, now)
        if user is not None:
            step = totp.second_step(user, current_app.config)
            if step is None:
                complete_sign_in(user, now, language=str(get_locale()))
            db.session.commit()
            if step is None:
                return start_session(user, now, form.next.data)
            return _start_second_step(user, step, now, safe_next(form.next.data))
        db.session.commit()
        flash(
            gettext(
                "That email and password did not match an active account. "
                "After 10 failed attempts in a row, signing in is paused for 15 minutes."
            ),
            "error",
        )
    form.password.data = ""
    return render_template("auth/login.html", form=form), 200


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        # Ends the session on the server: a copy of this cookie (or any older one) stops working too.
        accounts.sign_out(current_user._get_current_object())
        db.session.commit()
    logout_user()
    reset_session()
    flash(gettext("You have signed out, on this device and on any other."), "success")
    return redirect(url_for("auth.login"))


@bp.before_app_request
def end_idle_sessions():
    """Sign out a staff session that has been idle, or open, for too long."""
    if request.endpoint == "static" or not current_user.is_authenticated:
        return None
    now = utcnow()
    if session_expired(session.get("signed_in_at"), session.get("last_seen"), now, current_app.config):
        logout_user()
        reset_session()
        flash(gettext("You were signed out because the session was idle for too long. Please sign in again."))
        target = request.full_path if request.method == "GET" else None
        return redirect(url_for("auth.login", next=safe_next(target and target.rstrip("?"))))
    session["last_seen"] = now.timestamp()
    return _require_authenticator()


def _require_authenticator():
    """With REQUIRE_TOTP, a session from before the rule (or before set-up) goes to set-up first."""
    if request.endpoint in _OPEN_WHILE_ENROLLING or not totp.is_required(current_app.config):
        return None
    if totp.is_enabled(current_user):
        return None
    flash(gettext("The clinic asks every staff account to use an authenticator app. Please set it up now."))
    return redirect(url_for("auth.setup_two_step"))
