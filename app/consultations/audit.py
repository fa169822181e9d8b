"""Recording who viewed or changed what, in the transaction of the change itself.

Rules pass the actor explicitly (app/runtime.py builds it from the request for the web doors).
Only known actions are accepted, and details never carry health data.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.extensions import db
from app.models import ActorKind, AuditAction, AuditEvent, ConsultationRequest, User


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff account, the patient (holder of a private link), a visitor, or the system."""

    kind: ActorKind
    user: User | None = None
    address: str | None = None  # the client's address, for web requests

    @classmethod
    def staff(cls, user: User, address: str | None = None) -> Actor:
        return cls(ActorKind.USER, user, address)

    @classmethod
    def patient(cls, address: str | None = None) -> Actor:
        return cls(ActorKind.PATIENT, None, address)

    @classmethod
    def system(cls, user: User | None = None) -> Actor:
        """The CLI or the worker; `user` is the account a command acted for, if any."""
        return cls(ActorKind.USER if user is not None else ActorKind.SYSTEM, user, None)


def record(
    action: AuditAction,
    actor: Actor,
    *,
    consultation: ConsultationRequest | None = None,
    detail: str | None = None,
) -> AuditEvent:
    """Add an audit event to the session; it commits with the change it describes."""
    if not isinstance(action, AuditAction):
        raise ValueError(f"unknown audit action {action!r}")
    event = AuditEvent(
        action=action.value,
        actor_user_id=actor.user.id if actor.user is not None else None,
        actor_kind=actor.kind.value,
        request_id=consultation.id if consultation is not None else None,
        detail=(detail or None) and detail[:200],
        ip=actor.address,
    )
    db.session.add(event)
    return event
