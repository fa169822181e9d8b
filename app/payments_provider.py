"""The payment provider behind one small interface: Stripe Checkout through the `stripe` package.

The rules (app/consultations/payments.py) speak to a `PaymentProvider` and get plain values back
(CheckoutFacts, RefundFacts, ProviderEvent), never SDK objects, so they are tested against the loopback
stand-in in tests/ exactly as they run against Stripe. STRIPE_API_BASE points the SDK elsewhere
(the stand-in in tests, a mock in staging); the default is Stripe's own API.

Nothing sent to the provider is health data: an amount, a tier, the request's reference and the
patient's email address (for the provider's own receipt and fraud checks).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import stripe

log = logging.getLogger(__name__)

# Our mark on every Checkout Session, so an event about someone else's session is never mistaken for ours.
METADATA_KEY = "skin_clinic_payment"
TIMEOUT_SECONDS = 20
NETWORK_RETRIES = 2


class ProviderError(Exception):
    """The provider did not do what was asked. `refused`: it answered no (a retry of the very same call
    gets the same answer); otherwise it could not be reached or failed on its side."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


class BadSignature(Exception):
    """A webhook whose signature does not verify (or whose body is not an event)."""


@dataclass(frozen=True)
class CheckoutFacts:
    """A Checkout Session as the rules need it."""

    id: str
    url: str | None
    status: str  # open, complete or expired
    payment_status: str  # paid, unpaid or no_payment_required
    payment_intent: str | None
    amount_total: int | None
    currency: str | None
    expires_at: datetime | None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def paid(self) -> bool:
        return self.payment_status == "paid" and bool(self.payment_intent)

    @property
    def payment_id(self) -> int | None:
        """Our payment's id, if this session is ours."""
        value = self.metadata.get(METADATA_KEY, "")
        return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class RefundFacts:
    id: str
    status: str  # succeeded, pending, requires_action, failed or canceled
    amount: int


@dataclass(frozen=True)
class ProviderEvent:
    id: str
    type: str
    checkout: CheckoutFacts | None  # for checkout.session.* events


@dataclass(frozen=True)
class CheckoutRequest:
    """What the patient pays for, and where the provider sends them back."""

    payment_id: int
    reference: str
    amount_cents: int
    currency: str
    product_name: str
    customer_email: str
    locale: str
    success_url: str
    cancel_url: str
    expires_at: datetime
    idempotency_key: str


class PaymentProvider(Protocol):
    def create_checkout(self, order: CheckoutRequest) -> CheckoutFacts: ...

    def retrieve_checkout(self, session_id: str) -> CheckoutFacts: ...

    def refund(
        self, *, payment_intent: str, amount_cents: int, idempotency_key: str, reference: str
    ) -> RefundFacts: ...

    def parse_event(self, payload: bytes, signature: str | None) -> ProviderEvent: ...


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int | float) else None


def checkout_facts(values: Mapping[str, Any]) -> CheckoutFacts:
    """A Checkout Session object (a plain dict, as the API sends it) as CheckoutFacts."""
    intent = values.get("payment_intent")
    if isinstance(intent, Mapping):  # expanded
        intent = intent.get("id")
    metadata = values.get("metadata") or {}
    return CheckoutFacts(
        id=str(values["id"]),
        url=values.get("url"),
        status=str(values.get("status") or ""),
        payment_status=str(values.get("payment_status") or ""),
        payment_intent=str(intent) if intent else None,
        amount_total=values.get("amount_total"),
        currency=values.get("currency"),
        expires_at=_timestamp(values.get("expires_at")),
        metadata={str(key): str(value) for key, value in dict(metadata).items()},
    )


def _describe(error: stripe.StripeError) -> str:
    """The provider's reason in a few words for staff (an error code and message; never health data)."""
    code = getattr(error, "code", None) or type(error).__name__
    message = getattr(error, "user_message", None) or str(error) or ""
    return f"{code}: {message}"[:300]


def _provider_error(error: stripe.StripeError) -> ProviderError:
    # 4xx answers (a card or refund declined, an invalid request) are a "no"; the rest may pass later.
    status = getattr(error, "http_status", None)
    refused = isinstance(error, stripe.InvalidRequestError | stripe.CardError) or (
        isinstance(status, int) and 400 <= status < 500 and status != 429
    )
    return ProviderError(_describe(error), refused=refused)


class StripeProvider:
    """Stripe Checkout and refunds through the official SDK (one client per app, safe across threads)."""

    def __init__(self, secret_key: str, webhook_secret: str, api_base: str) -> None:
        self.webhook_secret = webhook_secret
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            max_network_retries=NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
        )

    def create_checkout(self, order: CheckoutRequest) -> CheckoutFacts:
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": order.currency,
                        "unit_amount": order.amount_cents,
                        "product_data": {"name": order.product_name},
                    },
                }
            ],
            "client_reference_id": order.reference,
            "metadata": {METADATA_KEY: str(order.payment_id), "reference": order.reference},
            "payment_intent_data": {"metadata": {METADATA_KEY: str(order.payment_id), "reference": order.reference}},
            "customer_email": order.customer_email,
            "locale": order.locale,
            "success_url": order.success_url,
            "cancel_url": order.cancel_url,
            "expires_at": int(order.expires_at.timestamp()),
        }
        try:
            session = self.client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]  # a plain dict of the documented parameters
                options={"idempotency_key": order.idempotency_key},
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from None
        return checkout_facts(session.to_dict())

    def retrieve_checkout(self, session_id: str) -> CheckoutFacts:
        try:
            session = self.client.v1.checkout.sessions.retrieve(session_id)
        except stripe.StripeError as error:
            raise _provider_error(error) from None
        return checkout_facts(session.to_dict())

    def refund(self, *, payment_intent: str, amount_cents: int, idempotency_key: str, reference: str) -> RefundFacts:
        try:
            refund = self.client.v1.refunds.create(
                params={
                    "payment_intent": payment_intent,
                    "amount": amount_cents,
                    "metadata": {"reference": reference},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from None
        return RefundFacts(id=str(refund.id), status=str(refund.status or ""), amount=int(refund.amount))

    def parse_event(self, payload: bytes, signature: str | None) -> ProviderEvent:
        """Verify the webhook's signature (stripe.Webhook, with STRIPE_WEBHOOK_SECRET) and read the event."""
        try:
            event = stripe.Webhook.construct_event(payload, signature or "", self.webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as error:
            raise BadSignature(type(error).__name__) from None
        values = event.to_dict()
        obj = (values.get("data") or {}).get("object") or {}
        checkout = checkout_facts(obj) if obj.get("object") == "checkout.session" and obj.get("id") else None
        return ProviderEvent(id=str(values.get("id") or ""), type=str(values.get("type") or ""), checkout=checkout)


class PaymentsDisabled:
    """The provider when PAYMENTS_ENABLED is off: nothing may be paid, so any call is a mistake."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise ProviderError("payments are switched off (PAYMENTS_ENABLED=false)", refused=True)

    create_checkout = retrieve_checkout = refund = parse_event = _refuse


def from_config(config: Mapping[str, Any]) -> PaymentProvider:
    """The app's provider, built once in create_app."""
    if not config.get("PAYMENTS_ENABLED"):
        return PaymentsDisabled()
    stripe.enable_telemetry = False  # no timing reports about our calls go back to Stripe
    return StripeProvider(
        str(config["STRIPE_SECRET_KEY"]), str(config["STRIPE_WEBHOOK_SECRET"]), str(config["STRIPE_API_BASE"])
    )
