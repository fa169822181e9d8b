"""The response clock: when a reply is due, starting and stopping it for each round, and the state of
a clock (on track, at risk, overdue; met or missed once answered).

Functions take values (a ResponsePolicy built once from the settings) and return values, or change
the request handed to them; they never commit, so the action that calls them owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, overload

from app.consultations.calendar import ClinicCalendar
from app.consultations.lateness import LateExplanation
from app.models import ConsultationRequest, ResponseClock, User
from app.timeutil import as_utc

CALENDAR_HOURS = "calendar"
CLINIC_CALENDAR = "clinic"


@dataclass(frozen=True)
class ResponsePolicy:
    """The promise: a reply within `target_hours`, a warning `warning_hours` before; counted in calendar
    hours, or in the clinic's opening hours when `calendar` is set (SLA_CALENDAR = "clinic")."""

    target_hours: int
    warning_hours: int
    calendar: ClinicCalendar | None = None

    def warning_for(self, target_hours: int | None = None) -> timedelta:
        """How long before the due moment a clock is at risk.

        A request with its own target shorter than the clinic's (an urgent request: 4 hours) is at risk
        in the last quarter of it (1 hour), never earlier than SLA_WARNING_HOURS; otherwise
        SLA_WARNING_HOURS, as for every routine request.
        """
        warning = timedelta(hours=self.warning_hours)
        if target_hours and target_hours < self.target_hours:
            return min(warning, timedelta(hours=target_hours) / 4)
        return warning

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ResponsePolicy:
        clinic = config.get("SLA_CALENDAR") == CLINIC_CALENDAR
        return cls(
            target_hours=int(config["RESPONSE_TARGET_HOURS"]),
            warning_hours=int(config["SLA_WARNING_HOURS"]),
            calendar=ClinicCalendar.from_config(config) if clinic else None,
        )


def due_time(start: datetime, policy: ResponsePolicy, target_hours: int | None = None) -> datetime:
    """When a reply to something received at `start` is due (`target_hours`: a request's own target)."""
    hours = target_hours or policy.target_hours
    if policy.calendar is not None:
        return policy.calendar.add_working_hours(as_utc(start), hours)
    return as_utc(start) + timedelta(hours=hours)


def start_clock(consultation: ConsultationRequest, now: datetime, policy: ResponsePolicy) -> ResponseClock:
    """Start the clock for the current round: on submission, and again after each patient reply."""
    due = due_time(now, policy, consultation.response_target_hours)
    if consultation.response_round is None:  # a new, unsaved request: the column default is not set yet
        consultation.response_round = 1
    clock = ResponseClock(
        round=consultation.response_round, started_at=now, due_at=due, urgent=bool(consultation.urgent)
    )
    consultation.clocks.append(clock)
    consultation.clock_started_at = now
    consultation.due_at = due
    return clock


def stop_clock(consultation: ConsultationRequest, now: datetime, by: User, late: LateExplanation | None = None) -> None:
    """A dermatologist's message to the patient (answer or question) meets the current round;
    `late` says why, when it came after the due moment."""
    for clock in consultation.clocks:
        if clock.round == consultation.response_round and clock.stopped_at is None:
            clock.stopped_at = now
            clock.stopped_by_id = by.id
            if late is not None:
                clock.late_reason = str(late.reason)
                clock.late_note = late.note
    if consultation.first_response_at is None:
        consultation.first_response_at = now
    consultation.clock_started_at = None
    consultation.due_at = None


def next_round(consultation: ConsultationRequest, now: datetime, policy: ResponsePolicy) -> ResponseClock:
    """A patient's reply: a new promise of a reply within the target."""
    consultation.response_round += 1
    return start_clock(consultation, now, policy)


# Clock states for an open request, as shown on the countdown badges.
ON_TRACK = "on_track"
AT_RISK = "at_risk"
OVERDUE = "overdue"
STOPPED = "stopped"  # no reply is owed right now (no running clock)


@overload
def time_left(due_at: datetime, now: datetime) -> timedelta: ...
@overload
def time_left(due_at: datetime | None, now: datetime) -> timedelta | None: ...
def time_left(due_at: datetime | None, now: datetime) -> timedelta | None:
    """Time until the reply is due; negative once overdue, None when no clock is running."""
    if due_at is None:
        return None
    return as_utc(due_at) - as_utc(now)


def clock_state(due_at: datetime | None, now: datetime, policy: ResponsePolicy, target_hours: int | None = None) -> str:
    """on_track, at_risk (policy.warning_for(target_hours) or less left), overdue (past due), or stopped.

    `target_hours`: the request's own target (ConsultationRequest.response_target_hours), if any."""
    if due_at is None:
        return STOPPED
    remaining = time_left(due_at, now)
    if remaining <= timedelta(0):
        return OVERDUE
    if policy.calendar is not None:
        # The clinic calendar warns by opening hours left, so the alert comes while someone can act.
        remaining = policy.calendar.working_time_between(as_utc(now), as_utc(due_at))
    if remaining <= policy.warning_for(target_hours):
        return AT_RISK
    return ON_TRACK


# --- Rounds that are over: met or missed ---------------------------------------------------------

MET = "met"
MISSED = "missed"


def round_outcome(due_at: datetime, stopped_at: datetime) -> str:
    """Met when the reply came before the due moment; at the due moment the clock already shows overdue."""
    return MET if as_utc(stopped_at) < as_utc(due_at) else MISSED


def round_state(
    due_at: datetime,
    stopped_at: datetime | None,
    now: datetime,
    policy: ResponsePolicy,
    target_hours: int | None = None,
) -> str:
    """met/missed for a stopped round, otherwise the running clock's state."""
    if stopped_at is not None:
        return round_outcome(due_at, stopped_at)
    return clock_state(due_at, now, policy, target_hours)


def request_state(consultation: ConsultationRequest, now: datetime, policy: ResponsePolicy) -> str:
    """The running clock's state, or once answered the last round's met/missed (stopped if no round yet)."""
    if consultation.due_at is not None:
        return clock_state(consultation.due_at, now, policy, consultation.response_target_hours)
    stopped = [
        (clock.round, clock.due_at, clock.stopped_at) for clock in consultation.clocks if clock.stopped_at is not None
    ]
    if not stopped:
        return STOPPED
    _, due_at, stopped_at = max(stopped, key=lambda facts: facts[0])
    return round_outcome(due_at, stopped_at)
