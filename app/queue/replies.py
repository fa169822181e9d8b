"""Saved replies at /queue/replies/: each dermatologist keeps their own, admins keep the clinic-wide
ones. The rules (who may change what, the placeholders) are in app.consultations.saved_replies."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.auth.session import roles_required
from app.conditions.library import articles
from app.consultations import saved_replies
from app.consultations.saved_replies import ReplyContent, ReplyText, SavedReplyRefused
from app.extensions import db
from app.models import Role, SavedReply, User
from app.queue import bp
from app.queue.display import condition_title
from app.queue.forms import LONG_TEXT
from app.runtime import client_address

REPLY_KEEPERS = (Role.DERMATOLOGIST, Role.ADMIN)
LANGUAGE_NAMES = {"en": "English", "lt": "Lietuvių"}


def _condition_choices() -> list[tuple[str, str]]:
    general = [("", str(_l("Any condition")))]
    return general + [(c.slug, c.title) for c in articles().all("en", include_drafts=True)]


def _language_choices() -> list[tuple[str, str]]:
    return [(code, LANGUAGE_NAMES.get(code, code)) for code in current_app.config["LANGUAGES"]]


class SavedReplyForm(FlaskForm):
    title = StringField(
        _l("Title"), validators=[DataRequired(_l("Give the reply a title.")), Length(max=saved_replies.MAX_TITLE)]
    )
    language = SelectField(_l("Language it is written in"), choices=_language_choices)
    condition_slug = SelectField(_l("Condition"), choices=_condition_choices, validators=[Optional()])
    assessment = TextAreaField(_l("Assessment and likely diagnosis"), validators=[Length(max=LONG_TEXT)])
    treatment = TextAreaField(_l("Recommended treatment"), validators=[Length(max=LONG_TEXT)])
    prescription_note = TextAreaField(_l("Prescription note"), validators=[Length(max=LONG_TEXT)])
    follow_up = TextAreaField(_l("Follow-up advice"), validators=[Length(max=LONG_TEXT)])

    def content(self) -> ReplyContent:
        return ReplyContent(
            title=self.title.data or "",
            language=self.language.data or "",
            condition_slug=self.condition_slug.data or None,
            text=ReplyText(
                assessment=self.assessment.data or "",
                treatment=self.treatment.data or "",
                prescription_note=self.prescription_note.data or "",
                follow_up=self.follow_up.data or "",
            ),
        )


class DeleteForm(FlaskForm):
    """A delete button: only the CSRF token."""


def _me() -> User:
    return current_user._get_current_object()


def _languages() -> tuple[str, ...]:
    return tuple(current_app.config["LANGUAGES"])


def _reply(reply_id: int) -> SavedReply:
    reply = db.session.get(SavedReply, reply_id)
    if reply is None or not saved_replies.may_manage(_me(), reply):
        abort(404)
    return reply


@bp.get("/replies/")
@roles_required(*REPLY_KEEPERS)
def saved_replies_list():
    return render_template(
        "queue/replies.html",
        replies=saved_replies.manageable(_me()),
        shared=saved_replies.usable(_me()) if _me().role == Role.DERMATOLOGIST else [],
        condition_title=condition_title,
        delete_form=DeleteForm(),
        language_names=LANGUAGE_NAMES,
    )


def _form_page(form: SavedReplyForm, reply: SavedReply | None, status: int = 200):
    return render_template("queue/reply_form.html", form=form, reply=reply), status


@bp.route("/replies/new", methods=["GET", "POST"])
@roles_required(*REPLY_KEEPERS)
def new_saved_reply():
    form = SavedReplyForm()
    if not form.is_submitted():
        form.language.data = str(_me().language or "en")
    if form.validate_on_submit():
        try:
            saved_replies.create(_me(), form.content(), _languages(), address=client_address())
        except SavedReplyRefused as refusal:
            db.session.rollback()
            flash(str(refusal), "error")
            return _form_page(form, None, 422)
        flash(gettext("Saved reply added."), "success")
        return redirect(url_for("queue.saved_replies_list"))
    return _form_page(form, None, 422 if form.is_submitted() else 200)


@bp.route("/replies/<int:reply_id>", methods=["GET", "POST"])
@roles_required(*REPLY_KEEPERS)
def edit_saved_reply(reply_id: int):
    reply = _reply(reply_id)
    form = SavedReplyForm(obj=reply)  # what was sent, when sent; else the stored reply
    if form.validate_on_submit():
        try:
            saved_replies.change(reply, _me(), form.content(), _languages(), address=client_address())
        except SavedReplyRefused as refusal:
            db.session.rollback()
            flash(str(refusal), "error")
            return _form_page(form, reply, 422)
        flash(gettext("Saved reply changed."), "success")
        return redirect(url_for("queue.saved_replies_list"))
    return _form_page(form, reply, 422 if form.is_submitted() else 200)


@bp.post("/replies/<int:reply_id>/delete")
@roles_required(*REPLY_KEEPERS)
def delete_saved_reply(reply_id: int):
    reply = _reply(reply_id)
    if not DeleteForm().validate_on_submit():
        abort(400)
    try:
        saved_replies.delete(reply, _me(), address=client_address())
    except SavedReplyRefused as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
    else:
        flash(gettext("Saved reply deleted."), "success")
    return redirect(url_for("queue.saved_replies_list"))
