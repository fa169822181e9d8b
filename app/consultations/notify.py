"""Which email goes to whom for which event. Emails say that something happened and link to it;
they never carry health data.

Dermatologists off duty (see app.consultations.rota) get no alerts; the medical lead gets the last
step of the escalation ladder whatever the rota says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from app.consultations import rota
from app.consultations.policies import StaffAlerts
from app.extensions import db
from app.links import LinkSpec, link
from app.models import ANSWER, PATIENT_REPLY, QUESTION, CheckIn, ConsultationRequest, Message, User
from app.outbox import EmailTemplate, enqueue
from app.timeutil import as_utc

Recipients = list[tuple[str, str]]  # (email, language)


def patient_link(token: str) -> LinkSpec:
    return link("intake.private", token=token)


def staff_link(consultation: ConsultationRequest) -> LinkSpec:
    return link("queue.detail", reference=consultation.reference)


def active_dermatologists() -> list[User]:
    return rota.active_dermatologists()


def on_duty_dermatologists(now: datetime, policy: rota.RotaPolicy | None = None) -> list[User]:
    """The active dermatologists on duty at `now` by the rota; every active one while no rota is set.

    For alerts that must reach someone who can act now (at risk, urgent requests). Pass the
    configured policy (`alerts.rota`, `policies.rota`); without one the clinic's defaults apply.
    """
    return rota.on_duty_dermatologists(policy or rota.RotaPolicy.default(), now)


def medical_leads() -> list[User]:
    """Active accounts flagged as medical lead (any role), on duty or not."""
    return list(
        db.session.execute(
            select(User).where(User.is_medical_lead.is_(True), User.active.is_(True)).order_by(User.id)
        ).scalars()
    )


def on_call_dermatologists(now: datetime, alerts: StaffAlerts) -> list[User]:
    """The dermatologists alerted at once about an urgent request: those on duty by the rota."""
    return on_duty_dermatologists(now, alerts.rota)


def people(users: Sequence[User]) -> Recipients:
    return sorted({user.email.lower(): user.language or "en" for user in users}.items())


def staff_recipients(
    alerts: StaffAlerts, include_dermatologists: bool, *, on_duty_at: datetime | None = None
) -> Recipients:
    """(email, language) pairs for staff alerts: STAFF_ALERT_EMAILS (in STAFF_ALERT_LANGUAGE), plus
    dermatologists if asked, each in the language they last used the app in: those on duty at
    `on_duty_at` by the rota, or every active one when no moment is given."""
    recipients = {email.lower(): alerts.language for email in alerts.emails}
    if include_dermatologists:
        team = active_dermatologists() if on_duty_at is None else on_duty_dermatologists(on_duty_at, alerts.rota)
        for user in team:
            recipients.setdefault(user.email.lower(), user.language or "en")
    return sorted(recipients.items())


def urgent_recipients(alerts: StaffAlerts, now: datetime) -> Recipients:
    """(email, language) pairs for an urgent request: STAFF_ALERT_EMAILS and the on-call dermatologists."""
    recipients = {email.lower(): alerts.language for email in alerts.emails}
    for user in on_call_dermatologists(now, alerts):
        recipients.setdefault(user.email.lower(), user.language or "en")
    return sorted(recipients.items())


def request_submitted(
    consultation: ConsultationRequest, token: str, alerts: StaffAlerts, *, include_dermatologists: bool = True
) -> None:
    """Confirmation (with the private link) to the patient; a new-request alert to the staff alert
    addresses and the dermatologists on duty (none when the request is assigned automatically:
    whoever gets it is told then).

    An urgent request alerts staff and the on-call dermatologists at once with an urgent alert
    instead: one email each, once (dedupe key per request and address); anyone else on the team
    gets the ordinary new-request email.
    """
    enqueue(
        consultation.patient_email,
        EmailTemplate.REQUEST_RECEIVED,
        language=consultation.language,
        # The request's own promise (a faster paid tier), or else the clinic's (None).
        context={"reference": consultation.reference, "hours": consultation.response_target_hours},
        secret_context={"link": patient_link(token)},
        dedupe_key=f"received:{consultation.id}",
        consultation=consultation,
    )
    alerted = set()
    if consultation.urgent:
        for email, language in urgent_recipients(alerts, consultation.created_at):
            enqueue(
                email,
                EmailTemplate.URGENT_REQUEST,
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
    for email, language in staff_recipients(alerts, include_dermatologists, on_duty_at=consultation.created_at):
        if email in alerted:
            continue
        enqueue(
            email,
            EmailTemplate.STAFF_NEW_REQUEST,
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
        EmailTemplate.PATIENT_REPLY_READY,
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
        EmailTemplate.CHECK_IN_DUE,
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
    the team (staff alert addresses and the dermatologists on duty), as for a new request."""
    message = message or _latest_message(consultation, (PATIENT_REPLY,))
    if message is None:
        return
    holder = consultation.claimed_by
    if holder is not None and holder.active:
        recipients = [(holder.email, holder.language or "en")]
    else:
        recipients = staff_recipients(alerts, include_dermatologists=True, on_duty_at=message.created_at)
    for email, language in recipients:
        enqueue(
            email,
            EmailTemplate.PATIENT_REPLIED,
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
    kind: str,
    template: EmailTemplate,
    consultation: ConsultationRequest,
    recipients: Recipients,
    alerts: StaffAlerts,
    extra: dict | None = None,
) -> int:
    queued = 0
    for email, language in recipients:
        row = enqueue(
            email,
            template,
            language=language,
            context={**_sla_context(consultation, alerts), **(extra or {})},
            dedupe_key=_alert_key(kind, consultation, email),
            consultation=consultation,
        )
        queued += row is not None
    return queued


