"""Why a reply was late, and where each round's time went.

A dermatologist who replies after the due moment says why (one of a few reasons, or "other" in
their own words). For the figures, each round's time is split into: the patient waiting for the
clinic while someone was on duty, the patient waiting while nobody was (outside working hours),
and the clinic waiting for the patient (a question open, the clock paused).

"Working hours" are the rota's duty hours once the rota is in use; before that, the clinic's
opening hours (CLINIC_OPENING_HOUR to CLINIC_CLOSING_HOUR on working days).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from app.consultations import rota as duty
from app.consultations.calendar import ClinicCalendar
from app.consultations.states import Status
from app.extensions import db
from app.models import QUESTION, ConsultationRequest, Message, ResponseClock
from app.timeutil import as_utc

NOTE_LENGTH = 500


class LateReason(StrEnum):
    WORKLOAD = "workload"
    WAITED_FOR_PHOTOS = "waited_for_photos"
    NEEDED_COLLEAGUE = "needed_colleague"
    TECHNICAL = "technical"
    OTHER = "other"


LATE_REASON_LABELS = {
    LateReason.WORKLOAD: _l("Workload"),
    LateReason.WAITED_FOR_PHOTOS: _l("Waited for the patient's photos"),
    LateReason.NEEDED_COLLEAGUE: _l("Needed a colleague"),
    LateReason.TECHNICAL: _l("Technical problem"),
    LateReason.OTHER: _l("Other"),
}
NO_REASON = "none"  # a missed round with no reason recorded (still unanswered, or from before reasons)


class ReasonRefused(ValueError):
    """The reason given for a late reply is missing or incomplete; the message says what to add."""


@dataclass(frozen=True)
class LateExplanation:
    reason: LateReason
    note: str | None = None


def explanation(reason: str | None, note: str | None) -> LateExplanation | None:
    """A checked explanation from a form's values, or None when no reason was chosen."""
    if not reason:
        return None
    try:
        chosen = LateReason(reason)
    except ValueError as error:
        raise ReasonRefused(_l("Choose one of the reasons listed.")) from error
    text = " ".join((note or "").split())[:NOTE_LENGTH]
    if chosen == LateReason.OTHER and not text:
        raise ReasonRefused(_l("Say in a few words what made the reply late."))
    return LateExplanation(chosen, text or None)


def is_late(due_at: datetime | None, now: datetime) -> bool:
    """A reply at or after the due moment misses the round (as clock.round_outcome counts it)."""
    return due_at is not None and as_utc(now) >= as_utc(due_at)


# --- Where the time went ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundTime:
    request_id: int
    reference: str
    round: int
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    late_reason: str | None
    late_note: str | None
    within_hours: timedelta  # the patient waited for the clinic while someone was on duty
    outside_hours: timedelta  # the patient waited for the clinic while nobody was
    waiting_for_patient: timedelta  # the clinic waited for the patient's reply to a question

    @property
    def missed(self) -> bool:
        return self.stopped_at is not None and as_utc(self.stopped_at) >= as_utc(self.due_at)


def overlap(span: duty.Span, spans: Iterable[duty.Span]) -> timedelta:
    """How much of `span` lies within `spans` (merged, not overlapping)."""
    starts, ends = span
    return sum((min(e, ends) - max(s, starts) for s, e in spans if e > starts and s < ends), timedelta(0))


def working_spans(rota: duty.Rota, calendar: ClinicCalendar, starts: datetime, ends: datetime) -> list[duty.Span]:
    """Working hours between `starts` and `ends`: the rota's duty hours, or the clinic's opening hours."""
    if rota.in_use:
        return duty.merge(span for spans in rota.spans.values() for span in spans)
    if not rota.spans:  # no dermatologist at all: nobody works
        return []
    found = []
    for opens, closes in calendar.opening_windows(starts):
        if opens >= ends:
            break
        found.append((opens, min(closes, ends)))
    return found


