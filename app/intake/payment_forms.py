"""The consultation form with a price: the same questions, plus the tier the patient pays for
(PAYMENTS_ENABLED). Kept apart from forms.py so that the questions and the price change separately."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField
from wtforms.validators import DataRequired

from app.consultations.tiers import Tier
from app.intake.forms import ConsultationForm


class PaidConsultationForm(ConsultationForm):
    tier = RadioField(
        _l("How soon do you need the answer?"),
        choices=[],
        validators=[DataRequired(_l("Choose how soon you need the answer."))],
    )

    def offer_tiers(self, tiers: tuple[Tier, ...]) -> None:
        """The tiers on offer, the first one chosen unless the patient chose another."""
        self.tier.choices = [(tier.name, tier.label) for tier in tiers]
        if self.tier.data not in {tier.name for tier in tiers}:
            self.tier.data = tiers[0].name if not self.is_submitted() else None
