"""The weekly summary: every Monday from 08:00 (clinic time) the worker emails staff last week's
figures: rounds met and missed, median and 90th percentile first response, the same by
dermatologist, reasons given for late replies, ratings (once the clinic collects them), and a link
to the dashboard. Exactly once per ISO week, however many workers run: each email's dedupe key
names the week and the recipient.

A round counts in the week its outcome became known (as on the dashboard): the reply, if it came
in time, otherwise the due moment.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select

from app.consultations import notify
from app.consultations.clock import MET, MISSED, round_outcome
from app.consultations.lateness import NO_REASON
from app.consultations.policies import Policies
from app.consultations.rota import RotaPolicy
from app.extensions import db
from app.models import ConsultationRequest, OutboundEmail, ResponseClock, User
from app.timeutil import as_utc

SEND_HOUR = 8  # Monday, clinic time


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], percent: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `percent`% of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def _one_decimal(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(frozen=True)
class Week:
    key: str  # ISO week, e.g. 2026-W48
    first_day: date  # Monday
    starts: datetime  # Monday 00:00 clinic time, in UTC
    ends: datetime  # the next Monday 00:00
    send_from: datetime  # the Monday after it, SEND_HOUR:00


def last_week(now: datetime, policy: RotaPolicy) -> Week:
    """The ISO week before the one `now` falls in (clinic time)."""
    today = as_utc(now).astimezone(policy.zone).date()
    this_monday = today - timedelta(days=today.weekday())
    monday = this_monday - timedelta(days=7)
    year, number, _ = monday.isocalendar()
    return Week(
        key=f"{year}-W{number:02d}",
        first_day=monday,
        starts=policy.wall_clock(monday, 0),
        ends=policy.wall_clock(this_monday, 0),
        send_from=policy.wall_clock(this_monday, SEND_HOUR * 60),
    )


@dataclass(frozen=True)
class DermatologistWeek:
    name: str
    met: int
    missed: int
    first_responses: int
    median_hours: float | None


@dataclass(frozen=True)
class RatingFigures:
    count: int
    average: float | None
    by_dermatologist: list[tuple[str, int, float | None]]  # (name, ratings, average)


@dataclass(frozen=True)
class WeeklyFigures:
    week: Week
    met: int
    missed: int
    first_responses: int
    median_hours: float | None
    p90_hours: float | None
    by_dermatologist: list[DermatologistWeek]
    late_reasons: list[tuple[str, int]]
    ratings: RatingFigures | None

    @property
    def share(self) -> float | None:
        decided = self.met + self.missed
        return round(100 * self.met / decided, 1) if decided else None


# --- HOOK: ratings ----------------------------------------------------------------------------------
# Patients' ratings ("Was this helpful?", 1-5) are being added separately. When their model exists,
# replace the body of weekly_ratings with a query of the ratings given between week.starts and
# week.ends: how many, their average, and the same per dermatologist who answered. The summary's
# email already shows whatever this returns; None leaves the ratings out.
def weekly_ratings(week: Week) -> RatingFigures | None:
    return None


# ------------------------------------------------------------------------------------------------------


def _decided_at(clock: ResponseClock, open_request: bool, now: datetime) -> datetime | None:
    if clock.stopped_at is not None:
        return clock.stopped_at if round_outcome(clock.due_at, clock.stopped_at) == MET else clock.due_at
    return clock.due_at if open_request and as_utc(now) >= as_utc(clock.due_at) else None


def figures(week: Week, now: datetime) -> WeeklyFigures:
    """Last week's figures, read from the response rounds."""
    rows = db.session.execute(
        select(ResponseClock, ConsultationRequest.claimed_by_id, ConsultationRequest.status)
        .join(ConsultationRequest, ConsultationRequest.id == ResponseClock.request_id)
        .where(
            or_(
                (ResponseClock.due_at >= week.starts) & (ResponseClock.due_at < week.ends),
                (ResponseClock.stopped_at >= week.starts) & (ResponseClock.stopped_at < week.ends),
            )
        )
    ).all()
    names: dict[int, str] = {user_id: name for user_id, name in db.session.execute(select(User.id, User.name))}
    outcomes: dict[int | None, list[str]] = {}
    first: dict[int | None, list[float]] = {}
    reasons: dict[str, int] = {}
    for clock, holder_id, status in rows:
        who = clock.stopped_by_id or holder_id
        decided = _decided_at(clock, status in ("submitted", "in_review"), now)
        if decided is not None and week.starts <= as_utc(decided) < week.ends:
            missed = clock.stopped_at is None or round_outcome(clock.due_at, clock.stopped_at) == MISSED
            outcomes.setdefault(who, []).append(MISSED if missed else MET)
            if missed:
                key = clock.late_reason or NO_REASON
                reasons[key] = reasons.get(key, 0) + 1
        if clock.round == 1 and clock.stopped_at is not None and week.starts <= as_utc(clock.stopped_at) < week.ends:
            first.setdefault(who, []).append((clock.stopped_at - clock.started_at).total_seconds() / 3600)
    every_outcome = [o for results in outcomes.values() for o in results]
    every_first = [hours for values in first.values() for hours in values]
    people = [
        DermatologistWeek(
            name=names.get(who, "") if who is not None else "",
            met=outcomes.get(who, []).count(MET),
            missed=outcomes.get(who, []).count(MISSED),
            first_responses=len(first.get(who, [])),
            median_hours=_one_decimal(median(first.get(who, []))),
        )
        for who in sorted(set(outcomes) | set(first), key=lambda i: (i is None, names.get(i, "") if i else ""))
    ]
    return WeeklyFigures(
        week=week,
        met=every_outcome.count(MET),
        missed=every_outcome.count(MISSED),
        first_responses=len(every_first),
        median_hours=_one_decimal(median(every_first)),
        p90_hours=_one_decimal(percentile(every_first, 90)),
        by_dermatologist=people,
        late_reasons=sorted(reasons.items(), key=lambda pair: (-pair[1], pair[0])),
        ratings=weekly_ratings(week),
    )


