"""Forms for the rota on the accounts page: weekly hours (one row per weekday), time off and extra
shifts, and the medical-lead flag; with the helpers that turn them into the rota's values."""

from __future__ import annotations

from datetime import date, time

from babel.dates import get_day_names
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, Field, RadioField, TimeField
from wtforms.validators import DataRequired, Optional

from app.consultations import rota
from app.models import ExceptionKind, User

WEEKDAYS = (
    _l("Monday"),
    _l("Tuesday"),
    _l("Wednesday"),
    _l("Thursday"),
    _l("Friday"),
    _l("Saturday"),
    _l("Sunday"),
)


def day_names() -> list[str]:
    """Short weekday names in the reader's language, Monday first."""
    names = get_day_names("abbreviated", locale=str(get_locale() or "en"))
    return [str(names[day]) for day in range(7)]


def weekly_text(shifts: list[rota.Shift]) -> str:
    return rota.format_weekly(shifts, day_names())


class WeeklyHoursForm(FlaskForm):
    """One row per weekday: from and to (both empty: not working; an end before the start: overnight)."""

    def rows(self) -> list[tuple[int, str, Field, Field]]:
        """(weekday, its name, from, to) for each day, Monday first."""
        return [(day, str(WEEKDAYS[day]), self[f"starts_{day}"], self[f"ends_{day}"]) for day in range(7)]


for _day, _name in enumerate(WEEKDAYS):
    setattr(WeeklyHoursForm, f"starts_{_day}", TimeField(_l("%(day)s from", day=_name), validators=[Optional()]))
    setattr(WeeklyHoursForm, f"ends_{_day}", TimeField(_l("%(day)s to", day=_name), validators=[Optional()]))


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def weekly_form_for(user: User) -> WeeklyHoursForm:
    values = {}
    for item in rota.weekly_shifts([user.id]).get(user.id, []):
        values[f"starts_{item.weekday}"] = time(item.starts_minute // 60, item.starts_minute % 60)
        ends = item.ends_minute % rota.MINUTES_PER_DAY
        values[f"ends_{item.weekday}"] = time(ends // 60, ends % 60)
    return WeeklyHoursForm(formdata=None, **values)


def shifts_from(form: WeeklyHoursForm) -> list[rota.Shift] | None:
    """The weekly hours the form describes; None (with errors on the fields) if a row is incomplete."""
    shifts, complete = [], True
    for day, _name, starts, ends in form.rows():
        if starts.data is None and ends.data is None:
            continue
        if starts.data is None or ends.data is None:
            (starts if starts.data is None else ends).errors.append(gettext("Give both times, or neither."))
            complete = False
            continue
        try:
            shifts.append(rota.shift(day, _minutes(starts.data), _minutes(ends.data)))
        except rota.RotaError as error:
            ends.errors.append(str(error))
            complete = False
    return shifts if complete else None


class ExceptionForm(FlaskForm):
    kind = RadioField(
        _l("What"),
        choices=[
            (ExceptionKind.OFF.value, _l("Time off (leave, sickness, training)")),
            (ExceptionKind.EXTRA.value, _l("Extra shift (a weekend, a public holiday)")),
        ],
        default=ExceptionKind.OFF.value,
        validators=[DataRequired(_l("Choose time off or an extra shift."))],
    )
    starts_on = DateField(_l("From (day)"), validators=[DataRequired(_l("Give the first day."))])
    starts_at = TimeField(_l("From (time)"), validators=[Optional()])
    ends_on = DateField(_l("To (day)"), validators=[DataRequired(_l("Give the last day."))])
    ends_at = TimeField(_l("To (time)"), validators=[Optional()])


class LeadForm(FlaskForm):
    medical_lead = BooleanField(_l("Medical lead"))


def moment_text(day: date, at: time | None) -> str:
    """ "2026-12-24" for a whole day, "2026-12-24 14:00" with a time (read by rota.parse_local_moment)."""
    return f"{day.isoformat()} {at:%H:%M}" if at is not None else day.isoformat()
