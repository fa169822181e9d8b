"""What the doors (web views, the CLI and the worker) take from the running app to hand to the rules:
the policies and the payment provider built once in create_app, and the actor of the current request for the audit log.

This is the one place outside the blueprints that reads `current_app`, `request` and `current_user`
on behalf of the rules, which never do.
"""

from __future__ import annotations

from flask import current_app, has_request_context, request
from flask_login import current_user

from app.consultations import audit as audit_log
from app.consultations.audit import Actor
from app.consultations.policies import Policies
from app.models import ActorKind, AuditAction, AuditEvent, ConsultationRequest, User
from app.payments_provider import PaymentProvider
from app.storage import PhotoStorage, photo_storage


def policies() -> Policies:
    return current_app.extensions["clinic_policies"]


def payment_provider() -> PaymentProvider:
    """The payment provider built once in create_app (one that refuses everything when payments are off)."""
    return current_app.extensions["payment_provider"]


def storage() -> PhotoStorage:
    return photo_storage()


def client_address() -> str | None:
    return request.remote_addr if has_request_context() else None


def current_actor(user: User | None = None, *, patient: bool = False) -> Actor:
    """The actor of this request or command: the patient, the given or signed-in user, a visitor, or the system."""
    address = client_address()
    if patient:
        return Actor.patient(address)
    if user is None and has_request_context() and current_user.is_authenticated:
        user = current_user._get_current_object()
    if user is not None:
        return Actor.staff(user, address)
    return Actor(ActorKind.ANONYMOUS, None, address) if has_request_context() else Actor.system()


def audit(
    action: AuditAction,
    *,
    consultation: ConsultationRequest | None = None,
    user: User | None = None,
    patient: bool = False,
    detail: str | None = None,
) -> AuditEvent:
    """Record `action` by whoever acts in this request or command (see current_actor)."""
    return audit_log.record(action, current_actor(user, patient=patient), consultation=consultation, detail=detail)
