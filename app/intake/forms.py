"""Forms for patient intake: the consultation request and 'lost your link?'.

Choice values are short English keys stored with the request; the labels are what the patient reads.
Photos are checked by app.photos (the form only carries them), because a file's name and type
say nothing about what it really is.
"""

from __future__ import annotations

from datetime import date

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    MultipleFileField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

SEXES = [
    ("female", _l("Female")),
    ("male", _l("Male")),
    ("other", _l("Another answer, or I prefer not to say")),
]
BODY_SITES = [
    ("face", _l("Face")),
    ("scalp", _l("Scalp or hair")),
    ("neck", _l("Neck")),
    ("chest", _l("Chest")),
    ("abdomen", _l("Stomach")),
    ("back", _l("Back")),
    ("arms", _l("Arms or armpits")),
    ("hands", _l("Hands or palms")),
    ("legs", _l("Legs")),
    ("feet", _l("Feet or soles")),
    ("nails", _l("Nails")),
    ("genital", _l("Genital or groin area")),
    ("other", _l("Somewhere else")),
]
DURATIONS = [
    ("days", _l("Less than a week")),
    ("weeks", _l("1 to 4 weeks")),
    ("months", _l("1 to 12 months")),
    ("years", _l("More than a year")),
    ("recurring", _l("It comes and goes")),
]
SYMPTOMS = [
    ("itching", _l("Itching")),
    ("pain", _l("Pain or tenderness")),
    ("burning", _l("Burning or stinging")),
    ("bleeding", _l("Bleeding")),
    ("scaling", _l("Scaling, flaking or peeling")),
    ("blisters", _l("Blisters or pustules (small spots filled with fluid or pus)")),
    ("spreading", _l("Spreading or getting bigger")),
    ("changing", _l("A mole or spot changing in size, shape or colour")),
    ("none", _l("No discomfort, only how it looks")),
]
HISTORY = [
    ("family_psoriasis", _l("Psoriasis in my family")),
    ("family_eczema", _l("Eczema, asthma or hay fever in my family")),
    ("skin_cancer", _l("I have had skin cancer")),
    ("smoking", _l("I smoke")),
    ("pregnant", _l("I am pregnant or breastfeeding")),
    ("immunity", _l("A weakened immune system (an illness or medicines)")),
]
# Asked only where it can apply: dropped from the answer when the patient says they are male.
PREGNANCY = "pregnant"


class OptionCheckbox(CheckboxInput):
    """A checkbox in a group: "required" means one of the group, so never mark each box required."""

    validation_attrs = ["disabled"]


class MultiCheckboxField(SelectMultipleField):
    """Several choices shown as checkboxes (the choices() macro renders them in a fieldset)."""

    widget = ListWidget(prefix_label=False)
    option_widget = OptionCheckbox()


