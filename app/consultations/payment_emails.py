"""Which email goes to whom about money: the receipt, a reminder to finish paying, a refund, and a
refund the provider refused (to staff). Like every email they carry links, amounts and references,
never health data; the templates live in templates/emails/payments/.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from app.consultations.letter import Clinic
from app.consultations.notify import patient_link, staff_recipients
from app.consultations.policies import StaffAlerts
from app.links import link
from app.models import ConsultationRequest, Payment, Refund
from app.outbox import EmailTemplate, enqueue
from app.timeutil import as_utc


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return as_utc(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment is not None else ""


def _payment_context(payment: Payment) -> dict:
    return {
        "reference": payment.reference,
        "tier": payment.tier,
        "hours": payment.target_hours,
        "amount_cents": payment.amount_cents,
        "currency": payment.currency,
    }


def receipt(consultation: ConsultationRequest, payment: Payment, zone: ZoneInfo, seller: Clinic) -> None:
    """The receipt: who sells (name, address, company and VAT codes as set), tier, amount and the
    payment's reference, once per payment. The seller is kept as it was on the day of payment."""
    enqueue(
        consultation.patient_email,
        EmailTemplate.PAYMENT_RECEIPT,
        language=consultation.language,
        context={
            **_payment_context(payment),
            "payment_reference": payment.payment_intent or "",
            "paid_local": _local(payment.paid_at, zone),
            "seller": seller.name,
            "seller_address": seller.address,
            "company_code": seller.company_code,
            "vat_number": seller.vat_number,
        },
        dedupe_key=f"receipt:{payment.id}",
        consultation=consultation,
    )


def _with_fresh_link(
    consultation: ConsultationRequest, now: datetime, template: EmailTemplate, context: dict, key: str
) -> None:
    """An email to the patient with a private link of its own (only the link's hash is kept)."""
    token = consultation.issue_link(now)
    queued = enqueue(
        consultation.patient_email,
        template,
        language=consultation.language,
        context=context,
        secret_context={"link": patient_link(token)},
        dedupe_key=key,
        consultation=consultation,
    )
    if queued is None:  # already sent: the new link is not needed
        consultation.links.pop()


def payment_reminder(
    consultation: ConsultationRequest, payment: Payment, deadline: datetime, now: datetime, zone: ZoneInfo
) -> None:
    """The request is saved but unpaid: a link to pay, and until when it is kept."""
    context = {**_payment_context(payment), "deadline_local": _local(deadline, zone)}
    _with_fresh_link(consultation, now, EmailTemplate.PAYMENT_REMINDER, context, f"payment-reminder:{payment.id}")


def refund_issued(consultation: ConsultationRequest, payment: Payment, refund: Refund, now: datetime) -> None:
    """Money is on its way back: how much and why."""
    context = {
        **_payment_context(payment),
        "refund_cents": refund.amount_cents,
        "reason": refund.reason,
        "full": refund.amount_cents >= payment.amount_cents,
    }
    _with_fresh_link(consultation, now, EmailTemplate.REFUND_ISSUED, context, f"refund:{refund.id}")


def refund_refused(payment: Payment, refund: Refund, alerts: StaffAlerts) -> None:
    """The provider said no to a refund: staff hear of it once (it stays on the payments page and is retried)."""
    for email, language in staff_recipients(alerts, include_dermatologists=False):
        enqueue(
            email,
            EmailTemplate.REFUND_REFUSED,
            language=language,
            context={
                "reference": payment.reference,
                "refund_cents": refund.amount_cents,
                "currency": payment.currency,
                "link": link("payments.staff_payment", reference=payment.reference),
            },
            dedupe_key=f"refund-refused:{refund.id}:{email.lower()}"[:160],
        )
