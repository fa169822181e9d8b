"""Forms on the request page: the structured answer, a question, an internal note, reassignment."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from app.consultations.lateness import LATE_REASON_LABELS, NOTE_LENGTH, LateExplanation, ReasonRefused, explanation

LONG_TEXT = 5000


def _whole_number(value: object) -> int | None:
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 12 else None


def _late_reason(form: str) -> RadioField:
    return RadioField(
        _l("Why is this reply late?"),
        choices=[(reason.value, label) for reason, label in LATE_REASON_LABELS.items()],
        validators=[Optional()],
        id=f"{form}-late-reason",  # both forms can be on the page at once
    )


def _late_note(form: str) -> StringField:
    return StringField(_l("In a few words"), validators=[Optional(), Length(max=NOTE_LENGTH)], id=f"{form}-late-note")


class LateReasonFields:
    """Why a reply comes after its due moment (asked only then; the rule refuses a late reply without)."""

    late_reason: RadioField
    late_note: StringField

    def late_explanation(self) -> tuple[bool, LateExplanation | None]:
        """(valid, explanation) from the fields; an incomplete reason puts its error on the field."""
        try:
            return True, explanation(self.late_reason.data, self.late_note.data)
        except ReasonRefused as refusal:
            field = self.late_note if self.late_reason.data else self.late_reason
            field.errors = [*field.errors, str(refusal)]
            return False, None


class AnswerForm(FlaskForm, LateReasonFields):
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
    # The saved reply the text started from, if any: counted when the answer is sent.
    saved_reply_id = HiddenField(filters=[lambda v: _whole_number(v)])
    late_reason = _late_reason("answer")
    late_note = _late_note("answer")
    # --- Check back in N weeks (app.consultations.check_ins) ---
    check_in_weeks = SelectField(
        _l("Check back with the patient"),
        coerce=int,
        choices=[SelectChoice(0, _l("No check-in"))]
        + [SelectChoice(weeks, _l("In %(num)s weeks", num=weeks)) for weeks in range(2, 13)],
        default=0,
        validators=[Optional()],
    )


class QuestionForm(FlaskForm, LateReasonFields):
    question = TextAreaField(
        _l("Question to the patient"),
        validators=[DataRequired(_l("Write your question.")), Length(max=2000)],
    )
    late_reason = _late_reason("ask")
    late_note = _late_note("ask")


class NoteForm(FlaskForm):
    note = TextAreaField(
        _l("Internal note"),
        validators=[DataRequired(_l("Write the note.")), Length(max=LONG_TEXT)],
    )


class ReassignForm(FlaskForm):
    dermatologist = SelectField(_l("Give to"), coerce=int, validators=[DataRequired(_l("Choose a dermatologist."))])


class ActionForm(FlaskForm):
    """A button that changes something (claim, release): only the CSRF token."""