def email_context(found: WeeklyFigures) -> dict:
    """The figures as plain values for the email (names of colleagues and counts; nothing about a patient)."""
    ratings = found.ratings
    return {
        "week": found.week.key,
        "first_day": found.week.first_day.isoformat(),
        "last_day": (found.week.first_day + timedelta(days=6)).isoformat(),
        "met": found.met,
        "missed": found.missed,
        "share": found.share,
        "first_responses": found.first_responses,
        "median_hours": found.median_hours,
        "p90_hours": found.p90_hours,
        "dermatologists": [
            [d.name, d.met, d.missed, d.first_responses, d.median_hours] for d in found.by_dermatologist
        ],
        "late_reasons": [[reason, count] for reason, count in found.late_reasons],
        "ratings": None
        if ratings is None
        else {"count": ratings.count, "average": ratings.average, "by_dermatologist": ratings.by_dermatologist},
    }


def _already_sent(week: Week) -> bool:
    query = select(OutboundEmail.id).where(OutboundEmail.dedupe_key.startswith(f"weekly:{week.key}:")).limit(1)
    return db.session.execute(query).first() is not None


def send_weekly(policies: Policies, now: datetime) -> dict[str, int]:
    """From Monday SEND_HOUR:00 on, queue last week's summary, once per week (WEEKLY_SUMMARY)."""
    if not policies.weekly_summary:
        return {"weekly": 0}
    week = last_week(now, policies.rota)
    if as_utc(now) < week.send_from or _already_sent(week) or not notify.weekly_recipients(policies.alerts):
        return {"weekly": 0}
    queued = notify.weekly_summary(week.key, email_context(figures(week, now)), policies.alerts)
    db.session.commit()
    return {"weekly": queued}
