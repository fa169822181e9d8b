"""The clinic calendar: opening hours on working days, public holidays skipped, in the clinic's zone.

With SLA_CALENDAR = "clinic" only these hours count towards the response target (see clock.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from app.timeutil import as_utc

_SEARCH_DAYS = 3 * 366  # a calendar with no opening hours at all is a configuration error


@lru_cache(maxsize=16)
def _public_holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year).keys())


def is_public_holiday(country: str, day: date) -> bool:
    """Whether `day` is a public holiday in `country` (the holidays package's code, such as LT)."""
    return day in _public_holidays(country, day.year)


@dataclass(frozen=True)
class ClinicCalendar:
    """Opening hours (whole local hours) on Monday to Friday, except the country's public holidays."""

    opening_hour: int
    closing_hour: int
    holidays_country: str
    zone: ZoneInfo

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ClinicCalendar:
        return cls(
            opening_hour=int(config["CLINIC_OPENING_HOUR"]),
            closing_hour=int(config["CLINIC_CLOSING_HOUR"]),
            holidays_country=str(config["CLINIC_HOLIDAYS_COUNTRY"]),
            zone=ZoneInfo(str(config["DISPLAY_TIMEZONE"])),
        )

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in _public_holidays(self.holidays_country, day.year)

    def _at_local_hour(self, day: date, hour: int) -> datetime:
        # Wall-clock arithmetic in the clinic's zone, so opening hours stay put across DST changes.
        return (datetime.combine(day, time(0), tzinfo=self.zone) + timedelta(hours=hour)).astimezone(UTC)

    def opening_windows(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The opening hours (UTC pairs) from `start` on; the first one is clipped to `start`."""
        if not 0 <= self.opening_hour < self.closing_hour <= 24:
            raise ValueError("The clinic calendar has no opening hours; check CLINIC_OPENING_HOUR/CLINIC_CLOSING_HOUR.")
        start = as_utc(start)
        first_day = start.astimezone(self.zone).date()
        for offset in range(_SEARCH_DAYS):
            day = first_day + timedelta(days=offset)
            if not self.is_working_day(day):
                continue
            opens = self._at_local_hour(day, self.opening_hour)
            closes = self._at_local_hour(day, self.closing_hour)
            if closes > start:
                yield max(opens, start), closes
        raise ValueError("The clinic calendar has no opening hours; check CLINIC_OPENING_HOUR/CLINIC_CLOSING_HOUR.")

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` of opening time after `start` (a start outside hours counts from the next opening)."""
        remaining = timedelta(hours=hours)
        for opens, closes in self.opening_windows(start):
            if opens + remaining <= closes:
                return opens + remaining
            remaining -= closes - opens
        raise AssertionError("unreachable: opening_windows raises when it runs out")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Opening time between two moments (negative when `end` is before `start`)."""
        start, end = as_utc(start), as_utc(end)
        if end < start:
            return -self.working_time_between(end, start)
        total = timedelta(0)
        for opens, closes in self.opening_windows(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total
