"""Which email goes to whom for which event. Emails say that something happened and link to it;
they never carry health data."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select

from app.consultations.policies import StaffAlerts
from app.extensions import db
from app.links import LinkSpec, link
from app.models import ANSWER, PATIENT_REPLY, QUESTION, CheckIn, ConsultationRequest, Message, User
from app.outbox import enqueue
from app.timeutil import as_utc


def patient_link(token: str) -> LinkSpec:
    return link("intake.private", token=token)


def staff_link(consultation: ConsultationRequest) -> LinkSpec:
    return link("queue.detail", reference=consultation.reference)


def active_dermatologists() -> list[User]:
    return list(
        db.session.execute(
            select(User).where(User.role == "dermatologist", User.active.is_(True)).order_by(User.id)
        ).scalars()
    )


def on_call_dermatologists() -> list[User]:
    """The dermatologists alerted at once about an urgent request.

    For now every active dermatologist; a duty rota replaces this one function.
    """
    return active_dermatologists()


def staff_recipients(alerts: StaffAlerts, include_dermatologists: bool) -> list[tuple[str, str]]:
    """(email, language) pairs for staff alerts: STAFF_ALERT_EMAILS (in STAFF_ALERT_LANGUAGE), plus
    dermatologists if asked, each in the language they last used the app in."""
    recipients = {email.lower(): alerts.language for email in alerts.emails}
    if include_dermatologists:
        for user in active_dermatologists():
            recipients.setdefault(user.email.lower(), user.language or "en")
    return sorted(recipients.items())


def urgent_recipients(alerts: StaffAlerts) -> list[tuple[str, str]]:
    """(email, language) pairs for an urgent request: STAFF_ALERT_EMAILS and the on-call dermatologists."""
    recipients = {email.lower(): alerts.language for email in alerts.emails}
    for user in on_call_dermatologists():
        recipients.setdefault(user.email.lower(), user.language or "en")
    return sorted(recipients.items())


def request_submitted(consultation: ConsultationRequest, token: str, alerts: StaffAlerts) -> None:
    """Confirmation (with the private link) to the patient; a new-request alert to the team.

    An urgent request alerts staff and the on-call dermatologists at once with an urgent alert
    instead: one email each, once (dedupe key per request and address); anyone else on the team
    gets the ordinary new-request email.
    """
    enqueue(
        consultation.patient_email,
        "request_received",
        language=consultation.language,
        context={"reference": consultation.reference},
        secret_context={"link": patient_link(token)},
        dedupe_key=f"received:{consultation.id}",
        consultation=consultation,
    )
    alerted = set()
    if consultation.urgent:
        for email, language in urgent_recipients(alerts):
            enqueue(
                email,
                "urgent_request",
                language=language,
                context={
                    "reference": consultation.reference,
                    "link": staff_link(consultation),
                    "hours": consultation.response_target_hours,
                    "due_local": _local(consultation, alerts),
                },
                dedupe_key=_alert_key("urgent", consultation, email),
                consultation=consultation,
            )
            alerted.add(email)
    for email, language in staff_recipients(alerts, include_dermatologists=True):
        if email in alerted:
            continue
        enqueue(
            email,
            "staff_new_request",
            language=language,
            context={"reference": consultation.reference, "link": staff_link(consultation)},
            dedupe_key=f"new:{consultation.id}:{email}",
            consultation=consultation,
        )


def _latest_message(consultation: ConsultationRequest, kinds: tuple[str, ...]) -> Message | None:
    messages = [m for m in consultation.messages if m.kind in kinds]
    return max(messages, key=lambda m: m.id or 0) if messages else None


def dermatologist_replied(consultation: ConsultationRequest, message: Message | None = None) -> None:
    """Tell the patient a reply (answer or question) is waiting, with a fresh private link.

    Only hashes of links are stored, so the email gets a link of its own (earlier links keep
    working); it is sealed in the outbox and wiped once sent.
    """
    message = message or _latest_message(consultation, (ANSWER, QUESTION))
    if message is None:
        return
    token = consultation.issue_link(message.created_at)
    queued = enqueue(
        consultation.patient_email,
        "patient_reply_ready",
        language=consultation.language,
        context={
            "reference": consultation.reference,
            "is_question": message.kind == QUESTION,
            "lost_link": link("intake.resend"),
        },
        secret_context={"link": patient_link(token)},
        dedupe_key=f"replied:{message.id}",
        consultation=consultation,
    )
    if queued is None:  # already told about this message: the new link is not needed
        consultation.links.pop()


def check_in_due(consultation: ConsultationRequest, check_in: CheckIn, now: datetime) -> None:
    """The dermatologist asked to hear how it goes: one email to the patient with a fresh private link.

    The dedupe key is the check-in's, so a second call (another worker) queues nothing and drops its link."""
    token = consultation.issue_link(now)
    queued = enqueue(
        consultation.patient_email,
        "check_in_due",
        language=consultation.language,
        context={"reference": consultation.reference, "weeks": check_in.weeks, "lost_link": link("intake.resend")},
        secret_context={"link": patient_link(token)},
        dedupe_key=f"check-in:{check_in.id}",
        consultation=consultation,
    )
    if queued is None:
        consultation.links.pop()


