"""The duty rota: who is on duty when, from each dermatologist's weekly working hours and dated
exceptions (time off, extra shifts), in the clinic's time zone.

Weekly hours are wall-clock times ("Mon-Fri 08:00-16:00"), so a shift starts at 08:00 local time on
both sides of a daylight-saving change: the moments are built with zoneinfo's wall-clock arithmetic,
as app.consultations.calendar does, and a night shift over the change is an hour shorter (March) or
longer (October). With ROTA_HOLIDAYS_OFF the weekly hours do not apply on public holidays; an extra
shift is how a holiday gets staffed. On duty = (weekly hours - time off) + extra shifts.

Until the rota is in use (nobody has weekly hours or an extra shift), every active dermatologist
counts as on duty, as before there was a rota.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from app.consultations import audit
from app.consultations.audit import Actor
from app.consultations.calendar import ClinicCalendar, is_public_holiday
from app.extensions import db
from app.models import AuditAction, ExceptionKind, Role, RotaException, User, WeeklyShift
from app.models.rota import MINUTES_PER_DAY
from app.timeutil import as_utc

Span = tuple[datetime, datetime]  # [starts, ends) in UTC

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LONGEST_EXCEPTION = timedelta(days=366)


class RotaError(ValueError):
    """A rota entry that cannot be stored; the message says why, in words fit for the user."""


@dataclass(frozen=True)
class RotaPolicy:
    """The clinic's zone, the country whose public holidays suspend the weekly hours (None: they
    don't), and the clinic's opening hours, which count as working hours until the rota is in use."""

    zone: ZoneInfo
    holidays_country: str | None
    opening_hours: ClinicCalendar

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RotaPolicy:
        return cls(
            zone=ZoneInfo(str(config["DISPLAY_TIMEZONE"])),
            holidays_country=str(config["CLINIC_HOLIDAYS_COUNTRY"]) if config.get("ROTA_HOLIDAYS_OFF", True) else None,
            opening_hours=ClinicCalendar.from_config(config),
        )

    @classmethod
    def default(cls) -> RotaPolicy:
        """The clinic's defaults (Europe/Vilnius, Lithuanian holidays off, open 8-20), for callers without settings."""
        zone = ZoneInfo("Europe/Vilnius")
        return cls(zone, "LT", ClinicCalendar(8, 20, "LT", zone))

    def weekly_hours_apply(self, day: date) -> bool:
        return self.holidays_country is None or not is_public_holiday(self.holidays_country, day)

    def wall_clock(self, day: date, minutes: int) -> datetime:
        """`minutes` of wall-clock time after local midnight of `day` (past 24:00: the next days), in UTC."""
        return (datetime.combine(day, time(0), tzinfo=self.zone) + timedelta(minutes=minutes)).astimezone(UTC)


# --- Weekly hours as text: "Mon-Fri 08:00-16:00, Sat 09:00-13:00" ---------------------------------


@dataclass(frozen=True, order=True)
class Shift:
    """One weekday's hours: minutes after local midnight; an end at or before the start is the next day."""

    weekday: int
    starts_minute: int
    ends_minute: int

    @property
    def crosses_midnight(self) -> bool:
        return self.ends_minute <= self.starts_minute

    @property
    def minutes(self) -> int:
        return self.ends_minute - self.starts_minute + (MINUTES_PER_DAY if self.crosses_midnight else 0)


_DAY = r"[A-Za-z]+"
_DAYS = rf"{_DAY}(?:\s*-\s*{_DAY})?(?:\s*[,/]\s*{_DAY}(?:\s*-\s*{_DAY})?)*"
_TIME = r"\d{1,2}(?::\d{2})?"
_ENTRY = re.compile(rf"(?P<days>{_DAYS})\s+(?P<starts>{_TIME})\s*-\s*(?P<ends>{_TIME})")
_SEPARATORS = re.compile(r"[\s,;]*")
NO_HOURS = {"", "off", "none", "-"}


