"""The 24-hour target: when a reply is due, starting and stopping the response clock, the state of
a clock (on track, at risk, overdue; met or missed once answered), the optional clinic calendar
(opening hours on working days, Lithuanian public holidays skipped) and the staff dashboard's figures.

Functions here take values and return values (or change the request handed to them);
they never commit, so the caller's transaction decides.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import overload
from zoneinfo import ZoneInfo

import holidays
from flask import current_app

from app.models import ConsultationRequest, ResponseClock, User
from app.timeutil import as_utc


def due_time(start: datetime, settings: dict | None = None) -> datetime:
    """When a reply to something received at `start` is due.

    Calendar hours by default; with SLA_CALENDAR = "clinic" only the clinic's opening hours
    on working days count (see add_working_hours).
    """
    settings = settings if settings is not None else current_app.config
    if settings.get("SLA_CALENDAR") == CLINIC_CALENDAR:
        return add_working_hours(as_utc(start), settings["RESPONSE_TARGET_HOURS"], settings)
    return as_utc(start) + timedelta(hours=settings["RESPONSE_TARGET_HOURS"])


def start_clock(consultation: ConsultationRequest, now: datetime) -> ResponseClock:
    """Start the clock for the current round: on submission, and again after each patient reply."""
    due = due_time(now)
    if consultation.response_round is None:  # a new, unsaved request: the column default is not set yet
        consultation.response_round = 1
    clock = ResponseClock(round=consultation.response_round, started_at=now, due_at=due)
    consultation.clocks.append(clock)
    consultation.clock_started_at = now
    consultation.due_at = due
    return clock


def stop_clock(consultation: ConsultationRequest, now: datetime, by: User) -> None:
    """A dermatologist's message to the patient (answer or question) meets the current round."""
    for clock in consultation.clocks:
        if clock.round == consultation.response_round and clock.stopped_at is None:
            clock.stopped_at = now
            clock.stopped_by_id = by.id
    if consultation.first_response_at is None:
        consultation.first_response_at = now
    consultation.clock_started_at = None
    consultation.due_at = None


def next_round(consultation: ConsultationRequest, now: datetime) -> ResponseClock:
    """A patient's reply: a new promise of a reply within the target."""
    consultation.response_round += 1
    return start_clock(consultation, now)


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


def clock_state(due_at: datetime | None, now: datetime, settings: dict | None = None) -> str:
    """on_track, at_risk (SLA_WARNING_HOURS or less left), overdue (past due), or stopped (no clock)."""
    if due_at is None:
        return STOPPED
    remaining = time_left(due_at, now)
    if remaining <= timedelta(0):
        return OVERDUE
    settings = settings if settings is not None else current_app.config
    if settings.get("SLA_CALENDAR") == CLINIC_CALENDAR:
        # The clinic calendar warns by opening hours left, so the alert comes while someone can act.
        remaining = working_time_between(as_utc(now), as_utc(due_at), settings)
    if remaining <= timedelta(hours=settings["SLA_WARNING_HOURS"]):
        return AT_RISK
    return ON_TRACK


# --- The clinic calendar: only opening hours on working days count -------------------------------

CALENDAR_HOURS = "calendar"
CLINIC_CALENDAR = "clinic"
_SEARCH_DAYS = 3 * 366  # a calendar with no opening hours at all is a configuration error


@lru_cache(maxsize=16)
def _public_holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year).keys())


def is_working_day(day: date, settings: dict) -> bool:
    """Monday to Friday, except public holidays (Lithuanian by default)."""
    country = settings.get("CLINIC_HOLIDAYS_COUNTRY") or "LT"
    return day.weekday() < 5 and day not in _public_holidays(country, day.year)


def _clinic_zone(settings: dict) -> ZoneInfo:
    return ZoneInfo(settings.get("DISPLAY_TIMEZONE") or "Europe/Vilnius")


