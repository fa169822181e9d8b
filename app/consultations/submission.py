"""Turning a checked consultation form into a stored request, all or nothing.

Order of work, so that nothing a patient sent is ever half-kept:

1. photos are already checked and cleaned in memory (app.photos);
2. their files are written under fresh random keys;
3. the request, its photos, its response clock and its emails (outbox rows) go into the database
   in one transaction, committed once;
4. if anything in 2-3 fails, the transaction is rolled back *and* the files written are deleted.

The form's one-time submission key is unique in the database, so a double click or a resent form
finds the request the first one created instead of making a second one, even when both arrive at
the same moment (the loser of the race gets an IntegrityError and is answered with the winner).

"Lost your link?" is split in two: the request only writes a sealed row (ask_for_links), the same
work for a known and an unknown address, and the worker does the lookup (send_requested_links).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from app.consultations import assignment, audit, notify, triage, uploads
from app.consultations.audit import Actor
from app.consultations.clock import start_clock
from app.consultations.policies import Policies
from app.consultations.states import Status
from app.consultations.tiers import CURRENCY, Tier
from app.extensions import db
from app.models import ActorKind, AuditAction, ConsultationRequest, LinkRequest, Payment, PaymentStatus, new_reference
from app.outbox import seal, unseal
from app.photos import CleanPhoto
from app.storage import PhotoStorage
from app.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

# Collisions of a random reference, token hash or file key are rare; a few fresh tries settle them.
ATTEMPTS = 3
MAX_LINKS_PER_RESEND = 10


@dataclass(frozen=True)
class PatientDetails:
    """What the patient told us, as plain values (already validated by the form)."""

    name: str
    email: str
    date_of_birth: date | None
    sex: str | None
    description: str
    phone: str | None = None
    condition_slug: str | None = None
    body_sites: list[str] = field(default_factory=list)
    duration: str | None = None
    symptoms: list[str] = field(default_factory=list)
    medications: str | None = None
    allergies: str | None = None
    history: list[str] = field(default_factory=list)
    history_notes: str | None = None
    # The red-flag questions ticked (keys from content/triage.yaml); any of them makes the request urgent.
    red_flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Submission:
    """The outcome: the stored request, and the private-link token when this call created it."""

    consultation: ConsultationRequest
    token: str | None
    duplicate: bool


class SubmissionFailed(RuntimeError):
    """The request could not be stored; nothing was kept."""


def normalise_email(email: str) -> str:
    """Emails are kept lower-case so that 'lost your link?' finds them however they are typed."""
    return email.strip().lower()


def find_by_submission_key(submission_key: str) -> ConsultationRequest | None:
    return db.session.execute(
        select(ConsultationRequest).where(ConsultationRequest.submission_key == submission_key)
    ).scalar_one_or_none()


def submit_request(
    details: PatientDetails,
    photos: Sequence[CleanPhoto],
    *,
    submission_key: str,
    language: str,
    consent_version: str,
    now: datetime,
    storage: PhotoStorage,
    policies: Policies,
    held_for: Tier | None = None,
) -> Submission:
    """Store a new request with its photos and emails, or return the one this form already created.

    `held_for` (app.consultations.payments.tier_to_hold): the request waits for its payment for that
    tier, stored as awaiting_payment with no clock and no emails yet; the payment starts them.
    """
    existing = find_by_submission_key(submission_key)
    if existing is not None:
        return Submission(existing, None, duplicate=True)
    submission = _store(details, photos, submission_key, language, consent_version, now, storage, policies, held_for)
    # With AUTO_ASSIGN; after the commit, so it can never undo the request. A request waiting for its
    # payment is offered by the worker once it is paid.
    if not submission.duplicate and held_for is None:
        assignment.offer_new(submission.consultation, now, policies)
    return submission


def _store(
    details: PatientDetails,
    photos: Sequence[CleanPhoto],
    submission_key: str,
    language: str,
    consent_version: str,
    now: datetime,
    storage: PhotoStorage,
    policies: Policies,
    held_for: Tier | None,
) -> Submission:
    written: list[str] = []
    try:
        stored = uploads.write_photos(photos, storage, written)
        for _attempt in range(ATTEMPTS):
            try:
                consultation, token = _insert(
                    details, stored, submission_key, language, consent_version, now, policies, held_for
                )
                db.session.commit()
                return Submission(consultation, token, duplicate=False)
            except IntegrityError:
                db.session.rollback()
                existing = find_by_submission_key(submission_key)
                if existing is not None:  # the same form, sent twice at once: the other one won
                    uploads.remove_files(storage, written)
                    return Submission(existing, None, duplicate=True)
        raise SubmissionFailed("no free reference after several attempts")
    except BaseException:
        db.session.rollback()
        uploads.remove_files(storage, written)
        raise


def _insert(
    details: PatientDetails,
    stored: Sequence[tuple[CleanPhoto, str, str]],
    submission_key: str,
    language: str,
    consent_version: str,
    now: datetime,
    policies: Policies,
    held_for: Tier | None = None,
) -> tuple[ConsultationRequest, str]:
    consultation = ConsultationRequest(
        reference=_unused_reference(),
        submission_key=submission_key,
        status=(Status.SUBMITTED if held_for is None else Status.AWAITING_PAYMENT).value,
        language=language,
        **patient_columns(details, consent_version, now),
        updated_at=now,
    )
    _mark_urgency(consultation, details, policies.triage)
    if consultation.urgent and held_for is not None:
        # An urgent request is never held for payment: it goes to the queue at once, with its own target.
        consultation.status = Status.SUBMITTED.value
        held_for = None
    consultation.photos.extend(uploads.photo_rows(stored, now))
    token = consultation.issue_link(now)
    if held_for is not None:
        _hold_for_payment(consultation, held_for, now)
    else:
        start_clock(consultation, now, policies.response)
    db.session.add(consultation)
    db.session.flush()  # a duplicate submission key fails here, before any email is queued
    if held_for is None:
        # With AUTO_ASSIGN the dermatologist who gets the request is told, not every one on duty.
        notify.request_submitted(
            consultation, token, policies.alerts, include_dermatologists=not policies.assignment.enabled
        )
    return consultation, token


def _hold_for_payment(consultation: ConsultationRequest, tier: Tier, now: datetime) -> None:
    """Waiting for its payment: the tier's target, and the price, recorded; no clock, no emails yet."""
    consultation.response_target_hours = tier.hours
    payment = Payment(
        request=consultation,
        reference=consultation.reference,
        tier=tier.name,
        target_hours=tier.hours,
        amount_cents=tier.amount_cents,
        currency=CURRENCY,
        status=PaymentStatus.AWAITING.value,
        refunded_cents=0,
        created_at=now,
    )
    db.session.add(payment)


