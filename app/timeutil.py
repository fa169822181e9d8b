"""Time helpers: everything is stored in UTC, timezone-aware, and shown in the clinic's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload
from zoneinfo import ZoneInfo

from flask import current_app


def utcnow() -> datetime:
    """The current moment, timezone-aware in UTC (time-machine moves it in tests)."""
    return datetime.now(UTC)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
@overload
def as_utc(moment: datetime | None) -> datetime | None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """Treat a naive datetime as UTC (SQLite returns naive values) and convert aware ones to UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@overload
def local(moment: datetime) -> datetime: ...
@overload
def local(moment: None) -> None: ...
@overload
def local(moment: datetime | None) -> datetime | None: ...
def local(moment: datetime | None) -> datetime | None:
    """A UTC moment in the clinic's display time zone (Europe/Vilnius by default)."""
    if moment is None:
        return None
    zone = ZoneInfo(current_app.config.get("DISPLAY_TIMEZONE", "Europe/Vilnius"))
    return as_utc(moment).astimezone(zone)