def _at_local_hour(day: date, hour: int, zone: ZoneInfo) -> datetime:
    # Wall-clock arithmetic in the clinic's zone, so opening hours stay put across DST changes.
    return (datetime.combine(day, time(0), tzinfo=zone) + timedelta(hours=hour)).astimezone(UTC)


def opening_windows(start: datetime, settings: dict) -> Iterator[tuple[datetime, datetime]]:
    """The clinic's opening hours (UTC pairs) from `start` on; the first one is clipped to `start`."""
    if not 0 <= settings["CLINIC_OPENING_HOUR"] < settings["CLINIC_CLOSING_HOUR"] <= 24:
        raise ValueError("The clinic calendar has no opening hours; check CLINIC_OPENING_HOUR/CLINIC_CLOSING_HOUR.")
    zone = _clinic_zone(settings)
    start = as_utc(start)
    first_day = start.astimezone(zone).date()
    for offset in range(_SEARCH_DAYS):
        day = first_day + timedelta(days=offset)
        if not is_working_day(day, settings):
            continue
        opens = _at_local_hour(day, settings["CLINIC_OPENING_HOUR"], zone)
        closes = _at_local_hour(day, settings["CLINIC_CLOSING_HOUR"], zone)
        if closes > start:
            yield max(opens, start), closes
    raise ValueError("The clinic calendar has no opening hours; check CLINIC_OPENING_HOUR/CLINIC_CLOSING_HOUR.")


def add_working_hours(start: datetime, hours: float, settings: dict) -> datetime:
    """The moment `hours` of opening time after `start` (a start outside hours counts from the next opening)."""
    remaining = timedelta(hours=hours)
    for opens, closes in opening_windows(start, settings):
        if opens + remaining <= closes:
            return opens + remaining
        remaining -= closes - opens
    raise AssertionError("unreachable: opening_windows raises when it runs out")


def working_time_between(start: datetime, end: datetime, settings: dict) -> timedelta:
    """Opening time between two moments (negative when `end` is before `start`)."""
    start, end = as_utc(start), as_utc(end)
    if end < start:
        return -working_time_between(end, start, settings)
    total = timedelta(0)
    for opens, closes in opening_windows(start, settings):
        if opens >= end:
            break
        total += min(closes, end) - opens
    return total


# --- Rounds that are over: met or missed ---------------------------------------------------------

MET = "met"
MISSED = "missed"


def round_outcome(due_at: datetime, stopped_at: datetime) -> str:
    """Met when the reply came before the due moment; at the due moment the clock already shows overdue."""
    return MET if as_utc(stopped_at) < as_utc(due_at) else MISSED


def round_state(due_at: datetime, stopped_at: datetime | None, now: datetime, settings: dict | None = None) -> str:
    """met/missed for a stopped round, otherwise the running clock's state."""
    if stopped_at is not None:
        return round_outcome(due_at, stopped_at)
    return clock_state(due_at, now, settings)


def request_state(consultation: ConsultationRequest, now: datetime, settings: dict | None = None) -> str:
    """The running clock's state, or once answered the last round's met/missed (stopped if no round yet)."""
    if consultation.due_at is not None:
        return clock_state(consultation.due_at, now, settings)
    stopped = [
        (clock.round, clock.due_at, clock.stopped_at) for clock in consultation.clocks if clock.stopped_at is not None
    ]
    if not stopped:
        return STOPPED
    _, due_at, stopped_at = max(stopped, key=lambda facts: facts[0])
    return round_outcome(due_at, stopped_at)


# --- Figures for the staff dashboard: plain values in, plain values out --------------------------


@dataclass(frozen=True)
class RoundFacts:
    """One response round as the figures see it."""

    request_id: int
    round: int
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None = None
    dermatologist_id: int | None = None  # held the claim (or, failing that, sent the reply)
    cancelled: bool = False  # the request ended (withdrawn, closed) with this round unanswered


