"""Test-data factories and helpers that read like what a user does."""

from __future__ import annotations

import itertools
from datetime import datetime

from app.auth.passwords import hash_password
from app.extensions import db
from app.models import ConsultationRequest, User, hash_token, new_access_token, new_reference
from app.sla import start_clock
from app.timeutil import utcnow

DEFAULT_PASSWORD = "correct horse battery staple"  # noqa: S105
_counter = itertools.count(1)


def make_user(role: str = "dermatologist", *, email: str | None = None, name: str | None = None,
              password: str = DEFAULT_PASSWORD, active: bool = True) -> User:
    number = next(_counter)
    user = User(
        email=email or f"{role}{number}@clinic.example",
        name=name or f"Dr Test {number}" if role == "dermatologist" else name or f"Staff {number}",
        role=role,
        password_hash=hash_password(password),
        active=active,
    )
    db.session.add(user)
    db.session.commit()
    return user


def make_consultation(*, created_at: datetime | None = None, status: str = "submitted",
                      email: str = "patient@example.com", condition_slug: str | None = "acne",
                      claimed_by: User | None = None, **fields) -> tuple[ConsultationRequest, str]:
    """A stored request as intake would leave it; returns (request, private-link token)."""
    now = created_at or utcnow()
    token = new_access_token()
    consultation = ConsultationRequest(
        reference=new_reference(),
        access_token_hash=hash_token(token),
        status=status,
        patient_name=fields.pop("patient_name", "Test Patient"),
        patient_email=email,
        condition_slug=condition_slug,
        body_sites=fields.pop("body_sites", ["hands"]),
        symptoms=fields.pop("symptoms", ["itching"]),
        description=fields.pop("description", "Itchy spots on both palms for three weeks."),
        duration=fields.pop("duration", "weeks"),
        consent_health_data_at=now,
        consent_terms_at=now,
        consent_version="2026-11",
        created_at=now,
        **fields,
    )
    if claimed_by is not None:
        consultation.claimed_by_id = claimed_by.id
        consultation.claimed_at = now
    start_clock(consultation, now)
    db.session.add(consultation)
    db.session.commit()
    return consultation, token


def login_as(client, user: User, password: str = DEFAULT_PASSWORD):
    """Sign in through the real login form (no session tricks)."""
    return client.post("/login", data={"email": user.email, "password": password}, follow_redirects=False)