def _weekday(name: str) -> int:
    word = name.strip().lower()
    for number, (short, full) in enumerate(zip(DAY_NAMES, _FULL_DAY_NAMES, strict=True)):
        if word in (short.lower(), full):
            return number
    raise RotaError(_l("“%(day)s” is not a day: use Mon, Tue, Wed, Thu, Fri, Sat or Sun.", day=name.strip()))


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in re.split(r"\s*[,/]\s*", text.strip()):
        first, _, last = (piece.strip() for piece in part.partition("-"))
        start = _weekday(first)
        end = _weekday(last) if last else start
        days += [(start + offset) % 7 for offset in range((end - start) % 7 + 1)]  # Fri-Mon wraps the weekend
    return days


def parse_clock(text: str, *, end: bool = False) -> int:
    """ "8", "08:00" or "8:30" as minutes after midnight; "24:00" only as the end of a shift."""
    hours_text, _, minutes_text = text.strip().partition(":")
    hours, minutes = int(hours_text), int(minutes_text or 0)
    total = hours * 60 + minutes
    if minutes > 59 or total > MINUTES_PER_DAY or (total == MINUTES_PER_DAY and not end):
        raise RotaError(
            _l("“%(time)s” is not a time of day: use 00:00 to 23:59 (24:00 to end at midnight).", time=text)
        )
    return total


def shift(weekday: int, starts: int, ends: int) -> Shift:
    """A checked shift (minutes after midnight); 00:00 as an end means midnight."""
    if ends == 0:
        ends = MINUTES_PER_DAY
    if starts == ends:
        raise RotaError(_l("A shift cannot start and end at the same time (for a whole day use 00:00-24:00)."))
    return Shift(weekday, starts, ends)


def parse_weekly(text: str) -> tuple[Shift, ...]:
    """Weekly hours from text such as "Mon-Fri 08:00-16:00, Sat 09:00-13:00" or "Sat 22:00-06:00";
    "off" (or nothing) for none. One shift per weekday."""
    if text.strip().lower() in NO_HOURS:
        return ()
    shifts: dict[int, Shift] = {}
    position = 0
    for entry in _ENTRY.finditer(text):
        if not _SEPARATORS.fullmatch(text[position : entry.start()]):
            raise RotaError(
                _l("Could not read “%(text)s”. Write days and hours like “Mon-Fri 08:00-16:00”.", text=text)
            )
        starts, ends = parse_clock(entry["starts"]), parse_clock(entry["ends"], end=True)
        for day in _days(entry["days"]):
            if day in shifts:
                raise RotaError(_l("%(day)s is given twice; one shift per day.", day=DAY_NAMES[day]))
            shifts[day] = shift(day, starts, ends)
        position = entry.end()
    if not shifts or not _SEPARATORS.fullmatch(text[position:]):
        raise RotaError(_l("Could not read “%(text)s”. Write days and hours like “Mon-Fri 08:00-16:00”.", text=text))
    return tuple(sorted(shifts.values()))


def clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_weekly(shifts: Iterable[Shift], day_names: Sequence[str] = DAY_NAMES) -> str:
    """ "Mon-Fri 08:00-16:00, Sat 09:00-13:00": consecutive days with the same hours grouped."""
    groups: list[list[Shift]] = []
    for item in sorted(shifts):
        last = groups[-1][-1] if groups else None
        same = last is not None and (last.starts_minute, last.ends_minute) == (item.starts_minute, item.ends_minute)
        if same and last is not None and item.weekday == last.weekday + 1:
            groups[-1].append(item)
        else:
            groups.append([item])
    parts = []
    for group in groups:
        days = day_names[group[0].weekday]
        if len(group) > 1:
            days += f"-{day_names[group[-1].weekday]}"
        parts.append(f"{days} {clock_text(group[0].starts_minute)}-{clock_text(group[0].ends_minute)}")
    return ", ".join(parts)


def parse_local_moment(text: str, policy: RotaPolicy, *, end: bool = False) -> datetime:
    """A date ("2026-12-24": local midnight; as an end, the midnight after, so the day is included)
    or a local date and time ("2026-12-24 12:00"), in UTC."""
    cleaned = text.strip().replace("T", " ")
    try:
        if len(cleaned) <= 10:
            day = date.fromisoformat(cleaned)
            return policy.wall_clock(day, MINUTES_PER_DAY if end else 0)
        moment = datetime.strptime(cleaned, "%Y-%m-%d %H:%M")
    except ValueError as error:
        raise RotaError(
            _l("“%(text)s” is not a date: use YYYY-MM-DD, or YYYY-MM-DD HH:MM for a time of day.", text=text)
        ) from error
    return policy.wall_clock(moment.date(), moment.hour * 60 + moment.minute)


