"""The settings a consultation's rules need, as small typed objects built and checked once in
create_app (from the already validated configuration) and handed to the rules explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.consultations.clock import ResponsePolicy
from app.consultations.letter import Clinic
from app.consultations.rota import RotaPolicy
from app.consultations.tiers import PaymentPolicy
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
    """Who gets staff alerts besides dermatologists, in which language, and the clock shown in them;
    the rota says which dermatologists are on duty to get theirs."""

    emails: tuple[str, ...]
    language: str
    zone: ZoneInfo
    rota: RotaPolicy = field(default_factory=RotaPolicy.default)


@dataclass(frozen=True)
class EscalationPolicy:
    """The ladder: at risk -> the holder (or the dermatologists on duty), overdue -> staff, still
    overdue `lead_after_hours` after the due moment -> the medical lead."""

    lead_after_hours: int


@dataclass(frozen=True)
class AssignmentPolicy:
    """AUTO_ASSIGN: new and released requests go to the on-duty dermatologist with the fewest open ones."""

    enabled: bool
    rota: RotaPolicy


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
    rota: RotaPolicy
    escalation: EscalationPolicy
    assignment: AssignmentPolicy
    weekly_summary: bool  # WEEKLY_SUMMARY: email staff last week's figures every Monday
    triage: TriagePolicy
    check_ins: CheckInPolicy

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policies:
        rota = RotaPolicy.from_config(config)
        return cls(
            response=ResponsePolicy.from_config(config),
            follow_up=FollowUpPolicy(days=int(config["PATIENT_FOLLOW_UP_DAYS"])),
            photos=PhotoLimits.from_config(config),
            max_photos=int(config["MAX_PHOTOS"]),
            alerts=StaffAlerts(
                emails=tuple(config["STAFF_ALERT_EMAILS"]),
                language=str(config["STAFF_ALERT_LANGUAGE"]),
                zone=ZoneInfo(str(config["DISPLAY_TIMEZONE"])),
                rota=rota,
            ),
            zone=ZoneInfo(str(config["DISPLAY_TIMEZONE"])),
            upload_dir=str(config["UPLOAD_DIR"]),
            clinic=Clinic(
                name=str(config["CLINIC_NAME"]).strip(),
                address=str(config["CLINIC_ADDRESS"]).strip(),
                company_code=str(config["CLINIC_COMPANY_CODE"]).strip(),
                vat_number=str(config["CLINIC_VAT_NUMBER"]).strip(),
            ),
            payments=PaymentPolicy.from_config(config),
            rota=rota,
            escalation=EscalationPolicy(lead_after_hours=int(config["ESCALATE_AFTER_HOURS"])),
            assignment=AssignmentPolicy(enabled=bool(config["AUTO_ASSIGN"]), rota=rota),
            weekly_summary=bool(config["WEEKLY_SUMMARY"]),
            triage=TriagePolicy.from_config(config),
            check_ins=CheckInPolicy(reply_days=int(config["CHECK_IN_REPLY_DAYS"])),
        )
