"""Forms on the patient's private page: a reply (text and photos), and the confirmations for
marking resolved, withdrawing and erasing. Photos are checked by app.photos, not by the form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, MultipleFileField, RadioField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from app.consultations.conversation import MAX_REPLY_LENGTH, clean_text
from app.consultations.feedback import MAX_COMMENT_LENGTH

PROGRESS_CHOICES = [
    SelectChoice("better", _l("Better")),
    SelectChoice("same", _l("About the same")),
    SelectChoice("worse", _l("Worse")),
]
RATING_CHOICES = [
    SelectChoice(1, _l("1 – not helpful")),
    SelectChoice(2, "2"),
    SelectChoice(3, "3"),
    SelectChoice(4, "4"),
    SelectChoice(5, _l("5 – very helpful")),
]


class ReplyForm(FlaskForm):
    body = TextAreaField(
        _l("Your message"),
        filters=[clean_text],
        validators=[Length(max=MAX_REPLY_LENGTH, message=_l("Please keep your message under %(max)d characters."))],
    )
    photos = MultipleFileField(_l("Add photos (optional)"))
    # Asked only in a reply to a check-in ("check back in N weeks").
    progress = RadioField(_l("How is it going?"), choices=PROGRESS_CHOICES, validators=[Optional()])


class FeedbackForm(FlaskForm):
    """Was this helpful? Once per request, after an answer."""

    rating = RadioField(
        _l("How helpful was the dermatologist's answer?"),
        choices=RATING_CHOICES,
        coerce=int,
        validators=[InputRequired(_l("Choose a rating from 1 to 5."))],
    )
    comment = TextAreaField(
        _l("Anything you would like to tell us? (optional)"),
        filters=[clean_text],
        validators=[Length(max=MAX_COMMENT_LENGTH, message=_l("Please keep your comment under %(max)d characters."))],
    )


class ConfirmForm(FlaskForm):
    """Resolve or withdraw: the second page itself is the confirmation, so only the CSRF token."""


class EraseForm(FlaskForm):
    confirm = BooleanField(
        _l("I understand that my request, the answers and my photos will be deleted for good."),
        validators=[DataRequired(_l("Tick the box to confirm, or go back to keep your data."))],
    )
