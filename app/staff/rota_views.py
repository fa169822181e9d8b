"""The rota on the accounts page (/staff/users/<id>): a dermatologist's weekly hours, time off and
extra shifts; and the medical-lead flag on any account. Admins only, like the rest of the page.

The rules live in app.consultations.rota (shared with `flask rota`) and app.accounts; views check the
form, call one rule and redirect, or show the page again with the error and what was typed.
"""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_babel import gettext

from app import accounts
from app.auth.session import roles_required
from app.consultations import rota
from app.extensions import db
from app.models import ExceptionKind, RotaException, User
from app.runtime import current_actor, policies
from app.staff import bp
from app.staff.rota_forms import ExceptionForm, LeadForm, WeeklyHoursForm, moment_text, shifts_from, weekly_text
from app.staff.users import ConfirmForm, render_edit


def _account(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _again(user: User, **forms):
    return render_edit(user, 422, **forms)


@bp.post("/users/<int:user_id>/rota/weekly")
@roles_required("admin")
def set_weekly_hours(user_id: int):
    user = _account(user_id)
    form = WeeklyHoursForm()
    shifts = shifts_from(form) if form.validate_on_submit() else None
    if shifts is None:
        return _again(user, weekly_form=form)
    try:
        rota.set_weekly(user, shifts, current_actor())
    except rota.RotaError as error:
        db.session.rollback()
        flash(str(error), "error")
        return _again(_account(user_id), weekly_form=form)
    flash(gettext("Working hours saved: %(hours)s.", hours=weekly_text(shifts) or gettext("none")), "success")
    return redirect(url_for("staff.edit_user", user_id=user_id, _anchor="rota"))


@bp.post("/users/<int:user_id>/rota/exceptions")
@roles_required("admin")
def add_rota_exception(user_id: int):
    user = _account(user_id)
    form = ExceptionForm()
    if not form.validate_on_submit():
        return _again(user, exception_form=form)
    policy = policies().rota
    try:
        rota.add_exception(
            user,
            ExceptionKind(form.kind.data),
            rota.parse_local_moment(moment_text(form.starts_on.data, form.starts_at.data), policy),
            rota.parse_local_moment(moment_text(form.ends_on.data, form.ends_at.data), policy, end=True),
            current_actor(),
        )
    except rota.RotaError as error:
        db.session.rollback()
        form.ends_on.errors.append(str(error))
        return _again(_account(user_id), exception_form=form)
    flash(gettext("Added to the rota."), "success")
    return redirect(url_for("staff.edit_user", user_id=user_id, _anchor="rota"))


@bp.post("/users/<int:user_id>/rota/exceptions/<int:entry_id>/remove")
@roles_required("admin")
def remove_rota_exception(user_id: int, entry_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    entry = db.session.get(RotaException, entry_id)
    if entry is None or entry.user_id != user_id:
        abort(404)
    rota.remove_exception(entry, current_actor())
    flash(gettext("Removed from the rota."), "success")
    return redirect(url_for("staff.edit_user", user_id=user_id, _anchor="rota"))


@bp.post("/users/<int:user_id>/medical-lead")
@roles_required("admin")
def set_medical_lead(user_id: int):
    user = _account(user_id)
    form = LeadForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        accounts.set_medical_lead(user, bool(form.medical_lead.data), by=current_actor().user)
    except accounts.AccountError as error:
        db.session.rollback()
        flash(str(error), "error")
        return _again(_account(user_id), lead_form=form)
    db.session.commit()
    if user.is_medical_lead:
        flash(gettext("This account is now a medical lead."), "success")
    else:
        flash(gettext("This account is no longer a medical lead."), "success")
    return redirect(url_for("staff.edit_user", user_id=user_id))
