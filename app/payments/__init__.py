"""Paid consultations, the web side: the provider's webhook, the patient's way back from the payment
page, staff's view of payments and refunds, and the money and tier filters for templates.

The rules are in app/consultations/payments.py and refunds.py; the provider in app/payments_provider.py.
"""

from decimal import Decimal

from flask import Blueprint
from flask_babel import format_currency
from flask_babel import lazy_gettext as _l

from app.consultations.tiers import CURRENCY, tier_label

bp = Blueprint("payments", __name__)


@bp.app_template_filter("money")
def money(cents: int | None, currency: str = CURRENCY) -> str:
    """An amount stored in cents, as the reader's language writes money ("€39.00", "39,00 €")."""
    return format_currency(Decimal(cents or 0) / 100, currency.upper())


bp.add_app_template_filter(tier_label, "tier_label")

# Refunds in the reader's words (staff pages, the private page and emails).
REFUND_REASONS = {
    "late": _l("Our first reply came later than promised"),
    "manual": _l("Refunded by the clinic"),
    "duplicate": _l("Paid twice for the same request"),
    "unqueued": _l("Paid for a request that could no longer be sent"),
    "withdrawn": _l("Withdrawn before our first reply"),
}
REFUND_STATES = {
    "pending": _l("Being sent"),
    "succeeded": _l("Refunded"),
    "failed": _l("Refused by the payment provider; trying again"),
}


@bp.app_context_processor
def refund_words() -> dict:
    return {"refund_reasons": REFUND_REASONS, "refund_states": REFUND_STATES}


from app.payments import routes, staff  # noqa: E402,F401  (routes attach to bp)