def decided_at(facts: RoundFacts, now: datetime) -> datetime | None:
    """When the round's outcome became known: the reply if in time, otherwise the due moment.

    None while the clock runs and is not yet due, and for cancelled rounds that were never answered.
    """
    if facts.stopped_at is not None:
        return facts.stopped_at if round_outcome(facts.due_at, facts.stopped_at) == MET else facts.due_at
    if facts.cancelled or now < facts.due_at:
        return None
    return facts.due_at


def outcome(facts: RoundFacts, now: datetime) -> str | None:
    """met, missed, or None while undecided (a running clock not yet due counts as missed once due)."""
    if decided_at(facts, now) is None:
        return None
    return MET if facts.stopped_at is not None and facts.stopped_at < facts.due_at else MISSED


def _in_window(moment: datetime | None, now: datetime, days: int) -> bool:
    return moment is not None and now - timedelta(days=days) < moment <= now


@dataclass(frozen=True)
class Compliance:
    met: int
    missed: int

    @property
    def decided(self) -> int:
        return self.met + self.missed

    @property
    def share(self) -> float | None:
        """Percent answered within target, None when nothing was decided."""
        return round(100 * self.met / self.decided, 1) if self.decided else None


def compliance(rounds: Iterable[RoundFacts], now: datetime, days: int) -> Compliance:
    """Rounds decided in the last `days` days (rolling): how many met the target and how many missed it."""
    results = [outcome(r, now) for r in rounds if _in_window(decided_at(r, now), now, days)]
    return Compliance(met=results.count(MET), missed=results.count(MISSED))


def first_response_hours(rounds: Iterable[RoundFacts], now: datetime, days: int) -> list[float]:
    """Hours from submission to the first reply, for requests first answered in the last `days` days."""
    return sorted(
        (r.stopped_at - r.started_at).total_seconds() / 3600
        for r in rounds
        if r.round == 1 and r.stopped_at is not None and _in_window(r.stopped_at, now, days)
    )


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], percent: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `percent`% of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class DayFigures:
    day: date
    new_requests: int
    met: int
    missed: int

    @property
    def share(self) -> float | None:
        decided = self.met + self.missed
        return round(100 * self.met / decided, 1) if decided else None


def daily(rounds: Iterable[RoundFacts], now: datetime, days: int, zone: ZoneInfo) -> list[DayFigures]:
    """The last `days` calendar days in the clinic's zone (today last): new requests, rounds met and missed.

    A round counts on the day its outcome was decided (see decided_at).
    """
    today = as_utc(now).astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    new: dict[date, int] = {}
    met: dict[date, int] = {}
    missed: dict[date, int] = {}
    for r in rounds:
        if r.round == 1 and r.started_at <= now:
            day = r.started_at.astimezone(zone).date()
            new[day] = new.get(day, 0) + 1
        decided = decided_at(r, now)
        if decided is not None:
            bucket = met if outcome(r, now) == MET else missed
            day = decided.astimezone(zone).date()
            bucket[day] = bucket.get(day, 0) + 1
    return [
        DayFigures(day=d, new_requests=new.get(d, 0), met=met.get(d, 0), missed=missed.get(d, 0))
        for d in (first + timedelta(days=n) for n in range(days))
    ]


def breaches_by_dermatologist(rounds: Iterable[RoundFacts], now: datetime, days: int) -> dict[int | None, int]:
    """Missed rounds decided in the last `days` days, per accountable dermatologist (None: unclaimed)."""
    counts: dict[int | None, int] = {}
    for r in rounds:
        if outcome(r, now) == MISSED and _in_window(decided_at(r, now), now, days):
            counts[r.dermatologist_id] = counts.get(r.dermatologist_id, 0) + 1
    return counts


def open_by_state(due_times: Iterable[datetime], now: datetime, settings: dict | None = None) -> dict[str, int]:
    """How many open requests are on track, at risk and overdue right now."""
    counts = {ON_TRACK: 0, AT_RISK: 0, OVERDUE: 0}
    for due_at in due_times:
        counts[clock_state(due_at, now, settings)] += 1
    return counts
