"""Paid consultations are off unless switched on, and switched on only with what they need:
the tiers are checked at start-up, the Stripe keys must be there (and never appear in the message)."""

from __future__ import annotations

import pytest

import config as app_config
from app import create_app
from app.consultations.tiers import PaymentPolicy
from app.extensions import db
from tests.conftest import build_app, reset_database
from tests.factories import submit_request
from tests.stripe_standin import SECRET_KEY, WEBHOOK_SECRET

KEYS = {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}


def test_tiers_are_read_in_order_with_their_hours_and_prices():
    assert app_config.parse_payment_tiers(" standard:24:3900 , express:12:5900,priority:4:12900") == [
        ("standard", 24, 3900),
        ("express", 12, 5900),
        ("priority", 4, 12900),
    ]
    policy = PaymentPolicy.from_config(app_config.load("testing", {"LATE_REFUND_PERCENT": 33}))
    assert [tier.label for tier in policy.tiers] == ["Standard", "Express"]
    assert (policy.late_refund_cents(3900), policy.late_refund_cents(5900)) == (1287, 1947)


@pytest.mark.parametrize(
    "tiers",
    [
        "standard:24",
        "standard:24:39.00",
        "Standard:24:3900",
        "standard:0:3900",
        "standard:400:3900",
        "standard:24:10",
        "standard:24:3900,standard:12:5900",
        "",
        "a:1:100,b:1:100,c:1:100,d:1:100,e:1:100,f:1:100,g:1:100",
    ],
)
def test_a_wrong_tier_list_is_refused_at_start_up(tiers):
    with pytest.raises(app_config.ConfigError) as refused:
        app_config.load("testing", {"PAYMENT_TIERS": tiers})
    assert refused.value.setting == "PAYMENT_TIERS" and "name:hours:cents" in str(refused.value)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"STRIPE_SECRET_KEY": None}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": "pk_live_publishable"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET"),
        ({"PAYMENT_TIERS": "standard:24:3900,flash:4:9900"}, "PAYMENT_TIERS"),  # no room for the 4-hour warning
        ({"LATE_REFUND_PERCENT": 0}, "LATE_REFUND_PERCENT"),
        ({"UNPAID_KEEP_HOURS": 0}, "UNPAID_KEEP_HOURS"),
        ({"STRIPE_CHECKOUT_ORIGIN": "https://checkout.stripe.com/pay"}, "STRIPE_CHECKOUT_ORIGIN"),
    ],
)
def test_payments_switched_on_need_their_keys_and_sensible_tiers(overrides, setting):
    with pytest.raises(app_config.ConfigError) as refused:
        app_config.load("testing", {"PAYMENTS_ENABLED": True, **KEYS, **overrides})
    assert refused.value.setting == setting
    assert SECRET_KEY not in str(refused.value) and "pk_live_publishable" not in str(refused.value)


def test_off_by_default_the_app_runs_free_without_any_key(tmp_path):
    app = build_app(tmp_path)
    assert app.config["PAYMENTS_ENABLED"] is False and app.config["STRIPE_SECRET_KEY"] is None
    reset_database(app)
    with app.app_context():
        client = app.test_client()
        form = client.get("/consultation/new").get_data(as_text=True)
        assert 'name="tier"' not in form and "Send to a dermatologist" in form
        response = submit_request(client)
        assert response.headers["Location"].endswith("/consultation/received")
        assert client.post("/payments/webhook", data=b"{}").status_code == 404
        assert client.get("/payments/return?session_id=cs_test_x").status_code == 404
        csp = client.get("/").headers["Content-Security-Policy"]
        assert "form-action 'self';" in csp or csp.endswith("form-action 'self'")
        db.session.remove()


def test_switched_on_the_payment_page_is_an_allowed_form_target(tmp_path):
    app = create_app("testing", {"UPLOAD_DIR": str(tmp_path), "PAYMENTS_ENABLED": True, **KEYS})
    csp = app.test_client().get("/").headers["Content-Security-Policy"]
    assert "form-action 'self' https://checkout.stripe.com" in csp
