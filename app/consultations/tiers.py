"""What a consultation costs: the tiers a patient chooses from (each with its own response target and
price) and the payment settings, as a small typed policy built once from the checked settings.

PAYMENT_TIERS is parsed and validated in config.py; PAYMENTS_ENABLED=false (the default) means every
request is free and nothing here is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask_babel import lazy_gettext as _l

from config import parse_payment_tiers

CURRENCY = "eur"  # amounts are stored as integer cents of this currency

# Names the clinic is likely to use, in the reader's language; any other name is shown as written.
TIER_LABELS = {
    "standard": _l("Standard"),
    "express": _l("Express"),
    "priority": _l("Priority"),
}


@dataclass(frozen=True)
class Tier:
    name: str
    hours: int  # the response target this tier promises
    amount_cents: int

    @property
    def label(self) -> str:
        return str(TIER_LABELS.get(self.name, self.name.replace("_", " ").replace("-", " ").capitalize()))


def tier_label(name: str) -> str:
    return Tier(name, 0, 0).label


@dataclass(frozen=True)
class PaymentPolicy:
    enabled: bool
    tiers: tuple[Tier, ...]
    late_refund_percent: int
    keep_unpaid: timedelta  # how long an unpaid request waits for its payment
    currency: str = CURRENCY

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PaymentPolicy:
        return cls(
            enabled=bool(config.get("PAYMENTS_ENABLED")),
            tiers=tuple(Tier(*tier) for tier in parse_payment_tiers(config["PAYMENT_TIERS"])),
            late_refund_percent=int(config["LATE_REFUND_PERCENT"]),
            keep_unpaid=timedelta(hours=int(config["UNPAID_KEEP_HOURS"])),
        )

    def tier(self, name: str | None) -> Tier | None:
        return next((tier for tier in self.tiers if tier.name == name), None)

    def late_refund_cents(self, amount_cents: int) -> int:
        """The part of a price refunded for a late reply (rounded to the cent)."""
        return (amount_cents * self.late_refund_percent + 50) // 100
