"""Forms on the patient's private page: a reply (text and photos), and the confirmations for
marking resolved, withdrawing and erasing. Photos are checked by app.photos, not by the form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, MultipleFileField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.consultations.conversation import MAX_REPLY_LENGTH, clean_text


class ReplyForm(FlaskForm):
    body = TextAreaField(
        _l("Your message"),
        filters=[clean_text],
        validators=[Length(max=MAX_REPLY_LENGTH, message=_l("Please keep your message under %(max)d characters."))],
    )
    photos = MultipleFileField(_l("Add photos (optional)"))


class ConfirmForm(FlaskForm):
    """Resolve or withdraw: the second page itself is the confirmation, so only the CSRF token."""


class EraseForm(FlaskForm):
    confirm = BooleanField(
        _l("I understand that my request, the answers and my photos will be deleted for good."),
        validators=[DataRequired(_l("Tick the box to confirm, or go back to keep your data."))],
    )
