"""Two-step sign-in pages: the code asked for after the password, setting up an authenticator app
(QR code drawn on the server), recovery codes shown once, and turning it off.

The rules live in app.auth.totp; views check a form, call one rule, commit and move on.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale, gettext, ngettext
from flask_login import current_user, login_required

from app.auth import bp, totp
from app.auth.forms import AuthenticatorCodeForm, SecondStepForm
from app.auth.routes import PENDING_KEY, open_session, start_session
from app.auth.session import load_user
from app.auth.signin import complete_sign_in, safe_next
from app.extensions import db, limiter
from app.models import AuditAction, User
from app.runtime import audit
from app.timeutil import utcnow

# Time allowed between the password and the code (or finishing the app's set-up).
PENDING_SECONDS = 10 * 60


def _two_factor_limit() -> str:
    return current_app.config["TWO_FACTOR_RATE_LIMIT"]


def _pending_account_key() -> str:
    """Limit code guesses per account as well as per address (an attacker may have many addresses)."""
    pending = session.get(PENDING_KEY)
    account = pending.get("user") if isinstance(pending, dict) else None
    return f"two-step:{account or request.remote_addr}"


def _wrong_code() -> str:
    return gettext(
        "That code did not work. Type the newest code from your app (check that your phone's clock is right), "
        "or one of your recovery codes. After 10 wrong attempts in a row, signing in is paused for 15 minutes."
    )


def pending_user(step: str) -> User | None:
    """The account that passed the password in this session, if it is at `step` and not too long ago."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or pending.get("step") != step:
        return None
    try:
        age = utcnow().timestamp() - float(pending["since"])
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 <= age <= PENDING_SECONDS:
        return None
    return load_user(str(pending.get("user") or ""))  # None if deactivated or signed out everywhere since


def _start_again():
    session.pop(PENDING_KEY, None)
    flash(gettext("Please sign in again: too much time passed since you typed your password."), "error")
    return redirect(url_for("auth.login"))


def _pending_next() -> str | None:
    pending = session.get(PENDING_KEY)
    return safe_next(pending.get("next")) if isinstance(pending, dict) else None


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(_two_factor_limit, methods=["POST"])
@limiter.limit(_two_factor_limit, methods=["POST"], key_func=_pending_account_key)
def verify_code():
    user = pending_user("verify")
    if user is None:
        return _start_again()
    form = SecondStepForm()
    if form.validate_on_submit():
        now = utcnow()
        method = totp.verify_second_factor(user, form.code.data, now)
        if method is not None:
            complete_sign_in(user, now, f"password and {method}", language=str(get_locale()))
        db.session.commit()
        if method is not None:
            response = start_session(user, now, _pending_next())
            if method == totp.RECOVERY_CODE:
                _flash_codes_left(user)  # after the session reset, or the message would be wiped with it
            return response
        form.code.errors.append(_wrong_code())
    form.code.data = ""
    return render_template("auth/verify_code.html", form=form), 422 if form.errors else 200


def _flash_codes_left(user: User) -> None:
    left = totp.recovery_codes_left(user)
    flash(
        ngettext(
            "You used a recovery code; %(num)d is left. Make new ones under “Two-step sign-in”.",
            "You used a recovery code; %(num)d are left. Make new ones under “Two-step sign-in”.",
            left,
        ),
        "success" if left > 2 else "error",
    )


def _enrolling_user() -> tuple[User | None, bool]:
    """(user, pending): a signed-in user setting up an app, or one who must before signing in."""
    if current_user.is_authenticated:
        return current_user._get_current_object(), False
    return pending_user("enrol"), True


@bp.route("/account/two-step/setup", methods=["GET", "POST"])
@limiter.limit(_two_factor_limit, methods=["POST"])
def setup_two_step():
    user, pending = _enrolling_user()
    if user is None:
        return _start_again()
    if totp.is_enabled(user):
        return redirect(url_for("auth.two_step"))
    secret = totp.start_enrolment(user)
    db.session.commit()
    form = AuthenticatorCodeForm()
    if form.validate_on_submit():
        now = utcnow()
        codes = totp.confirm_enrolment(user, form.code.data, now)
        if codes is not None:
            next_url = _pending_next() if pending else None
            if pending:
                complete_sign_in(user, now, "password and new authenticator", language=str(get_locale()))
            db.session.commit()
            # The session version changed (other sessions end): this one continues under the new one.
            open_session(user, now, None if pending else session.get("signed_in_at"))
            return _show_recovery_codes(codes, next_url, first_time=True)
        form.code.errors.append(_wrong_code())
    form.code.data = ""
    return render_template(
        "auth/setup_two_step.html",
        form=form,
        pending=pending,
        qr_code=totp.qr_code_data_uri(totp.provisioning_uri(secret, user)),
        secret=totp.grouped(secret),
        issuer=current_app.config["TOTP_ISSUER"],
    ), 422 if form.errors else 200


def _show_recovery_codes(codes: list[str], next_url: str | None, first_time: bool = False):
    """Shown once, in this response only (never stored in clear, never cached: see the no-store hook)."""
    return render_template(
        "auth/recovery_codes.html",
        codes=codes,
        first_time=first_time,
        continue_url=safe_next(next_url) or url_for("queue.index"),
    )


@bp.get("/account/two-step")
@login_required
def two_step():
    user = current_user._get_current_object()
    return render_template(
        "auth/two_step.html",
        enabled=totp.is_enabled(user),
        required=totp.is_required(current_app.config),
        codes_left=totp.recovery_codes_left(user),
        form=AuthenticatorCodeForm(formdata=None),
    )


@bp.post("/account/two-step/recovery-codes")
@login_required
@limiter.limit(_two_factor_limit)
def new_recovery_codes():
    user = current_user._get_current_object()
    form = AuthenticatorCodeForm()
    if not (form.validate_on_submit() and totp.check_current_code(user, form.code.data, utcnow())):
        flash(gettext("That code did not work. Type the newest code from your authenticator app."), "error")
        return redirect(url_for("auth.two_step"))
    codes = totp.new_recovery_codes(user)
    audit(AuditAction.USER_UPDATED, user=user, detail=f"user {user.id} made new recovery codes")
    db.session.commit()
    return _show_recovery_codes(codes, None)


@bp.post("/account/two-step/off")
@login_required
@limiter.limit(_two_factor_limit)
def turn_off_two_step():
    user = current_user._get_current_object()
    if totp.is_required(current_app.config):
        flash(gettext("The clinic requires two-step sign-in for every staff account, so it cannot be turned off."))
        return redirect(url_for("auth.two_step"))
    form = AuthenticatorCodeForm()
    now = utcnow()
    if not (form.validate_on_submit() and totp.check_current_code(user, form.code.data, now)):
        flash(gettext("That code did not work. Type the newest code from your authenticator app."), "error")
        return redirect(url_for("auth.two_step"))
    totp.turn_off(user)
    db.session.commit()
    open_session(user, now, session.get("signed_in_at"))
    flash(gettext("Two-step sign-in is off. Your password alone now signs you in."), "success")
    return redirect(url_for("auth.two_step"))
