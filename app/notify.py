"""Which email goes to whom for which event. Emails say that something happened and link to it;
they never carry health data."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import ConsultationRequest, User
from app.outbox import enqueue


def patient_link(token: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/c/{token}"


def staff_link(consultation: ConsultationRequest) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/queue/{consultation.reference}"


def active_dermatologists() -> list[User]:
    return list(
        db.session.execute(
            select(User).where(User.role == "dermatologist", User.active.is_(True)).order_by(User.id)
        ).scalars()
    )


def staff_recipients(include_dermatologists: bool) -> list[tuple[str, str]]:
    """(email, language) pairs for staff alerts: STAFF_ALERT_EMAILS, plus dermatologists if asked."""
    recipients = {email.lower(): "en" for email in current_app.config["STAFF_ALERT_EMAILS"]}
    if include_dermatologists:
        for user in active_dermatologists():
            recipients.setdefault(user.email.lower(), "en")
    return sorted(recipients.items())


def request_submitted(consultation: ConsultationRequest, token: str) -> None:
    """Confirmation (with the private link) to the patient; a new-request alert to the team."""
    enqueue(
        consultation.patient_email,
        "request_received",
        language=consultation.language,
        context={"reference": consultation.reference},
        secret_context={"link": patient_link(token)},
        dedupe_key=f"received:{consultation.id}",
        consultation=consultation,
    )
    for email, language in staff_recipients(include_dermatologists=True):
        enqueue(
            email,
            "staff_new_request",
            language=language,
            context={"reference": consultation.reference, "link": staff_link(consultation)},
            dedupe_key=f"new:{consultation.id}:{email}",
            consultation=consultation,
        )
