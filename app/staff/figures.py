"""The staff dashboard's figures from response rounds: plain values in, plain values out.

A round counts on the day its outcome was decided: the reply if it came in time, else the due moment.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.consultations.clock import AT_RISK, MET, MISSED, ON_TRACK, OVERDUE, ResponsePolicy, clock_state, round_outcome
from app.timeutil import as_utc


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
    urgent: bool = False  # worked as urgent (red-flag answers), with its own shorter target


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


def compliance(rounds: Iterable[RoundFacts], now: datetime, days: int, urgent: bool | None = None) -> Compliance:
    """Rounds decided in the last `days` days (rolling): how many met the target and how many missed it.

    `urgent`: only urgent rounds (True), only routine ones (False), or all (None)."""
    results = [
        outcome(r, now)
        for r in rounds
        if (urgent is None or r.urgent == urgent) and _in_window(decided_at(r, now), now, days)
    ]
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


def open_by_state(due_times: Iterable[datetime], now: datetime, policy: ResponsePolicy) -> dict[str, int]:
    """How many open requests are on track, at risk and overdue right now."""
    counts = {ON_TRACK: 0, AT_RISK: 0, OVERDUE: 0}
    for due_at in due_times:
        counts[clock_state(due_at, now, policy)] += 1
    return counts


# --- Was this helpful? Ratings per month and per dermatologist ----------------------------------


@dataclass(frozen=True)
class Rating:
    """One patient's rating as the figures see it."""

    given_at: datetime
    rating: int
    dermatologist_id: int | None = None


@dataclass(frozen=True)
class RatingFigures:
    count: int
    average: float | None
    helpful: int  # rated 4 or 5

    @property
    def helpful_share(self) -> float | None:
        return round(100 * self.helpful / self.count, 1) if self.count else None


def rating_figures(ratings: Iterable[Rating]) -> RatingFigures:
    values = [r.rating for r in ratings]
    average = round(sum(values) / len(values), 2) if values else None
    return RatingFigures(count=len(values), average=average, helpful=sum(1 for v in values if v >= 4))


def ratings_by_month(
    ratings: Iterable[Rating], now: datetime, months: int, zone: ZoneInfo
) -> list[tuple[date, RatingFigures]]:
    """The last `months` calendar months in the clinic's zone (this month last), each with its ratings."""
    today = as_utc(now).astimezone(zone).date()
    firsts = []
    year, month = today.year, today.month
    for _ in range(months):
        firsts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    buckets: dict[date, list[Rating]] = {first: [] for first in firsts}
    for r in ratings:
        local = as_utc(r.given_at).astimezone(zone).date()
        key = date(local.year, local.month, 1)
        if key in buckets:
            buckets[key].append(r)
    return [(first, rating_figures(buckets[first])) for first in reversed(firsts)]


def ratings_by_dermatologist(ratings: Iterable[Rating]) -> dict[int | None, RatingFigures]:
    grouped: dict[int | None, list[Rating]] = {}
    for r in ratings:
        grouped.setdefault(r.dermatologist_id, []).append(r)
    return {dermatologist: rating_figures(rows) for dermatologist, rows in grouped.items()}