# --- Duty spans: plain values in, plain values out -------------------------------------------------


def merge(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans joined, in order."""
    merged: list[Span] = []
    for starts, ends in sorted(spans):
        if merged and starts <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], ends))
        else:
            merged.append((starts, ends))
    return merged


def subtract(spans: Iterable[Span], removed: Iterable[Span]) -> list[Span]:
    """`spans` without any moment in `removed`."""
    result = merge(spans)
    for cut_starts, cut_ends in merge(removed):
        kept: list[Span] = []
        for starts, ends in result:
            if ends <= cut_starts or starts >= cut_ends:
                kept.append((starts, ends))
                continue
            if starts < cut_starts:
                kept.append((starts, cut_starts))
            if ends > cut_ends:
                kept.append((cut_ends, ends))
        result = kept
    return result


def clip(spans: Iterable[Span], starts: datetime, ends: datetime) -> list[Span]:
    return [(max(s, starts), min(e, ends)) for s, e in spans if e > starts and s < ends]


def weekly_spans(shifts: Iterable[Shift], starts: datetime, ends: datetime, policy: RotaPolicy) -> list[Span]:
    """The weekly hours as moments between `starts` and `ends`. A shift belongs to the day it starts
    (a night shift from a holiday's evening is off with the holiday)."""
    by_day: dict[int, list[Shift]] = {}
    for item in shifts:
        by_day.setdefault(item.weekday, []).append(item)
    first = as_utc(starts).astimezone(policy.zone).date() - timedelta(days=1)  # last night's shift may run on
    last = as_utc(ends).astimezone(policy.zone).date()
    spans = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        if not by_day.get(day.weekday()) or not policy.weekly_hours_apply(day):
            continue
        for item in by_day[day.weekday()]:
            end_minute = item.ends_minute + (MINUTES_PER_DAY if item.crosses_midnight else 0)
            spans.append((policy.wall_clock(day, item.starts_minute), policy.wall_clock(day, end_minute)))
    return clip(merge(spans), as_utc(starts), as_utc(ends))


@dataclass(frozen=True)
class DatedException:
    kind: str
    starts_at: datetime
    ends_at: datetime


def duty_spans(
    shifts: Iterable[Shift],
    exceptions: Iterable[DatedException],
    starts: datetime,
    ends: datetime,
    policy: RotaPolicy,
) -> list[Span]:
    """One person's time on duty between `starts` and `ends`: (weekly hours - time off) + extra shifts."""
    exceptions = list(exceptions)
    off = [(as_utc(e.starts_at), as_utc(e.ends_at)) for e in exceptions if e.kind == ExceptionKind.OFF]
    extra = [(as_utc(e.starts_at), as_utc(e.ends_at)) for e in exceptions if e.kind == ExceptionKind.EXTRA]
    spans = subtract(weekly_spans(shifts, starts, ends, policy), off) + extra
    return clip(merge(spans), as_utc(starts), as_utc(ends))


def gaps(spans_by_person: Iterable[Iterable[Span]], starts: datetime, ends: datetime) -> list[Span]:
    """The moments between `starts` and `ends` when nobody is on duty."""
    covered = merge(span for spans in spans_by_person for span in spans)
    return subtract([(as_utc(starts), as_utc(ends))], covered)


# --- The rota for a stretch of time, read from the database ------------------------------------------


@dataclass(frozen=True)
class Rota:
    """Who is on duty between `starts` and `ends`: each active dermatologist's duty spans."""

    starts: datetime
    ends: datetime
    in_use: bool
    spans: Mapping[int, Sequence[Span]] = field(default_factory=dict)  # user id -> spans
    with_hours: frozenset[int] = frozenset()  # who has weekly hours at all

    def is_on_duty(self, user_id: int, moment: datetime) -> bool:
        if user_id not in self.spans:
            return False
        return not self.in_use or any(s <= as_utc(moment) < e for s, e in self.spans[user_id])

    def on_duty(self, moment: datetime) -> list[int]:
        """Ids of the dermatologists on duty at `moment` (every active one while the rota is not in use)."""
        return [user_id for user_id in self.spans if self.is_on_duty(user_id, moment)]

    def on_duty_until(self, user_id: int, moment: datetime) -> datetime | None:
        """When this person's current stretch on duty ends (None if not on duty, or no rota)."""
        for starts, ends in self.spans.get(user_id, ()):
            if starts <= as_utc(moment) < ends:
                return ends
        return None

    def gaps(self, starts: datetime | None = None, ends: datetime | None = None) -> list[Span]:
        """When nobody is on duty (never, while the rota is not in use)."""
        if not self.in_use:
            return []
        return gaps(self.spans.values(), starts or self.starts, ends or self.ends)

    def covered_between(self, starts: datetime, ends: datetime) -> bool:
        """Whether anyone is on duty at some moment between `starts` and `ends`."""
        return not self.in_use or any(
            s < as_utc(ends) and e > as_utc(starts) for spans in self.spans.values() for s, e in spans
        )

    def upcoming(self, moment: datetime, limit: int = 3) -> list[tuple[int, datetime, datetime]]:
        """Who comes on duty next: each person off duty at `moment` with their next stretch on duty,
        (user id, starts, ends), soonest first."""
        if not self.in_use:
            return []
        found = []
        for user_id, spans in self.spans.items():
            if self.is_on_duty(user_id, moment):
                continue
            later = [(s, e) for s, e in spans if s > as_utc(moment)]
            if later:
                found.append((*later[0], user_id))
        return [(user_id, s, e) for s, e, user_id in sorted(found)[:limit]]


def active_dermatologists() -> list[User]:
    return list(
        db.session.execute(
            select(User).where(User.role == Role.DERMATOLOGIST, User.active.is_(True)).order_by(User.name, User.id)
        ).scalars()
    )


def rota_in_use() -> bool:
    """The rota is in use once an active dermatologist has weekly hours or an extra shift."""
    active = select(User.id).where(User.role == Role.DERMATOLOGIST, User.active.is_(True))
    weekly = select(WeeklyShift.id).where(WeeklyShift.user_id.in_(active))
    extra = select(RotaException.id).where(RotaException.user_id.in_(active), RotaException.kind == ExceptionKind.EXTRA)
    return bool(db.session.execute(select(weekly.exists() | extra.exists())).scalar())


def weekly_shifts(user_ids: Iterable[int] | None = None) -> dict[int, list[Shift]]:
    query = select(WeeklyShift).order_by(WeeklyShift.weekday)
    if user_ids is not None:
        query = query.where(WeeklyShift.user_id.in_(list(user_ids)))
    found: dict[int, list[Shift]] = {}
    for row in db.session.execute(query).scalars():
        found.setdefault(row.user_id, []).append(Shift(row.weekday, row.starts_minute, row.ends_minute))
    return found


def exceptions_between(user_ids: Iterable[int], starts: datetime, ends: datetime) -> dict[int, list[DatedException]]:
    query = select(RotaException).where(
        RotaException.user_id.in_(list(user_ids)), RotaException.ends_at > starts, RotaException.starts_at < ends
    )
    found: dict[int, list[DatedException]] = {}
    for row in db.session.execute(query.order_by(RotaException.starts_at)).scalars():
        found.setdefault(row.user_id, []).append(DatedException(row.kind, row.starts_at, row.ends_at))
    return found


def load(policy: RotaPolicy, starts: datetime, ends: datetime, people: Sequence[User] | None = None) -> Rota:
    """The rota of every active dermatologist (or of `people`, when the caller has them) between
    `starts` and `ends`."""
    starts, ends = as_utc(starts), as_utc(ends)
    ids = [user.id for user in (active_dermatologists() if people is None else people)]
    if not rota_in_use():
        return Rota(starts, ends, in_use=False, spans={user_id: ((starts, ends),) for user_id in ids})
    shifts = weekly_shifts(ids)
    exceptions = exceptions_between(ids, starts, ends)
    spans = {
        user_id: tuple(duty_spans(shifts.get(user_id, ()), exceptions.get(user_id, ()), starts, ends, policy))
        for user_id in ids
    }
    return Rota(starts, ends, in_use=True, spans=spans, with_hours=frozenset(shifts))


def on_duty_dermatologists(policy: RotaPolicy, now: datetime) -> list[User]:
    """The active dermatologists on duty at `now` (every active one while the rota is not in use)."""
    people = active_dermatologists()
    rota = load(policy, now, as_utc(now) + timedelta(minutes=1), people)
    on_duty = set(rota.on_duty(now))
    return [user for user in people if user.id in on_duty]


# --- On duty now and next, for the queue and the dashboard ---------------------------------------


@dataclass(frozen=True)
class DutyBoard:
    in_use: bool
    now: list[tuple[User, datetime | None]]  # (dermatologist, on duty until)
    next: list[tuple[User, datetime, datetime]]  # (dermatologist, starts, ends)
    no_hours: list[User]  # active dermatologists the rota never puts on duty


BOARD_LOOKAHEAD = timedelta(days=8)


def duty_board(policy: RotaPolicy, now: datetime, upcoming: int = 3) -> DutyBoard:
    """Who is on duty now (and until when), the next stretches on duty, and who never is."""
    people = {user.id: user for user in active_dermatologists()}
    rota = load(policy, now, as_utc(now) + BOARD_LOOKAHEAD, list(people.values()))
    on_now = [(people[i], rota.on_duty_until(i, now)) for i in rota.on_duty(now)]
    on_now.sort(key=lambda pair: (pair[1] or rota.ends, pair[0].name))
    following = [(people[i], s, e) for i, s, e in rota.upcoming(now, upcoming)]
    idle = [user for i, user in people.items() if rota.in_use and i not in rota.with_hours and not rota.spans.get(i)]
    return DutyBoard(rota.in_use, on_now, following, idle)


# --- Changing the rota: each change commits with its audit row, or is refused ------------------------


def _require_dermatologist(user: User) -> None:
    if user.role != Role.DERMATOLOGIST:
        raise RotaError(_l("Only dermatologists have working hours on the rota."))


def set_weekly(user: User, shifts: Sequence[Shift], actor: Actor) -> None:
    """Replace this dermatologist's weekly hours (an empty list: none)."""
    _require_dermatologist(user)
    if len({item.weekday for item in shifts}) != len(shifts):
        raise RotaError(_l("One shift per day, please."))
    db.session.execute(delete(WeeklyShift).where(WeeklyShift.user_id == user.id))
    for item in shifts:
        db.session.add(WeeklyShift(user_id=user.id, **_columns(item)))
    detail = f"user {user.id} weekly {format_weekly(shifts) or 'none'}"
    audit.record(AuditAction.ROTA_CHANGED, actor, detail=detail)
    db.session.commit()


def _columns(item: Shift) -> dict[str, int]:
    return {"weekday": item.weekday, "starts_minute": item.starts_minute, "ends_minute": item.ends_minute}


def add_exception(
    user: User, kind: ExceptionKind, starts_at: datetime, ends_at: datetime, actor: Actor
) -> RotaException:
    """Time off or an extra shift for a dated period."""
    _require_dermatologist(user)
    starts_at, ends_at = as_utc(starts_at), as_utc(ends_at)
    if ends_at <= starts_at:
        raise RotaError(_l("The end must come after the start."))
    if ends_at - starts_at > LONGEST_EXCEPTION:
        raise RotaError(_l("One entry can cover at most a year; add another for longer."))
    entry = RotaException(user_id=user.id, kind=kind.value, starts_at=starts_at, ends_at=ends_at)
    db.session.add(entry)
    db.session.flush()
    detail = f"user {user.id} {kind.value} {starts_at:%Y-%m-%d %H:%M} to {ends_at:%Y-%m-%d %H:%M} UTC"
    audit.record(AuditAction.ROTA_CHANGED, actor, detail=detail)
    db.session.commit()
    return entry


def remove_exception(entry: RotaException, actor: Actor) -> None:
    detail = f"user {entry.user_id} removed {entry.kind} {as_utc(entry.starts_at):%Y-%m-%d %H:%M} UTC"
    db.session.delete(entry)
    audit.record(AuditAction.ROTA_CHANGED, actor, detail=detail)
    db.session.commit()


def upcoming_exceptions(user: User, now: datetime, limit: int = 50) -> list[RotaException]:
    """This person's time off and extra shifts that have not ended yet, soonest first."""
    return list(
        db.session.execute(
            select(RotaException)
            .where(RotaException.user_id == user.id, RotaException.ends_at > now)
            .order_by(RotaException.starts_at)
            .limit(limit)
        ).scalars()
    )