def _mark_urgency(consultation: ConsultationRequest, details: PatientDetails, policy: triage.TriagePolicy) -> None:
    """A red-flag answer the patient still sent makes the request urgent, with URGENT_TARGET_HOURS.

    Runs after the request is built and before its clock starts, so the first round has the urgent target."""
    assessment = triage.assess(details.red_flags, policy.questions)
    consultation.urgent = assessment.urgent
    consultation.triage_level = assessment.level
    consultation.triage_flags = assessment.keys or None
    # Whatever target the request would otherwise have (the clinic's, a tier's), urgent keeps its own.
    consultation.response_target_hours = policy.target_hours(assessment, consultation.response_target_hours)


def patient_columns(details: PatientDetails, consent_version: str, now: datetime) -> dict[str, Any]:
    """A request's columns for what the patient told us and agreed to (also the demo's bulk rows)."""
    return {
        "patient_name": details.name,
        "patient_email": normalise_email(details.email),
        "patient_phone": details.phone or None,
        "date_of_birth": details.date_of_birth,
        "sex": details.sex,
        "condition_slug": details.condition_slug or None,
        "body_sites": list(details.body_sites),
        "duration": details.duration,
        "symptoms": list(details.symptoms),
        "description": details.description,
        "medications": details.medications or None,
        "allergies": details.allergies or None,
        "history": list(details.history),
        "history_notes": details.history_notes or None,
        "consent_health_data_at": now,
        "consent_terms_at": now,
        "consent_version": consent_version,
        "created_at": now,
    }


