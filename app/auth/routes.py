"""Staff sign-in and sign-out, and the idle timeout that signs a quiet session out."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_user, logout_user

from app import audit
from app.auth import bp
from app.auth.forms import LoginForm
from app.auth.signin import authenticate, safe_next, session_expired
from app.extensions import db, limiter
from app.timeutil import utcnow

# Kept across the session reset at sign-in and sign-out: the reader's language is not a secret.
_KEPT_SESSION_KEYS = ("lang",)


def _login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _reset_session() -> None:
    """Start a fresh session so nothing from before sign-in (or sign-out) carries over."""
    kept = {key: session[key] for key in _KEPT_SESSION_KEYS if key in session}
    session.clear()
    session.update(kept)


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
        user = authenticate(form.email.data, form.password.data, now)
        db.session.commit()
        if user is not None:
            _reset_session()
            login_user(user)
            session.permanent = True
            session["signed_in_at"] = session["last_seen"] = now.timestamp()
            return redirect(safe_next(form.next.data) or url_for("queue.index"))
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
        audit.record("logout")
        db.session.commit()
    logout_user()
    _reset_session()
    flash(gettext("You have signed out."), "success")
    return redirect(url_for("auth.login"))


@bp.before_app_request
def end_idle_sessions():
    """Sign out a staff session that has been idle, or open, for too long."""
    if request.endpoint == "static" or not current_user.is_authenticated:
        return None
    now = utcnow()
    if session_expired(session.get("signed_in_at"), session.get("last_seen"), now, current_app.config):
        logout_user()
        _reset_session()
        flash(gettext("You were signed out because the session was idle for too long. Please sign in again."))
        target = request.full_path if request.method == "GET" else None
        return redirect(url_for("auth.login", next=safe_next(target and target.rstrip("?"))))
    session["last_seen"] = now.timestamp()
    return None