def split(
    waiting: duty.Span, paused: duty.Span | None, working: Sequence[duty.Span]
) -> tuple[timedelta, timedelta, timedelta]:
    """(within hours, outside hours, waiting for the patient) for one round."""
    total = waiting[1] - waiting[0]
    within = overlap(waiting, working)
    return within, total - within, (paused[1] - paused[0]) if paused else timedelta(0)


def round_times(policy: duty.RotaPolicy, since: datetime, now: datetime) -> list[RoundTime]:
    """Every round that started, stopped or came due since `since`, with its time split three ways."""
    rows = db.session.execute(
        select(ResponseClock, ConsultationRequest.reference, ConsultationRequest.status, ConsultationRequest.closed_at)
        .join(ConsultationRequest, ConsultationRequest.id == ResponseClock.request_id)
        .where(or_(ResponseClock.due_at >= since, ResponseClock.stopped_at >= since, ResponseClock.started_at >= since))
        .order_by(ResponseClock.request_id, ResponseClock.round)
    ).all()
    if not rows:
        return []
    earliest = min(as_utc(clock.started_at) for clock, *_ in rows)
    rota = duty.load(policy, earliest, now)
    working = working_spans(rota, policy.opening_hours, earliest, now)
    questions = _question_times({clock.request_id for clock, *_ in rows})
    next_start = {(c.request_id, c.round): c.started_at for c, *_ in rows}
    times = []
    for clock, reference, status, closed_at in rows:
        ended = as_utc(clock.stopped_at) if clock.stopped_at is not None else as_utc(now)
        if clock.stopped_at is None and status not in (Status.SUBMITTED, Status.IN_REVIEW):
            ended = as_utc(closed_at or now)  # withdrawn or closed with the round unanswered
        paused = None
        if clock.stopped_at is not None and (clock.request_id, as_utc(clock.stopped_at)) in questions:
            resumed = next_start.get((clock.request_id, clock.round + 1))
            paused = (as_utc(clock.stopped_at), as_utc(resumed or closed_at or now))
        within, outside, patient = split((as_utc(clock.started_at), ended), paused, working)
        times.append(
            RoundTime(
                clock.request_id,
                reference,
                clock.round,
                clock.started_at,
                clock.due_at,
                clock.stopped_at,
                clock.late_reason,
                clock.late_note,
                within,
                outside,
                patient,
            )
        )
    return times


def _question_times(request_ids: set[int]) -> set[tuple[int, datetime]]:
    """(request, moment) of every question to a patient: the round it stopped paused the clock."""
    found: set[tuple[int, datetime]] = set()
    ids = sorted(request_ids)
    for start in range(0, len(ids), 500):  # keep each IN list a modest size
        query = select(Message.request_id, Message.created_at).where(
            Message.request_id.in_(ids[start : start + 500]), Message.kind == QUESTION
        )
        found.update((request_id, as_utc(created_at)) for request_id, created_at in db.session.execute(query))
    return found


@dataclass(frozen=True)
class TimeTotals:
    rounds: int
    within_hours: float
    outside_hours: float
    waiting_for_patient: float


def totals(times: Iterable[RoundTime]) -> TimeTotals:
    """Hours summed over rounds (one decimal)."""
    times = list(times)

    def hours(values: Iterable[timedelta]) -> float:
        return round(sum(values, timedelta(0)).total_seconds() / 3600, 1)

    return TimeTotals(
        rounds=len(times),
        within_hours=hours(t.within_hours for t in times),
        outside_hours=hours(t.outside_hours for t in times),
        waiting_for_patient=hours(t.waiting_for_patient for t in times),
    )


def reason_counts(times: Iterable[RoundTime]) -> list[tuple[str, int]]:
    """Missed rounds by reason, most frequent first; rounds without one count as NO_REASON."""
    counts: dict[str, int] = {}
    for item in times:
        if item.missed:
            key = item.late_reason or NO_REASON
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
