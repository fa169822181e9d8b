"""Check back in N weeks: a dermatologist, answering, may ask to hear how it goes in 2-12 weeks.

- `schedule`: with the answer (same transaction); a later answer with a new check-in replaces one
  still waiting.
- `send_due` (run by `flask worker`): at the due time the patient gets one email with a fresh private
  link, asking for new photos (the same views) and how it is going. Exactly once, with any number
  of workers: the check-in is marked sent by a conditional UPDATE that only one worker can win, and
  the email's dedupe key is the check-in's id.
- The patient may then reply for CHECK_IN_REPLY_DAYS days (the follow-up window, opened again); the
  reply joins the same request as a new round with its own clock (app.consultations.conversation),
  as a routine round even if the request was urgent weeks ago.
- `turn_off`: the patient can stop a check-in that has not been sent, from the private page.

A check-in is only sent while the request stands answered: a closed or withdrawn request cancels
it; one being worked on again (a follow-up) waits until it is answered.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, select, update

from app.consultations import audit, notify
from app.consultations.audit import Actor
from app.consultations.policies import CheckInPolicy, Policies
from app.consultations.states import ENDED, Status
from app.extensions import db
from app.models import PROGRESS, AuditAction, CheckIn, ConsultationRequest, Message, User
from app.timeutil import as_utc


def schedule(
    consultation: ConsultationRequest, answer: Message, by: User, weeks: int, now: datetime, policy: CheckInPolicy
) -> CheckIn:
    """Plan a check-in `weeks` after this answer (the caller's transaction); earlier unsent ones are replaced."""
    if not policy.allows(weeks):
        raise ValueError(f"a check-in is {policy.min_weeks} to {policy.max_weeks} weeks away")
    for earlier in consultation.check_ins:
        if earlier.sent_at is None and earlier.cancelled_at is None:
            earlier.cancelled_at = now
    check_in = CheckIn(
        answer_id=answer.id, set_by_id=by.id, weeks=weeks, created_at=now, due_at=now + timedelta(weeks=weeks)
    )
    consultation.check_ins.append(check_in)
    return check_in


def planned(consultation: ConsultationRequest) -> CheckIn | None:
    """The check-in still to be sent, if any."""
    waiting = [c for c in consultation.check_ins if c.sent_at is None and c.cancelled_at is None]
    return waiting[-1] if waiting else None


def open_for_reply(consultation: ConsultationRequest, now: datetime, policy: CheckInPolicy) -> CheckIn | None:
    """The check-in the patient may answer now: sent, not answered yet, within CHECK_IN_REPLY_DAYS."""
    for check_in in reversed(consultation.check_ins):
        until = policy.reply_until(check_in.sent_at)
        if check_in.reply_id is None and check_in.cancelled_at is None and until is not None and as_utc(now) <= until:
            return check_in
    return None


def turn_off(consultation: ConsultationRequest, now: datetime, *, address: str | None = None) -> bool:
    """The patient does not want the check-in email; False when there was none left to turn off."""
    result = cast(
        CursorResult,
        db.session.execute(
            update(CheckIn)
            .where(CheckIn.request_id == consultation.id, CheckIn.sent_at.is_(None), CheckIn.cancelled_at.is_(None))
            .values(cancelled_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount == 0:
        db.session.rollback()
        return False
    audit.record(AuditAction.CHECK_IN_CANCELLED, Actor.patient(address), consultation=consultation)
    db.session.commit()
    db.session.refresh(consultation)
    return True


def attach_reply(
    consultation: ConsultationRequest, message: Message, progress: str | None, now: datetime, policies: Policies
) -> CheckIn | None:
    """A patient's reply within a check-in's window answers it: remember which message, and how it goes.

    Weeks after the first answer the new round is routine: an urgent request's own target is dropped
    (call before the round's clock starts)."""
    check_in = open_for_reply(consultation, now, policies.check_ins)
    if check_in is None:
        return None
    check_in.reply_id = message.id
    check_in.progress = progress if progress in PROGRESS else None
    if consultation.urgent:
        consultation.urgent = False
        if consultation.response_target_hours == policies.triage.urgent_target_hours:
            consultation.response_target_hours = None
    return check_in


def send_due(policies: Policies, now: datetime) -> dict[str, int]:
    """Send every check-in that is due, each exactly once; commits after each. Returns {"check_ins": sent}."""
    due = (
        db.session.execute(
            select(CheckIn.id)
            .where(CheckIn.sent_at.is_(None), CheckIn.cancelled_at.is_(None), CheckIn.due_at <= now)
            .order_by(CheckIn.due_at)
        )
        .scalars()
        .all()
    )
    sent = 0
    for check_in_id in due:
        sent += _send_one(check_in_id, now)
    return {"check_ins": sent}


def _send_one(check_in_id: int, now: datetime) -> int:
    check_in = db.session.get(CheckIn, check_in_id)
    if check_in is None:
        return 0
    consultation = check_in.request
    if consultation.status in ENDED:
        _claim(check_in_id, {"cancelled_at": now})
        db.session.commit()
        return 0
    if consultation.status != Status.ANSWERED:
        return 0  # being worked on again: the check-in waits until it stands answered
    if not _claim(check_in_id, {"sent_at": now}):
        db.session.rollback()  # another worker sent it
        return 0
    db.session.refresh(check_in)
    notify.check_in_due(consultation, check_in, now)
    audit.record(AuditAction.CHECK_IN_SENT, Actor.system(), consultation=consultation, detail=f"check-in {check_in.id}")
    db.session.commit()
    return 1


def _claim(check_in_id: int, values: dict) -> bool:
    """Mark a check-in sent or cancelled, only if nobody did yet (one worker wins)."""
    result = cast(
        CursorResult,
        db.session.execute(
            update(CheckIn)
            .where(CheckIn.id == check_in_id, CheckIn.sent_at.is_(None), CheckIn.cancelled_at.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount == 1
