"""Account management for admins (/staff/users): create accounts, change roles,
deactivate and reactivate, sign someone out everywhere, reset a password.

The rules live in app.accounts (shared with `flask users`); views call one and commit.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from app import accounts
from app.auth import totp
from app.auth.session import roles_required
from app.consultations import rota
from app.extensions import db
from app.models import ROLES, Role, User
from app.passwords import MIN_PASSWORD_LENGTH, weakness
from app.runtime import policies
from app.staff import bp
from app.staff.rota_forms import ExceptionForm, LeadForm, weekly_form_for, weekly_text
from app.timeutil import utcnow


def role_choices() -> list[tuple[str, str]]:
    labels = {"dermatologist": _l("Dermatologist"), "staff": _l("Staff"), "admin": _l("Admin")}
    return [(role, labels.get(role, role)) for role in ROLES]


def hard_to_guess(form: FlaskForm, field: PasswordField) -> None:
    """Refuse common and repetitive passwords next to the field (the account rule checks again,
    with the person's name and email)."""
    problem = weakness(field.data or "", related=[form.data.get(name) or "" for name in ("name", "email")])
    if problem is not None:
        raise ValidationError(problem)


class PasswordFields:
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(_l("Enter a password.")),
            Length(
                min=MIN_PASSWORD_LENGTH, max=1000, message=_l("Use at least %(n)s characters.", n=MIN_PASSWORD_LENGTH)
            ),
            hard_to_guess,
        ],
    )
    confirm = PasswordField(
        _l("Password again"),
        validators=[DataRequired(_l("Type the password again.")), EqualTo("password", _l("The passwords differ."))],
    )


class NewUserForm(FlaskForm, PasswordFields):
    name = StringField(_l("Full name"), validators=[DataRequired(_l("Enter the person's name.")), Length(max=120)])
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Enter an email address.")), Length(max=254)])
    role = SelectField(_l("Role"), choices=role_choices)
    licence_number = StringField(_l("Licence number"), validators=[Optional(), Length(max=40)])


class LicenceForm(FlaskForm):
    licence_number = StringField(_l("Licence number"), validators=[Optional(), Length(max=40)])


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=role_choices)


class PasswordForm(FlaskForm, PasswordFields):
    pass


class ConfirmForm(FlaskForm):
    """A button that changes the account (deactivate, reactivate, sign out): only the CSRF token."""


def _admin() -> User:
    return current_user._get_current_object()


