"""A loopback stand-in for the part of Stripe's API the clinic uses, served over real HTTP so the real
`stripe` SDK talks to it (STRIPE_API_BASE points there):

- POST /v1/checkout/sessions, GET /v1/checkout/sessions/<id>, POST /v1/checkout/sessions/<id>/expire
- POST /v1/refunds
- a payment page at /pay/<id> with "Pay" and "Cancel" buttons, as Checkout's hosted page would be:
  paying marks the session paid, sends the signed `checkout.session.completed` webhook (when a
  webhook URL is set, else keeps it in `events` for the test to deliver), then sends the browser to
  the session's success URL; cancelling sends it to the cancel URL.

It checks what Stripe checks where it matters to the clinic: the secret key, the request's shape,
a session's expiry between 30 minutes and 24 hours, refunds within what was paid, and it replays the
answer to a repeated Idempotency-Key. Failures on demand: `fail_next("refunds.create", ...)`.
Webhooks are signed with the real scheme: header `t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload">`.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import requests
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

SECRET_KEY = "sk_test_standin_0123456789"
WEBHOOK_SECRET = "whsec_standin0123456789"


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for `payload`, exactly as Stripe computes it."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (`line_items[0][price_data][currency]=eur`) back into nested values."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if isinstance(node, list):
                position = int(part)
                while len(node) <= position:
                    node.append({})
                if last:
                    node[position] = value
                else:
                    if not isinstance(node[position], dict | list) or node[position] == {}:
                        node[position] = [] if parts[index + 1].isdigit() else {}
                    node = node[position]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if parts[index + 1].isdigit() else {})
    return root


@dataclass
class Failure:
    status: int
    code: str
    message: str
    kind: str = "invalid_request_error"


@dataclass
class StripeStandIn:
    secret_key: str = SECRET_KEY
    webhook_secret: str = WEBHOOK_SECRET
    webhook_url: str | None = None  # None: events wait in `events` for the test to deliver
    sessions: dict[str, dict] = field(default_factory=dict)
    charges: dict[str, dict] = field(default_factory=dict)  # payment intent -> amount, refunded
    refunds: dict[str, dict] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)  # every event made, delivered or not
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every API call
    idempotent: dict[str, tuple[int, dict]] = field(default_factory=dict)
    failures: dict[str, list[Failure]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.RLock = field(default_factory=threading.RLock)
    unavailable: bool = False  # every API call fails with 503, as during an outage

    # --- Running -------------------------------------------------------------------------------

    def start(self) -> StripeStandIn:
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="stripe-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()

    # --- Driving it from a test ----------------------------------------------------------------

    def fail_next(
        self, operation: str, *, status: int = 400, code: str = "charge_already_refunded", message: str = "", times=1
    ) -> None:
        """The next `times` calls of `operation` (checkout.create, checkout.retrieve, refunds.create) fail."""
        kind = "card_error" if status == 402 else "api_error" if status >= 500 else "invalid_request_error"
        for _ in range(times):
            self.failures[operation].append(Failure(status, code, message or f"{code} (stand-in)", kind))

    def pay(self, session_id: str, *, deliver: bool | None = None) -> dict:
        """The patient pays on the payment page: the session is paid and its event made (and posted)."""
        with self.lock:
            session = self._live(session_id)
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}")
            intent = "pi_" + secrets.token_hex(12)
            session.update(status="complete", payment_status="paid", payment_intent=intent)
            self.charges[intent] = {"amount": session["amount_total"], "refunded": 0}
            event = self.make_event("checkout.session.completed", session)
        if deliver if deliver is not None else self.webhook_url is not None:
            self.deliver(event)
        return event

    def make_event(self, kind: str, obj: dict) -> dict:
        event = {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": "2026-01-28.clover",
            "created": int(time.time()),
            "type": kind,
            "livemode": False,
            "pending_webhooks": 1,
            "data": {"object": json.loads(json.dumps(obj))},
        }
        self.events.append(event)
        return event

    def signed(self, event: dict, *, secret: str | None = None, timestamp: int | None = None) -> tuple[bytes, str]:
        payload = json.dumps(event).encode()
        return payload, sign(payload, secret or self.webhook_secret, timestamp)

    def deliver(self, event: dict, url: str | None = None) -> int:
        """POST a signed event to the webhook URL, as Stripe does; returns the HTTP status."""
        payload, header = self.signed(event)
        response = requests.post(
            url or self.webhook_url or "",
            data=payload,
            headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header},
            timeout=20,
        )
        return response.status_code

    def refunded(self, intent: str) -> list[dict]:
        return [refund for refund in self.refunds.values() if refund["payment_intent"] == intent]

    # --- The API -------------------------------------------------------------------------------

    def wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._route(request)
        except _ApiError as error:
            response = _json(error.status, {"error": error.body})
        # Failures made on demand tell the SDK not to retry them (as Stripe does for most), so a test
        # sees exactly the failures it asked for, without the SDK's backoff.
        response.headers["Stripe-Should-Retry"] = "false"
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/pay/"):
            return self._payment_page(request)
        if not path.startswith("/v1/"):
            return Response(status=204)  # the browser's favicon, say: nothing to show
        self.calls.append((request.method, path))
        if self.unavailable:
            raise _ApiError(503, {"type": "api_error", "message": "Service unavailable (stand-in outage)"})
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            raise _ApiError(401, {"type": "invalid_request_error", "message": "Invalid API Key provided"})
        key = request.headers.get("Idempotency-Key")
        with self.lock:
            if request.method == "POST" and key and key in self.idempotent:
                status, body = self.idempotent[key]
                return _json(status, body)
            try:
                status, body = 200, self._api(request)
            except _ApiError as error:
                status, body = error.status, {"error": error.body}
                if status >= 500:  # Stripe keeps no idempotent answer for its own failures
                    return _json(status, body)
            if request.method == "POST" and key:
                self.idempotent[key] = (status, body)
            return _json(status, body)

    def _api(self, request: Request) -> dict:
        params = unflatten(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
        path = request.path
        if request.method == "POST" and path == "/v1/checkout/sessions":
            self._maybe_fail("checkout.create")
            return self._create_session(params)
        match = re.fullmatch(r"/v1/checkout/sessions/([A-Za-z0-9_]+)(/expire)?", path)
        if match and request.method == "GET" and not match.group(2):
            self._maybe_fail("checkout.retrieve")
            return self._live(match.group(1))
        if match and request.method == "POST" and match.group(2):
            session = self._live(match.group(1))
            if session["status"] != "open":
                raise _ApiError(400, _invalid(f"This Checkout Session is {session['status']}."))
            session["status"] = "expired"
            return session
        if request.method == "POST" and path == "/v1/refunds":
            self._maybe_fail("refunds.create")
            return self._create_refund(params)
        raise _ApiError(404, _invalid(f"Unrecognized request URL ({request.method}: {path})."))

    def _maybe_fail(self, operation: str) -> None:
        if self.failures[operation]:
            failure = self.failures[operation].pop(0)
            raise _ApiError(failure.status, {"type": failure.kind, "code": failure.code, "message": failure.message})

    def _create_session(self, params: dict) -> dict:
        for name in ("mode", "line_items", "success_url", "cancel_url"):
            if not params.get(name):
                raise _ApiError(400, _invalid(f"Missing required param: {name}.", name))
        item = params["line_items"][0]
        amount = int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1))
        now = int(time.time())
        expires_at = int(params.get("expires_at") or now + 24 * 3600)
        if not now + 30 * 60 - 5 <= expires_at <= now + 24 * 3600 + 5:
            raise _ApiError(400, _invalid("expires_at must be between 30 minutes and 24 hours from now.", "expires_at"))
        session_id = "cs_test_" + secrets.token_hex(16)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": params["mode"],
            "url": f"{self.url}/pay/{session_id}",
            "status": "open",
            "payment_status": "unpaid",
            "payment_intent": None,
            "amount_total": amount,
            "currency": item["price_data"]["currency"],
            "product_name": item["price_data"]["product_data"]["name"],
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "locale": params.get("locale"),
            "metadata": params.get("metadata") or {},
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "created": now,
            "expires_at": expires_at,
            "livemode": False,
        }
        self.sessions[session_id] = session
        return session

    def _live(self, session_id: str) -> dict:
        session = self.sessions.get(session_id)
        if session is None:
            raise _ApiError(404, _invalid(f"No such checkout.session: '{session_id}'", "session"))
        if session["status"] == "open" and time.time() > session["expires_at"]:
            session["status"] = "expired"
        return session

    def _create_refund(self, params: dict) -> dict:
        intent = params.get("payment_intent", "")
        charge = self.charges.get(intent)
        if charge is None:
            raise _ApiError(400, _invalid(f"No such payment_intent: '{intent}'", "payment_intent"))
        left = charge["amount"] - charge["refunded"]
        amount = int(params.get("amount") or left)
        if left <= 0:
            raise _ApiError(400, {**_invalid("Charge has already been refunded."), "code": "charge_already_refunded"})
        if amount > left:
            raise _ApiError(
                400, {**_invalid("Refund amount is greater than unrefunded amount."), "code": "amount_too_large"}
            )
        charge["refunded"] += amount
        refund = {
            "id": "re_" + secrets.token_hex(12),
            "object": "refund",
            "amount": amount,
            "currency": "eur",
            "payment_intent": intent,
            "status": "succeeded",
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        return refund

    # --- The hosted payment page ---------------------------------------------------------------

    def _payment_page(self, request: Request) -> Response:
        match = re.fullmatch(r"/pay/([A-Za-z0-9_]+)(/complete|/cancel)?", request.path)
        if match is None:
            return Response("Not found", 404)
        session_id, action = match.group(1), match.group(2)
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None:
                return Response("Not found", 404)
            session = self._live(session_id)
        if action is None:
            return Response(_page(session), 200, content_type="text/html; charset=utf-8")
        if request.method != "POST":
            return Response("Method not allowed", 405)
        if action == "/cancel":
            return Response(status=303, headers={"Location": session["cancel_url"]})
        if session["status"] != "open":
            return Response(_page(session), 410, content_type="text/html; charset=utf-8")
        self.pay(session_id)
        success = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
        return Response(status=303, headers={"Location": success})


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # the test output stays readable
        pass


class _ApiError(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def _invalid(message: str, param: str | None = None) -> dict:
    return {"type": "invalid_request_error", "message": message, **({"param": param} if param else {})}


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body), status, content_type="application/json", headers={"Request-Id": "req_standin"})


def _page(session: dict) -> str:
    amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
    if session["status"] != "open":
        body = f"<h1>This payment page has {session['status']}</h1>"
    else:
        body = (
            f"<h1>Pay {amount}</h1><p id='product'>{html.escape(session['product_name'])}</p>"
            f"<p id='email'>{html.escape(session['customer_email'] or '')}</p>"
            f"<form method='post' action='/pay/{session['id']}/complete'><button id='pay'>Pay {amount}</button></form>"
            f"<form method='post' action='/pay/{session['id']}/cancel'><button id='cancel'>Cancel</button></form>"
        )
    return f"<!doctype html><html lang='en'><head><title>Stand-in Checkout</title></head><body>{body}</body></html>"
