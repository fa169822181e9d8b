"""The 24-hour target: due times (calendar and clinic hours), clock states at every boundary, met/missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from app.consultations.calendar import ClinicCalendar
from app.consultations.clock import (
    AT_RISK,
    MET,
    MISSED,
    ON_TRACK,
    OVERDUE,
    STOPPED,
    ResponsePolicy,
    clock_state,
    due_time,
    next_round,
    request_state,
    round_state,
    stop_clock,
    time_left,
)
from app.runtime import policies
from app.timeutil import utcnow
from tests.factories import make_consultation, make_user, use_settings

VILNIUS = ZoneInfo("Europe/Vilnius")
SUBMITTED_AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
CALENDAR_SETTINGS = {"RESPONSE_TARGET_HOURS": 24, "SLA_WARNING_HOURS": 4, "SLA_CALENDAR": "calendar"}
CLINIC_SETTINGS = {
    "RESPONSE_TARGET_HOURS": 24,
    "SLA_WARNING_HOURS": 4,
    "SLA_CALENDAR": "clinic",
    "CLINIC_OPENING_HOUR": 8,
    "CLINIC_CLOSING_HOUR": 20,
    "CLINIC_HOLIDAYS_COUNTRY": "LT",
    "DISPLAY_TIMEZONE": "Europe/Vilnius",
}
CALENDAR = ResponsePolicy.from_config(CALENDAR_SETTINGS)
CLINIC = ResponsePolicy.from_config(CLINIC_SETTINGS)
OPENING_HOURS = ClinicCalendar.from_config(CLINIC_SETTINGS)


def vilnius(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VILNIUS)


# --- Calendar hours (the default) ---------------------------------------------------------------


def test_a_reply_is_due_24_calendar_hours_after_submission(app):
    assert app.config["SLA_CALENDAR"] == "calendar"
    assert due_time(SUBMITTED_AT, policies().response) == SUBMITTED_AT + timedelta(hours=24)


DUE = SUBMITTED_AT + timedelta(hours=24)
BOUNDARIES = [
    ("just submitted", SUBMITTED_AT, ON_TRACK),
    ("a second before the warning", DUE - timedelta(hours=4, seconds=1), ON_TRACK),
    ("exactly at the warning threshold", DUE - timedelta(hours=4), AT_RISK),
    ("a second into the warning", DUE - timedelta(hours=4) + timedelta(seconds=1), AT_RISK),
    ("a second before due", DUE - timedelta(seconds=1), AT_RISK),
    ("exactly at due", DUE, OVERDUE),
    ("a second after due", DUE + timedelta(seconds=1), OVERDUE),
    ("a day late", DUE + timedelta(days=1), OVERDUE),
]


@pytest.mark.parametrize(("label", "moment", "expected"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_every_state_boundary_of_a_running_clock(app, label, moment, expected):
    consultation, _ = make_consultation(created_at=SUBMITTED_AT)
    assert consultation.due_at == DUE
    with time_machine.travel(moment, tick=False):
        now = utcnow()
        assert clock_state(consultation.due_at, now, CALENDAR) == expected
        assert request_state(consultation, now, CALENDAR) == expected
        assert time_left(consultation.due_at, now) == DUE - moment


@pytest.mark.parametrize(
    ("reply_at", "expected"),
    [
        (DUE - timedelta(seconds=1), MET),
        (DUE, MISSED),  # at the due moment the clock already shows overdue
        (DUE + timedelta(seconds=1), MISSED),
    ],
    ids=["a second before due", "exactly at due", "a second after due"],
)
def test_an_answered_round_is_met_or_missed(app, reply_at, expected):
    dermatologist = make_user("dermatologist")
    consultation, _ = make_consultation(created_at=SUBMITTED_AT, claimed_by=dermatologist)
    with time_machine.travel(reply_at, tick=False):
        stop_clock(consultation, utcnow(), dermatologist)
    later = reply_at + timedelta(days=3)
    assert consultation.due_at is None
    assert clock_state(consultation.due_at, later, CALENDAR) == STOPPED
    assert request_state(consultation, later, CALENDAR) == expected
    clock = consultation.clocks[0]
    assert round_state(clock.due_at, clock.stopped_at, later, CALENDAR) == expected


def test_a_patient_reply_starts_a_new_24_hour_round(app):
    dermatologist = make_user("dermatologist")
    consultation, _ = make_consultation(created_at=SUBMITTED_AT, claimed_by=dermatologist)
    stop_clock(consultation, SUBMITTED_AT + timedelta(hours=30), dermatologist)  # round 1 missed
    replied_at = SUBMITTED_AT + timedelta(hours=40)
    next_round(consultation, replied_at, CALENDAR)
    assert consultation.response_round == 2
    assert consultation.due_at == replied_at + timedelta(hours=24)
    assert request_state(consultation, replied_at + timedelta(hours=1), CALENDAR) == ON_TRACK
    assert request_state(consultation, replied_at + timedelta(hours=20), CALENDAR) == AT_RISK
    stop_clock(consultation, replied_at + timedelta(hours=2), dermatologist)
    assert [c.round for c in consultation.clocks] == [1, 2]
    assert request_state(consultation, replied_at + timedelta(days=5), CALENDAR) == MET
    assert consultation.first_response_at == SUBMITTED_AT + timedelta(hours=30)


def test_a_request_without_any_round_is_stopped(app):
    consultation, _ = make_consultation(created_at=SUBMITTED_AT)
    consultation.clocks.clear()
    consultation.due_at = None
    assert request_state(consultation, SUBMITTED_AT, CALENDAR) == STOPPED


# --- The clinic calendar: opening hours 8-20 in Vilnius, working days, Lithuanian holidays --------


def test_friday_evening_request_is_due_on_tuesday_evening():
    # Friday 19-20 (1 h) + Monday 8-20 (12 h) + Tuesday 8-19 (11 h) = 24 opening hours.
    start = vilnius(2026, 11, 27, 19, 0)
    assert due_time(start, CLINIC) == vilnius(2026, 12, 1, 19, 0)


def test_a_weekend_request_counts_from_monday_opening():
    # Nothing counts on Saturday; Monday 8-20 and Tuesday 8-20 make 24 hours.
    assert due_time(vilnius(2026, 11, 28, 10, 0), CLINIC) == vilnius(2026, 12, 1, 20, 0)


def test_a_lithuanian_public_holiday_is_skipped_midsummer():
    # Tuesday 23 June 10-20 (10 h); Wednesday 24 June (Joninės) is a holiday;
    # Thursday 8-20 (12 h); Friday 8-10 (2 h).
    assert not OPENING_HOURS.is_working_day(vilnius(2026, 6, 24, 12, 0).date())
    assert due_time(vilnius(2026, 6, 23, 10, 0), CLINIC) == vilnius(2026, 6, 26, 10, 0)


def test_a_lithuanian_public_holiday_is_skipped_16_february():
    # Friday 13 Feb 19-20 (1 h); Monday 16 Feb is a holiday; Tuesday 8-20 (12 h); Wednesday 8-19 (11 h).
    assert due_time(vilnius(2026, 2, 13, 19, 0), CLINIC) == vilnius(2026, 2, 18, 19, 0)


def test_opening_hours_stay_at_8_to_20_local_across_the_summer_time_change():
    # Friday 27 March 12-20 (8 h, UTC+2); Monday 30 March 8-20 (12 h, UTC+3); Tuesday 8-12 (4 h).
    due = due_time(vilnius(2026, 3, 27, 12, 0), CLINIC)
    assert due == vilnius(2026, 3, 31, 12, 0)
    assert due == datetime(2026, 3, 31, 9, 0, tzinfo=UTC)


def test_working_time_between_counts_only_opening_hours():
    friday_noon, monday_noon = vilnius(2026, 11, 27, 12, 0), vilnius(2026, 11, 30, 12, 0)
    assert OPENING_HOURS.working_time_between(friday_noon, monday_noon) == timedelta(hours=12)
    assert OPENING_HOURS.working_time_between(monday_noon, friday_noon) == -timedelta(hours=12)
    assert OPENING_HOURS.add_working_hours(friday_noon, 12) == monday_noon


def test_clinic_calendar_warns_by_opening_hours_left():
    # Submitted Thursday 10:00: Thu 10-20 (10 h) + Fri (12 h) + Mon 8-10 (2 h) -> due Monday 10:00.
    due = due_time(vilnius(2026, 11, 26, 10, 0), CLINIC)
    assert due == vilnius(2026, 11, 30, 10, 0)
    # Friday 18:00 leaves 2 h on Friday + 2 h on Monday: at risk while someone is there to act,
    # although 64 calendar hours remain.
    assert clock_state(due, vilnius(2026, 11, 27, 17, 59, 59), CLINIC) == ON_TRACK
    assert clock_state(due, vilnius(2026, 11, 27, 18, 0), CLINIC) == AT_RISK
    assert clock_state(due, vilnius(2026, 11, 27, 18, 0), CALENDAR) == ON_TRACK
    assert clock_state(due, vilnius(2026, 11, 29, 23, 0), CLINIC) == AT_RISK
    assert clock_state(due, due - timedelta(seconds=1), CLINIC) == AT_RISK
    assert clock_state(due, due, CLINIC) == OVERDUE


def test_start_clock_uses_the_clinic_calendar_when_configured(app, monkeypatch):
    use_settings(app, monkeypatch, SLA_CALENDAR="clinic")
    consultation, _ = make_consultation(created_at=vilnius(2026, 11, 27, 19, 0))
    assert consultation.due_at == vilnius(2026, 12, 1, 19, 0)
    assert consultation.clocks[0].due_at == vilnius(2026, 12, 1, 19, 0)


def test_a_calendar_without_opening_hours_is_refused():
    closed = ResponsePolicy.from_config({**CLINIC_SETTINGS, "CLINIC_OPENING_HOUR": 20, "CLINIC_CLOSING_HOUR": 8})
    with pytest.raises(ValueError, match="no opening hours"):
        due_time(vilnius(2026, 11, 27, 19, 0), closed)


def test_a_request_with_its_own_target_is_due_sooner(app):
    consultation, _ = make_consultation(created_at=SUBMITTED_AT, response_target_hours=4)
    assert consultation.due_at == SUBMITTED_AT + timedelta(hours=4)
    assert due_time(SUBMITTED_AT, CLINIC, 4) == CLINIC.calendar.add_working_hours(SUBMITTED_AT, 4)