def options(pairs: list[tuple[str, object]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class BirthDateField(DateField):
    """A date input whose 'not a date' message is ours (and translated)."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as error:
            self.data = None
            raise ValueError(str(_l("Enter a date, for example 1985-03-24."))) from error


def reachable_by_our_mail(form: FlaskForm, field: EmailField) -> None:
    """An address the clinic's mail can reach: letters outside A-Z before the @ (josé@…) need a mail
    server with SMTPUTF8, which MAIL_SMTPUTF8 says the clinic has. Said now, on the form, rather
    than learnt when the link never arrives."""
    local = (field.data or "").rpartition("@")[0]
    if local and not local.isascii() and not current_app.config.get("MAIL_SMTPUTF8"):
        raise ValidationError(
            _l(
                "We cannot send email to addresses with letters such as é or ė before the @. "
                "Please give another address, for example one with only the letters a-z, digits, dots or dashes."
            )
        )


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ConsultationForm(FlaskForm):
    # The one-time key that makes a double click or a resent form create only one request.
    submission_key = HiddenField()
    condition = SelectField(_l("Which condition are you asking about?"), choices=[], validate_choice=False)

    full_name = StringField(
        _l("Full name"),
        filters=[_strip],
        validators=[DataRequired(_l("Enter your full name.")), Length(max=120)],
    )
    email = EmailField(
        _l("Email"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter your email address: we send the link to your answer there.")),
            Email(_l("Enter an email address like name@example.com."), check_deliverability=False),
            Length(max=254),
            reachable_by_our_mail,
        ],
    )
    phone = TelField(
        _l("Phone (optional)"),
        filters=[_strip],
        validators=[
            Optional(),
            Regexp(r"^\+?[0-9 ()\-]{6,25}$", message=_l("Enter a phone number using digits, e.g. +370 600 12345.")),
            Length(max=40),
        ],
    )
    date_of_birth = BirthDateField(
        _l("Date of birth"), validators=[DataRequired(_l("Enter your date of birth, for example 1985-03-24."))]
    )
    sex = RadioField(_l("Sex"), choices=options(SEXES), validators=[DataRequired(_l("Choose one of the answers."))])

    body_sites = MultiCheckboxField(
        _l("Where on the body is it?"),
        choices=options(BODY_SITES),
        validators=[DataRequired(_l("Choose at least one place on the body."))],
    )
    duration = RadioField(
        _l("How long have you had it?"), choices=options(DURATIONS), validators=[DataRequired(_l("Choose how long."))]
    )
    symptoms = MultiCheckboxField(_l("What do you feel or notice?"), choices=options(SYMPTOMS), validators=[Optional()])
    description = TextAreaField(
        _l("Describe the problem in your own words"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Tell the dermatologist a little about the problem.")),
            Length(min=10, max=5000, message=_l("Write between %(min)d and %(max)d characters.")),
        ],
    )
    medications = TextAreaField(
        _l("Medicines and creams you use now (optional)"), filters=[_strip], validators=[Length(max=2000)]
    )
    allergies = TextAreaField(_l("Allergies (optional)"), filters=[_strip], validators=[Length(max=2000)])
    history = MultiCheckboxField(
        _l("Does any of this apply to you?"), choices=options(HISTORY), validators=[Optional()]
    )
    history_notes = TextAreaField(
        _l("Anything else about your health (optional)"), filters=[_strip], validators=[Length(max=2000)]
    )

    photos = MultipleFileField(_l("Photos"))

    # --- Red-flag triage (app.consultations.triage; the questions come from content/triage.yaml) ---
    # Choices are set per request in the reader's language, with "None of these" last.
    red_flags = MultiCheckboxField(
        _l("Do any of these apply to you now?"),
        choices=[],
        validators=[DataRequired(_l("Tick what applies to you now, or “None of these”."))],
    )
    # The advice level the patient has already seen and chosen to send anyway ("emergency" or "today").
    triage_seen = HiddenField()
    # --- end of red-flag triage ---

    consent_health_data = BooleanField(
        _l(
            "I agree that Skin Clinic keeps and uses my health information and photos "
            "so that a dermatologist can advise me."
        ),
        validators=[DataRequired(_l("We need your permission to use your health information to answer you."))],
    )
    consent_terms = BooleanField(
        _l("I have read and accept the terms of the online consultation."),
        validators=[DataRequired(_l("Please accept the terms to send your request."))],
    )

    def validate_date_of_birth(self, field) -> None:
        if field.data is None:
            return
        today = date.today()
        if field.data > today:
            raise ValidationError(_l("The date of birth cannot be in the future."))
        if field.data.year < today.year - 120:
            raise ValidationError(_l("Check the year of birth."))

    def chosen_history(self) -> list[str]:
        """The history answers, without pregnancy when it cannot apply."""
        answers = list(self.history.data or [])
        if self.sex.data == "male" and PREGNANCY in answers:
            answers.remove(PREGNANCY)
        return answers


class ResendLinkForm(FlaskForm):
    email = EmailField(
        _l("Email you used for your request"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter your email address.")),
            Email(_l("Enter an email address like name@example.com."), check_deliverability=False),
            Length(max=254),
        ],
    )
