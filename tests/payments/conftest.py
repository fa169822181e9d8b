"""Paid consultations under test: the app with PAYMENTS_ENABLED, its provider pointed (STRIPE_API_BASE)
at the loopback stand-in of tests/stripe_standin.py, one stand-in per test."""

from __future__ import annotations

import pytest

from tests.conftest import app_with
from tests.stripe_standin import SECRET_KEY, WEBHOOK_SECRET, StripeStandIn

TIERS = "standard:24:3900,express:12:5900"


def paid_settings(standin: StripeStandIn, **overrides) -> dict:
    settings = {
        "PAYMENTS_ENABLED": True,
        "PAYMENT_TIERS": TIERS,
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": standin.url,
        "STRIPE_CHECKOUT_ORIGIN": standin.url,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def standin():
    server = StripeStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def app(tmp_path, standin):
    with app_with(tmp_path, **paid_settings(standin)) as app:
        yield app
