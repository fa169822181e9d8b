"""Recording who viewed or changed what. Details never carry health data."""

from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user

from app.extensions import db
from app.models import AuditEvent, ConsultationRequest, User


def record(
    action: str,
    *,
    consultation: ConsultationRequest | None = None,
    user: User | None = None,
    patient: bool = False,
    detail: str | None = None,
) -> AuditEvent:
    """Add an audit event to the session; it commits with the change it describes."""
    actor = user
    if actor is None and not patient and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    if patient:
        kind = "patient"
    elif actor is not None:
        kind = "user"
    elif has_request_context():
        kind = "anonymous"
    else:
        kind = "system"
    event = AuditEvent(
        action=action,
        actor_user_id=actor.id if actor is not None else None,
        actor_kind=kind,
        request_id=consultation.id if consultation is not None else None,
        detail=(detail or None) and detail[:200],
        ip=request.remote_addr if has_request_context() else None,
    )
    db.session.add(event)
    return event
