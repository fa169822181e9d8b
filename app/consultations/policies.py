"""The settings a consultation's rules need, as small typed objects built and checked once in
create_app (from the already validated configuration) and handed to the rules explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.consultations.clock import ResponsePolicy
from app.consultations.triage import TriagePolicy
from app.photos import PhotoLimits
from app.timeutil import as_utc


@dataclass(frozen=True)
class FollowUpPolicy:
    """How long after an answer the patient may still write a follow-up (PATIENT_FOLLOW_UP_DAYS)."""

    days: int

    def until(self, answered_at: datetime | None) -> datetime | None:
        return None if answered_at is None else as_utc(answered_at) + timedelta(days=self.days)


@dataclass(frozen=True)
class CheckInPolicy:
    """A dermatologist's "check back in N weeks": the weeks allowed, and how long the patient may reply
    after the check-in email (CHECK_IN_REPLY_DAYS)."""

    reply_days: int
    min_weeks: int = 2
    max_weeks: int = 12

    def allows(self, weeks: int) -> bool:
        return self.min_weeks <= weeks <= self.max_weeks

    def reply_until(self, sent_at: datetime | None) -> datetime | None:
        return None if sent_at is None else as_utc(sent_at) + timedelta(days=self.reply_days)


@dataclass(frozen=True)
class StaffAlerts:
    """Who gets staff alerts besides dermatologists, in which language, and the clock shown in them."""

    emails: tuple[str, ...]
    language: str
    zone: ZoneInfo


@dataclass(frozen=True)
class Policies:
    response: ResponsePolicy
    follow_up: FollowUpPolicy
    photos: PhotoLimits
    max_photos: int
    alerts: StaffAlerts
    zone: ZoneInfo  # the clinic's time zone, in which times are shown
    upload_dir: str  # where photos kept for a form being corrected wait (always a local folder)
    triage: TriagePolicy
    check_ins: CheckInPolicy

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policies:
        return cls(
            response=ResponsePolicy.from_config(config),
            follow_up=FollowUpPolicy(days=int(config["PATIENT_FOLLOW_UP_DAYS"])),
            photos=PhotoLimits.from_config(config),
            max_photos=int(config["MAX_PHOTOS"]),
            alerts=StaffAlerts(
                emails=tuple(config["STAFF_ALERT_EMAILS"]),
                language=str(config["STAFF_ALERT_LANGUAGE"]),
                zone=ZoneInfo(str(config["DISPLAY_TIMEZONE"])),
            ),
            zone=ZoneInfo(str(config["DISPLAY_TIMEZONE"])),
            upload_dir=str(config["UPLOAD_DIR"]),
            triage=TriagePolicy.from_config(config),
            check_ins=CheckInPolicy(reply_days=int(config["CHECK_IN_REPLY_DAYS"])),
        )
