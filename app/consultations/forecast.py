"""The coverage forecast: the next 48 hours of the rota against the requests that will come due in them.

A gap is a stretch with nobody on duty. For each gap the forecast counts the open requests due in it,
and the requests expected to arrive and come due in it (from the last four weeks' arrivals in the
same hour of the week). A breach nobody on the rota can prevent is one with nobody on duty at any
moment between now (or its expected arrival) and its due moment. An open request due less than the
warning window after the last shift ends is a forecast breach too once its own warning window is near:
whoever is on duty must reply before leaving, and staff must hear of it while they can still act.
When a breach is forecast (an open request, or more likely than not a new one), staff get one email
for that gap (dedupe key per gap): as soon as the forecast shows it, up to two days ahead, and never
later than STAFF_LEAD before the warning window of the open request concerned.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.consultations import notify
from app.consultations import rota as duty
from app.consultations.clock import due_time
from app.consultations.policies import Policies
from app.consultations.states import OPEN
from app.extensions import db
from app.models import ConsultationRequest, ResponseClock
from app.timeutil import as_utc

HORIZON = timedelta(hours=48)
RATE_WEEKS = 4
LOOKBACK = timedelta(days=8)  # how far back an ongoing gap's start is looked for
HOUR = timedelta(hours=1)
# An expected count (Poisson) at which at least one arrival is more likely than not.
MORE_LIKELY_THAN_NOT = math.log(2)
# How long before an open request's warning window staff hear that it is due in a gap: a worker tick
# or two late, the email still comes at least SLA_WARNING_HOURS before the breach.
STAFF_LEAD = timedelta(minutes=15)

HourOfWeek = tuple[int, int]  # (weekday, hour) in the clinic's zone


@dataclass(frozen=True)
class GapForecast:
    starts: datetime  # when nobody was left on duty (before now for a gap that has begun)
    ends: datetime  # when someone comes on duty (the horizon, if nobody does before it)
    ends_after_horizon: bool
    longer_than_warning: bool
    open_due: tuple[str, ...] = ()  # references of open requests due in the gap
    open_unpreventable: tuple[str, ...] = ()  # ... of those, with nobody on duty before they are due
    open_before_gap: tuple[str, ...] = ()  # ... due soon after the last shift ends, their warning window near
    expected_due: float = 0.0  # new rounds expected to come due in the gap
    expected_unpreventable: float = 0.0  # ... arriving with nobody on duty before they are due
    first_breach_at: datetime | None = None  # the earliest unpreventable due moment

    @property
    def hours(self) -> float:
        return round((self.ends - self.starts).total_seconds() / 3600, 1)

    @property
    def breach_forecast(self) -> bool:
        open_breaches = self.open_unpreventable or self.open_before_gap
        return bool(open_breaches) or self.expected_unpreventable >= MORE_LIKELY_THAN_NOT


@dataclass(frozen=True)
class CoverageForecast:
    now: datetime
    ends: datetime
    in_use: bool
    gaps: list[GapForecast] = field(default_factory=list)
    expected_arrivals: float = 0.0  # new rounds expected in the whole horizon

    @property
    def open_due_uncovered(self) -> int:
        return sum(len(gap.open_due) for gap in self.gaps)

    @property
    def expected_due_uncovered(self) -> float:
        return round(sum(gap.expected_due for gap in self.gaps), 1)

    @property
    def breaches(self) -> list[GapForecast]:
        return [gap for gap in self.gaps if gap.breach_forecast]


def arrival_rates(starts: Iterable[datetime], zone: ZoneInfo, weeks: int = RATE_WEEKS) -> dict[HourOfWeek, float]:
    """Rounds started per hour of the week (clinic time), averaged over `weeks` weeks."""
    counts: dict[HourOfWeek, int] = {}
    for moment in starts:
        local = as_utc(moment).astimezone(zone)
        key = (local.weekday(), local.hour)
        counts[key] = counts.get(key, 0) + 1
    return {key: count / weeks for key, count in counts.items()}


def recent_round_starts(now: datetime, weeks: int = RATE_WEEKS) -> list[datetime]:
    since = as_utc(now) - timedelta(weeks=weeks)
    query = select(ResponseClock.started_at).where(ResponseClock.started_at >= since, ResponseClock.started_at < now)
    return list(db.session.execute(query).scalars())


def expected_arrivals(
    rates: Mapping[HourOfWeek, float], starts: datetime, ends: datetime, zone: ZoneInfo
) -> list[tuple[datetime, float]]:
    """(moment, expected count) for each hour between `starts` and `ends`, the moment the middle of
    the stretch; a partly elapsed first hour counts for what is left of it."""
    first = as_utc(starts).replace(minute=0, second=0, microsecond=0)
    slots = []
    hour = first
    while hour < ends:
        slot_starts, slot_ends = max(hour, as_utc(starts)), min(hour + HOUR, as_utc(ends))
        local = hour.astimezone(zone)
        rate = rates.get((local.weekday(), local.hour), 0.0) * ((slot_ends - slot_starts) / HOUR)
        if rate > 0:
            slots.append((slot_starts + (slot_ends - slot_starts) / 2, rate))
        hour += HOUR
    return slots


def _open_due(now: datetime, ends: datetime) -> list[tuple[str, datetime]]:
    query = (
        select(ConsultationRequest.reference, ConsultationRequest.due_at)
        .where(
            ConsultationRequest.status.in_(OPEN),
            ConsultationRequest.due_at >= now,
            ConsultationRequest.due_at < ends,
        )
        .order_by(ConsultationRequest.due_at)
    )
    return [(reference, due_at) for reference, due_at in db.session.execute(query) if due_at is not None]


@dataclass
class _Tally:
    open_due: list[str] = field(default_factory=list)
    open_unpreventable: list[str] = field(default_factory=list)
    open_before_gap: list[str] = field(default_factory=list)
    expected_due: float = 0.0
    expected_unpreventable: float = 0.0
    first_breach_at: datetime | None = None

    def breach(self, moment: datetime) -> None:
        self.first_breach_at = moment if self.first_breach_at is None else min(self.first_breach_at, moment)


def build(policies: Policies, now: datetime) -> CoverageForecast:
    """The forecast for the HORIZON from `now`."""
    now = as_utc(now)
    ends = now + HORIZON
    rota = duty.load(policies.rota, now - LOOKBACK, ends)
    rates = arrival_rates(recent_round_starts(now), policies.zone)
    arrivals = expected_arrivals(rates, now, ends, policies.zone)
    total = round(sum(rate for _, rate in arrivals), 1)
    gaps = [gap for gap in rota.gaps() if gap[1] > now]
    if not rota.in_use or not gaps:
        return CoverageForecast(now, ends, rota.in_use, [], total)
    tallies = [_Tally() for _ in gaps]
    warning = timedelta(hours=policies.response.warning_hours)

    def gap_of(moment: datetime) -> int | None:
        return next((n for n, (s, e) in enumerate(gaps) if s <= moment < e), None)

    for reference, due_at in _open_due(now, ends):
        index = gap_of(as_utc(due_at))
        if index is not None:
            tallies[index].open_due.append(reference)
            if not rota.covered_between(now, due_at):
                tallies[index].open_unpreventable.append(reference)
                tallies[index].breach(as_utc(due_at))
            elif now >= as_utc(due_at) - warning - STAFF_LEAD:
                tallies[index].open_before_gap.append(reference)
                tallies[index].breach(as_utc(due_at))
    for arrives, rate in arrivals:
        due = due_time(arrives, policies.response)
        index = gap_of(due) if due < ends else None
        if index is not None:
            tallies[index].expected_due += rate
            if not rota.covered_between(arrives, due):
                tallies[index].expected_unpreventable += rate
                tallies[index].breach(due)
    found = []
    for (starts, gap_ends), tally in zip(gaps, tallies, strict=True):
        longer = gap_ends - starts > warning
        if not (longer or tally.open_due or tally.expected_due):
            continue  # a short change-over with nothing due in it
        found.append(
            GapForecast(
                starts=starts,
                ends=gap_ends,
                ends_after_horizon=gap_ends >= ends,
                longer_than_warning=longer,
                open_due=tuple(tally.open_due),
                open_unpreventable=tuple(tally.open_unpreventable),
                open_before_gap=tuple(tally.open_before_gap),
                expected_due=round(tally.expected_due, 1),
                expected_unpreventable=round(tally.expected_unpreventable, 2),
                first_breach_at=tally.first_breach_at,
            )
        )
    return CoverageForecast(now, ends, True, found, total)


def gap_key(gap: GapForecast, now: datetime) -> str:
    """The gap's name in its email's dedupe key: its start. A gap begun before the forecast looks back
    (nobody on duty for over a week) is named by the ISO week, so it is reported again once a week."""
    if gap.starts <= as_utc(now) - LOOKBACK:
        year, week, _ = (as_utc(now) - LOOKBACK).isocalendar()
        return f"since-{year}-W{week:02d}"
    return gap.starts.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return as_utc(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def alert_gaps(policies: Policies, now: datetime) -> dict[str, int]:
    """Email staff once per gap in which a breach nobody on the rota can prevent is forecast."""
    forecast = build(policies, now)
    counts = {"gaps_alerted": 0, "gap_emails": 0}
    for gap in forecast.breaches:
        context = {
            "gap_from": _local(max(gap.starts, forecast.now), policies.zone),
            "gap_to": _local(gap.ends, policies.zone),
            "open_until": gap.ends_after_horizon,
            "open_requests": len(gap.open_unpreventable),
            "open_before_gap": len(gap.open_before_gap),
            "expected_requests": round(gap.expected_unpreventable, 1),
            "first_breach": _local(gap.first_breach_at or gap.ends, policies.zone),
        }
        queued = notify.coverage_gap(gap_key(gap, now), context, policies.alerts)
        db.session.commit()
        counts["gaps_alerted"] += 1 if queued else 0
        counts["gap_emails"] += queued
    return counts
