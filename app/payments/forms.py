"""Staff's refund form: an amount in euros, as people type it ("39", "39.00", "39,00 €")."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, ValidationError


def parse_euros(text: str | None) -> int | None:
    """Cents from what someone typed, or None if it is not an amount."""
    cleaned = re.sub(r"[\s€]|EUR", "", (text or "").upper()).replace(",", ".")
    if not re.fullmatch(r"\d{1,6}(\.\d{1,2})?", cleaned):
        return None
    try:
        return int(Decimal(cleaned) * 100)
    except InvalidOperation:
        return None


class RefundForm(FlaskForm):
    amount = StringField(_l("Amount to refund (EUR)"), validators=[DataRequired(_l("Enter the amount to refund."))])
    confirm = BooleanField(
        _l("I have checked the amount: the money goes back to the patient's card."),
        validators=[DataRequired(_l("Tick the box to confirm the refund."))],
    )

    def validate_amount(self, field) -> None:
        if parse_euros(field.data) is None:
            raise ValidationError(_l("Enter an amount such as 39.00."))

    @property
    def cents(self) -> int:
        return parse_euros(self.amount.data) or 0


class ButtonForm(FlaskForm):
    """A button that changes something: only its CSRF token."""
