"""The two promises about money, held through a muddle of real-world events: nothing paid is ever
queued twice, and nothing unpaid is ever queued. Patients pay once, twice (two tabs) or never;
the provider's webhooks come late, twice, out of order or not at all; patients come back to the
return page or close the browser; the worker runs in between. Seeded, so a failure replays."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.extensions import db
from app.models import ConsultationRequest, OutboundEmail, Payment, Refund, ResponseClock
from tests.payments.helpers import post_event, run_worker, send_paid_form, session_from

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PATIENTS = 10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nothing_paid_is_queued_twice_and_nothing_unpaid_is_queued(app, standin, seed):
    chance = random.Random(seed)
    moment = T0
    sessions: dict[str, list[str]] = {}  # reference -> its payment pages
    clients = {}
    with time_machine.travel(moment, tick=False):
        for number in range(PATIENTS):
            client = app.test_client()
            first = session_from(
                send_paid_form(client, tier=chance.choice(["standard", "express"]), email=f"p{number}@example.com")
            )
            reference = db.session.execute(
                select(ConsultationRequest.reference).order_by(ConsultationRequest.id.desc()).limit(1)
            ).scalar_one()
            sessions[reference], clients[reference] = [first], client
            if chance.random() < 0.4:  # pays again from the confirmation page, in another tab
                page = client.get("/consultation/received").get_data(as_text=True)
                sessions[reference].append(
                    session_from(client.post(re.search(r'action="(/c/[^"]+/pay)"', page).group(1)))
                )

    paid: dict[str, list[str]] = {reference: [] for reference in sessions}
    pending_events: list[dict] = []
    moment += timedelta(minutes=1)
    with time_machine.travel(moment, tick=False):
        for reference, pages in sessions.items():
            if chance.random() < 0.3:
                continue  # never pays
            for session_id in chance.sample(pages, k=chance.randint(1, len(pages))):
                event = standin.pay(session_id, deliver=False)
                paid[reference].append(event["data"]["object"]["payment_intent"])
                pending_events += [event] * chance.randint(0, 2)  # lost, delivered, or delivered twice
                if chance.random() < 0.5:
                    clients[reference].get(f"/payments/return?session_id={session_id}")
    chance.shuffle(pending_events)

    for step, event in enumerate(pending_events):
        moment += timedelta(minutes=chance.randint(0, 4))
        with time_machine.travel(moment, tick=False):
            assert post_event(app.test_client(), standin, event).status_code == 200
            if step % 3 == 0:
                run_worker(moment)
    for later in (timedelta(minutes=20), timedelta(hours=2), timedelta(hours=25)):
        with time_machine.travel(T0 + later, tick=False):
            run_worker(T0 + later)  # finds lost webhooks, lets the unpaid lapse, pays refunds

    db.session.expire_all()
    for reference, intents in paid.items():
        payment = db.session.execute(select(Payment).where(Payment.reference == reference)).scalar_one()
        consultation = db.session.execute(
            select(ConsultationRequest).where(ConsultationRequest.reference == reference)
        ).scalar_one_or_none()
        if not intents:
            assert consultation is None, f"{reference} was never paid but is still here"
            assert payment.status == "abandoned"
            continue
        assert consultation is not None and consultation.status == "submitted", reference
        assert payment.status == "paid" and payment.payment_intent in intents
        first_rounds = db.session.execute(
            select(func.count(ResponseClock.id)).where(ResponseClock.request_id == consultation.id)
        ).scalar_one()
        received = db.session.execute(
            select(func.count(OutboundEmail.id)).where(
                OutboundEmail.request_id == consultation.id,
                OutboundEmail.template.in_(("request_received", "payments/receipt")),
            )
        ).scalar_one()
        assert (first_rounds, received) == (1, 2), f"{reference} was queued more than once"
        extra = set(intents) - {payment.payment_intent}
        refunded = db.session.execute(
            select(Refund.payment_intent).where(Refund.payment_id == payment.id, Refund.reason == "duplicate")
        ).scalars()
        assert set(refunded) == extra, "every second payment is refunded, and only those"
        for intent in extra:
            assert [r["amount"] for r in standin.refunded(intent)] == [payment.amount_cents]
        # The consultation's own payment goes back only for lateness (nobody answers in this story: 25 hours on).
        own = db.session.execute(select(Refund.reason).where(Refund.payment_intent == payment.payment_intent))
        assert list(own.scalars()) == ["late"]
        assert [r["amount"] for r in standin.refunded(payment.payment_intent)] == [payment.amount_cents]
