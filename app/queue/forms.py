"""Forms on the request page: the structured answer, a question, an internal note, reassignment."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

LONG_TEXT = 5000


class AnswerForm(FlaskForm):
    assessment = TextAreaField(
        _l("Assessment and likely diagnosis"),
        validators=[DataRequired(_l("Write your assessment.")), Length(max=LONG_TEXT)],
    )
    treatment = TextAreaField(
        _l("Recommended treatment"),
        validators=[DataRequired(_l("Write the recommended treatment, or say none is needed.")), Length(max=LONG_TEXT)],
    )
    prescription_note = TextAreaField(_l("Prescription note"), validators=[Optional(), Length(max=LONG_TEXT)])
    follow_up = TextAreaField(_l("Follow-up advice"), validators=[Optional(), Length(max=LONG_TEXT)])
    # --- Check back in N weeks (app.consultations.check_ins) ---
    check_in_weeks = SelectField(
        _l("Check back with the patient"),
        coerce=int,
        choices=[SelectChoice(0, _l("No check-in"))]
        + [SelectChoice(weeks, _l("In %(num)s weeks", num=weeks)) for weeks in range(2, 13)],
        default=0,
        validators=[Optional()],
    )


class QuestionForm(FlaskForm):
    question = TextAreaField(
        _l("Question to the patient"),
        validators=[DataRequired(_l("Write your question.")), Length(max=2000)],
    )


class NoteForm(FlaskForm):
    note = TextAreaField(
        _l("Internal note"),
        validators=[DataRequired(_l("Write the note.")), Length(max=LONG_TEXT)],
    )


class ReassignForm(FlaskForm):
    dermatologist = SelectField(_l("Give to"), coerce=int, validators=[DataRequired(_l("Choose a dermatologist."))])


class ActionForm(FlaskForm):
    """A button that changes something (claim, release): only the CSRF token."""
