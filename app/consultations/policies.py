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
from app.consultations.letter import Clinic
from app.consultations.tiers import PaymentPolicy
from app.photos import PhotoLimits
from app.timeutil import as_utc


@dataclass(frozen=True)
class FollowUpPolicy:
    """How long after an answer the patient may still write a follow-up (PATIENT_FOLLOW_UP_DAYS)."""

    days: int

    def until(self, answered_at: datetime | None) -> datetime | None:
        return None if answered_at is None else as_utc(answered_at) + timedelta(days=self.days)


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
    clinic: Clinic  # who signs the patient's letters (CLINIC_NAME, CLINIC_ADDRESS)
    payments: PaymentPolicy  # paid consultations (off unless PAYMENTS_ENABLED)

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
            clinic=Clinic(name=str(config["CLINIC_NAME"]).strip(), address=str(config["CLINIC_ADDRESS"]).strip()),
            payments=PaymentPolicy.from_config(config),
        )