def _account(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/users")
@roles_required("admin")
def users():
    accounts_list = db.session.execute(select(User).order_by(User.active.desc(), User.role, User.name)).scalars()
    hours = {user_id: weekly_text(shifts) for user_id, shifts in rota.weekly_shifts().items()}
    return render_template("staff/users.html", users=list(accounts_list), now=utcnow(), hours=hours)


@bp.route("/users/new", methods=["GET", "POST"])
@roles_required("admin")
def new_user():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(
                form.email.data,
                form.name.data,
                form.role.data,
                form.password.data,
                by=_admin(),
                licence_number=form.licence_number.data,
            )
        except accounts.AccountError as error:
            db.session.rollback()
            field = form.password if isinstance(error, accounts.WeakPassword) else form.email
            field.errors.append(str(error))
        else:
            db.session.commit()
            flash(
                gettext("Account created for %(name)s. Give them the password in person or by phone.", name=user.name),
                "success",
            )
            return redirect(url_for("staff.edit_user", user_id=user.id))
    return render_template("staff/users_new.html", form=form)


@bp.get("/users/<int:user_id>")
@roles_required("admin")
def edit_user(user_id: int):
    user = _account(user_id)
    return render_edit(user)


def render_edit(user: User, status: int = 200, **forms):
    """The account page; `forms` replace the blank ones (a form sent back with its errors)."""
    now = utcnow()
    forms.setdefault("role_form", RoleForm(formdata=None, role=user.role))
    forms.setdefault("password_form", PasswordForm(formdata=None))
    forms.setdefault("licence_form", LicenceForm(formdata=None, licence_number=user.licence_number or ""))
    forms.setdefault("lead_form", LeadForm(formdata=None, medical_lead=user.is_medical_lead))
    on_rota = user.role == Role.DERMATOLOGIST
    if on_rota:
        forms.setdefault("weekly_form", weekly_form_for(user))
        forms.setdefault("exception_form", ExceptionForm(formdata=None))
    return render_template(
        "staff/users_edit.html",
        user=user,
        confirm_form=ConfirmForm(),
        now=now,
        on_rota=on_rota,
        weekly=weekly_text(rota.weekly_shifts([user.id]).get(user.id, [])) if on_rota else "",
        exceptions=rota.upcoming_exceptions(user, now) if on_rota else [],
        on_duty=on_rota and any(u.id == user.id for u in rota.on_duty_dermatologists(policies().rota, now)),
        **forms,
    ), status


def _change(user_id: int, rule: Callable[[User], None], done: str, **forms):
    """Apply one account rule and commit; a refused change comes back as a message."""
    user = _account(user_id)
    try:
        rule(user)
    except accounts.AccountError as error:
        db.session.rollback()
        flash(str(error), "error")
        return render_edit(_account(user_id), 409, **forms)
    db.session.commit()
    flash(done, "success")
    return redirect(url_for("staff.edit_user", user_id=user_id))


@bp.post("/users/<int:user_id>/role")
@roles_required("admin")
def change_role(user_id: int):
    form = RoleForm()
    if not form.validate_on_submit():
        return render_edit(_account(user_id), 422, role_form=form)
    role = form.role.data
    return _change(user_id, lambda u: accounts.change_role(u, role, by=_admin()), gettext("Role changed."))


@bp.post("/users/<int:user_id>/licence")
@roles_required("admin")
def change_licence(user_id: int):
    form = LicenceForm()
    if not form.validate_on_submit():
        return render_edit(_account(user_id), 422, licence_form=form)
    licence = form.licence_number.data
    return _change(
        user_id,
        lambda u: accounts.set_licence(u, licence, by=_admin()),
        gettext("Licence number saved.") if (licence or "").strip() else gettext("Licence number removed."),
        licence_form=form,
    )


@bp.post("/users/<int:user_id>/deactivate")
@roles_required("admin")
def deactivate_user(user_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _change(
        user_id, lambda u: accounts.deactivate(u, by=_admin()), gettext("Account deactivated and signed out.")
    )


@bp.post("/users/<int:user_id>/reactivate")
@roles_required("admin")
def reactivate_user(user_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _change(user_id, lambda u: accounts.reactivate(u, by=_admin()), gettext("Account can sign in again."))


@bp.post("/users/<int:user_id>/sign-out")
@roles_required("admin")
def sign_out_user(user_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _change(user_id, lambda u: accounts.force_sign_out(u, by=_admin()), gettext("Signed out on every device."))


@bp.post("/users/<int:user_id>/two-step-off")
@roles_required("admin")
def reset_two_step(user_id: int):
    """A lost phone and no recovery codes: remove the authenticator so the person can set up a new one."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _change(
        user_id,
        lambda u: totp.turn_off(u, by=_admin()),
        gettext("Two-step sign-in removed and the account signed out. They set up a new app at their next sign-in."),
    )


@bp.post("/users/<int:user_id>/password")
@roles_required("admin")
def reset_password(user_id: int):
    form = PasswordForm()
    if not form.validate_on_submit():
        return render_edit(_account(user_id), 422, password_form=form)
    person = _account(user_id)
    problem = weakness(form.password.data, related=(person.email, person.name))
    if problem is not None:  # their own name or email in it: said next to the field too
        form.password.errors = [*form.password.errors, problem]
        return render_edit(person, 422, password_form=form)
    password = form.password.data
    return _change(
        user_id,
        lambda u: accounts.reset_password(u, password, by=_admin()),
        gettext("Password changed. The account is unlocked and signed out everywhere."),
    )