def patient_replied(consultation: ConsultationRequest, alerts: StaffAlerts, message: Message | None = None) -> None:
    """Tell the dermatologist holding the request that the patient replied; if nobody holds it,
    the team (staff alert addresses and dermatologists), as for a new request."""
    message = message or _latest_message(consultation, (PATIENT_REPLY,))
    if message is None:
        return
    holder = consultation.claimed_by
    if holder is not None and holder.active:
        recipients = [(holder.email, holder.language or "en")]
    else:
        recipients = staff_recipients(alerts, include_dermatologists=True)
    for email, language in recipients:
        enqueue(
            email,
            "patient_replied",
            language=language,
            context={"reference": consultation.reference, "link": staff_link(consultation)},
            dedupe_key=f"patient-replied:{message.id}:{email.lower()}",
            consultation=consultation,
        )


# --- The 24-hour target: at-risk and overdue alerts (queued by app.consultations.alerts.check) -------------


def _alert_key(kind: str, consultation: ConsultationRequest, email: str) -> str:
    """One alert per request, round and recipient; very long addresses are hashed to fit the column."""
    key = f"{kind}:{consultation.id}:{consultation.response_round}:{email.lower()}"
    if len(key) <= 160:
        return key
    digest = hashlib.sha256(email.lower().encode("utf-8")).hexdigest()[:40]
    return f"{kind}:{consultation.id}:{consultation.response_round}:sha256:{digest}"


def _local(consultation: ConsultationRequest, alerts: StaffAlerts) -> str:
    due = as_utc(consultation.due_at).astimezone(alerts.zone) if consultation.due_at is not None else None
    return due.strftime("%Y-%m-%d %H:%M") if due is not None else ""


def _sla_context(consultation: ConsultationRequest, alerts: StaffAlerts) -> dict:
    return {
        "reference": consultation.reference,
        "link": staff_link(consultation),
        "due_local": _local(consultation, alerts),
        "round": consultation.response_round,
    }


def _queue_alerts(
    kind: str, template: str, consultation: ConsultationRequest, recipients: list[tuple[str, str]], alerts: StaffAlerts
) -> int:
    queued = 0
    for email, language in recipients:
        row = enqueue(
            email,
            template,
            language=language,
            context=_sla_context(consultation, alerts),
            dedupe_key=_alert_key(kind, consultation, email),
            consultation=consultation,
        )
        queued += row is not None
    return queued


def sla_at_risk(consultation: ConsultationRequest, alerts: StaffAlerts) -> int:
    """The reply is due soon: staff alert addresses and the dermatologist holding the request;
    when nobody holds it, every active dermatologist too. Returns how many emails were queued."""
    holder = consultation.claimed_by
    if holder is not None and holder.active:
        recipients = dict(staff_recipients(alerts, include_dermatologists=False))
        recipients.setdefault(holder.email.lower(), holder.language or "en")
    else:
        recipients = dict(staff_recipients(alerts, include_dermatologists=True))
    return _queue_alerts("at-risk", "sla_at_risk", consultation, sorted(recipients.items()), alerts)


def sla_overdue(consultation: ConsultationRequest, alerts: StaffAlerts) -> int:
    """The reply is overdue: escalation to the staff alert addresses. Returns how many emails were queued."""
    recipients = staff_recipients(alerts, include_dermatologists=False)
    return _queue_alerts("overdue", "sla_overdue", consultation, recipients, alerts)


def links_resent(email: str, language: str, requests_with_tokens: list[tuple[ConsultationRequest, str]]) -> None:
    """'Lost your link?': one email to the patient with a fresh private link for each of their requests.

    The links are sealed (never stored in clear); the context holds only the references.
    """
    pairs = list(requests_with_tokens)
    enqueue(
        email,
        "link_resent",
        language=language,
        context={"references": [consultation.reference for consultation, _ in pairs]},
        secret_context={"links": [[consultation.reference, patient_link(token)] for consultation, token in pairs]},
        consultation=pairs[0][0] if len(pairs) == 1 else None,
    )