def _unused_reference() -> str:
    for _ in range(5):
        reference = new_reference()
        taken = db.session.execute(
            select(ConsultationRequest.id).where(ConsultationRequest.reference == reference)
        ).first()
        if taken is None:
            return reference
    return new_reference()  # the unique constraint has the last word; the caller retries


# A request the worker could not handle is tried again this many times, then dropped (the patient
# can ask again); one older than LINK_REQUEST_MAX_AGE is dropped unhandled (no worker ran for a day).
LINK_REQUEST_ATTEMPTS = 5
LINK_REQUEST_MAX_AGE = timedelta(days=1)


def ask_for_links(email: str, *, address: str | None, now: datetime) -> None:
    """'Lost your link?', the part done while the visitor waits: one row written, known address or not.

    Looking the address up happens later, in the worker (send_requested_links), so the answer takes
    the same path and the same time whether or not we have a request from that address.
    """
    db.session.add(LinkRequest(sealed_email=seal({"email": normalise_email(email)}), address=address, created_at=now))
    db.session.commit()


def send_requested_links(now: datetime | None = None, limit: int = 50) -> dict[str, int]:
    """The worker's part: for each waiting request, new links for that address, emailed (resend_links).

    Each row is taken by deleting it in the transaction that queues its email, so two workers never
    handle one twice, and a failure puts it back for the next round.
    """
    moment = now or utcnow()
    handled = 0
    jobs = db.session.execute(select(LinkRequest).order_by(LinkRequest.id).limit(limit)).scalars().all()
    db.session.commit()
    for job in jobs:
        job_id, sealed, address, attempts, created = job.id, job.sealed_email, job.address, job.attempts, job.created_at
        taken = cast(CursorResult, db.session.execute(delete(LinkRequest).where(LinkRequest.id == job_id)))
        if taken.rowcount != 1:  # another worker has it
            db.session.rollback()
            continue
        email = unseal(sealed).get("email")
        if not email or as_utc(moment) - as_utc(created) > LINK_REQUEST_MAX_AGE:
            db.session.commit()  # unreadable (SECRET_KEY changed) or stale: dropped
            continue
        try:
            resend_links(email, address=address)
            db.session.commit()
            handled += 1
        except Exception as error:  # one request must not stop the others; only the type is logged
            db.session.rollback()
            log.error("lost link: a request could not be handled (%s)", type(error).__name__)
            if attempts + 1 < LINK_REQUEST_ATTEMPTS:
                db.session.execute(
                    update(LinkRequest).where(LinkRequest.id == job_id).values(attempts=LinkRequest.attempts + 1)
                )
            else:
                db.session.execute(delete(LinkRequest).where(LinkRequest.id == job_id))
            db.session.commit()
    return {"links": handled}


def resend_links(email: str, *, address: str | None = None) -> int:
    """'Lost your link?': give each request from this address a new private link and email them.

    Only hashes of links are stored, so an old link cannot be sent again; a new one replaces all
    earlier ones (they stop working, which also helps if one was forwarded by mistake).
    Returns how many requests matched; the caller must not tell the visitor.
    """
    requests = list(
        db.session.execute(
            select(ConsultationRequest)
            .where(func.lower(ConsultationRequest.patient_email) == normalise_email(email))
            .order_by(ConsultationRequest.created_at.desc())
            .limit(MAX_LINKS_PER_RESEND)
        ).scalars()
    )
    if not requests:
        return 0
    pairs = []
    for consultation in requests:
        consultation.revoke_links()
        token = consultation.issue_link(utcnow())
        audit.record(AuditAction.LINK_RESENT, Actor(ActorKind.ANONYMOUS, None, address), consultation=consultation)
        pairs.append((consultation, token))
    notify.links_resent(requests[0].patient_email, requests[0].language, pairs)
    db.session.commit()
    return len(requests)