def at_risk_recipients(consultation: ConsultationRequest, on_duty: Sequence[User]) -> Recipients:
    """The first step of the ladder: the holder, while on duty; otherwise every dermatologist on duty
    (nobody, when nobody is: the step waits for someone to come on duty)."""
    holder = consultation.claimed_by
    if holder is not None and holder.active and any(user.id == holder.id for user in on_duty):
        return people([holder])
    return people(on_duty)


def sla_at_risk(consultation: ConsultationRequest, alerts: StaffAlerts, recipients: Recipients) -> int:
    """The reply is due soon. Returns how many emails were queued."""
    return _queue_alerts("at-risk", EmailTemplate.SLA_AT_RISK, consultation, recipients, alerts)


def sla_overdue(consultation: ConsultationRequest, alerts: StaffAlerts, recipients: Recipients | None = None) -> int:
    """The reply is overdue: escalation to the staff alert addresses. Returns how many emails were queued."""
    if recipients is None:
        recipients = staff_recipients(alerts, include_dermatologists=False)
    return _queue_alerts("overdue", EmailTemplate.SLA_OVERDUE, consultation, recipients, alerts)


def sla_escalated(consultation: ConsultationRequest, alerts: StaffAlerts, recipients: Recipients, hours: int) -> int:
    """Still overdue `hours` after the due moment: the medical lead. Returns how many emails were queued."""
    return _queue_alerts("lead", EmailTemplate.SLA_ESCALATED, consultation, recipients, alerts, {"hours": hours})


def request_assigned(consultation: ConsultationRequest, user: User, assignment_id: int, alerts: StaffAlerts) -> None:
    """Tell a dermatologist a request was given to them (automatic assignment)."""
    enqueue(
        user.email,
        EmailTemplate.REQUEST_ASSIGNED,
        language=user.language or "en",
        context=_sla_context(consultation, alerts),
        dedupe_key=f"assigned:{consultation.id}:{assignment_id}",
        consultation=consultation,
    )


def _staff_key(prefix: str, email: str) -> str:
    key = f"{prefix}:{email.lower()}"
    if len(key) <= 160:
        return key
    return f"{prefix}:sha256:{hashlib.sha256(email.lower().encode('utf-8')).hexdigest()[:40]}"


def coverage_gap(gap_key: str, context: dict, alerts: StaffAlerts) -> int:
    """A breach nobody on the rota can prevent is forecast: one email per gap to each staff address."""
    queued = 0
    for email, language in staff_recipients(alerts, include_dermatologists=False):
        row = enqueue(
            email,
            EmailTemplate.COVERAGE_GAP,
            language=language,
            context={**context, "link": link("staff.dashboard")},  # the email adds #coverage
            dedupe_key=_staff_key(f"coverage-gap:{gap_key}", email),
        )
        queued += row is not None
    return queued


def weekly_recipients(alerts: StaffAlerts) -> Recipients:
    """The staff alert addresses and the medical leads."""
    recipients = dict(staff_recipients(alerts, include_dermatologists=False))
    for email, language in people(medical_leads()):
        recipients.setdefault(email, language)
    return sorted(recipients.items())


def weekly_summary(week_key: str, context: dict, alerts: StaffAlerts) -> int:
    """Last week's figures: one email per ISO week to each staff address and medical lead."""
    queued = 0
    for email, language in weekly_recipients(alerts):
        row = enqueue(
            email,
            EmailTemplate.WEEKLY_SUMMARY,
            language=language,
            context={**context, "link": link("staff.dashboard")},
            dedupe_key=_staff_key(f"weekly:{week_key}", email),
        )
        queued += row is not None
    return queued


def links_resent(email: str, language: str, requests_with_tokens: list[tuple[ConsultationRequest, str]]) -> None:
    """'Lost your link?': one email to the patient with a fresh private link for each of their requests.

    The links are sealed (never stored in clear); the context holds only the references.
    """
    pairs = list(requests_with_tokens)
    enqueue(
        email,
        EmailTemplate.LINK_RESENT,
        language=language,
        context={"references": [consultation.reference for consultation, _ in pairs]},
        secret_context={"links": [[consultation.reference, patient_link(token)] for consultation, token in pairs]},
        consultation=pairs[0][0] if len(pairs) == 1 else None,
    )
