"""Was this helpful? After an answer the patient may rate the consultation (1-5) with an optional comment,
once per request (a unique constraint has the last word, so two tabs cannot rate twice).

The rating counts for the dermatologist who wrote the latest answer. Ratings and comments are shown
to staff on the dashboard, never put in an email.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from app.consultations import audit
from app.consultations.audit import Actor
from app.extensions import db
from app.models import ANSWER, AuditAction, ConsultationRequest, Feedback

MAX_COMMENT_LENGTH = 2000
RATINGS = (1, 2, 3, 4, 5)

ALREADY_RATED = _l("You have already told us how helpful this consultation was. Thank you.")
NOT_YET = _l("You can rate the consultation once the dermatologist has answered.")
NOT_A_RATING = _l("Choose a rating from 1 to 5.")


class FeedbackRefused(Exception):
    """The rating cannot be stored; the message says why, for the patient."""


def may_rate(consultation: ConsultationRequest) -> bool:
    """After an answer, and only once."""
    answered = any(message.kind == ANSWER for message in consultation.messages)
    return answered and consultation.feedback is None


def give(
    consultation: ConsultationRequest, rating: int, comment: str | None, now: datetime, *, address: str | None = None
) -> Feedback:
    """Store the patient's rating and comment and commit; raises FeedbackRefused."""
    if rating not in RATINGS:
        raise FeedbackRefused(NOT_A_RATING)
    if consultation.feedback is not None:
        raise FeedbackRefused(ALREADY_RATED)
    answers = [message for message in consultation.messages if message.kind == ANSWER]
    if not answers:
        raise FeedbackRefused(NOT_YET)
    latest = max(answers, key=lambda message: message.id)
    feedback = Feedback(
        request_id=consultation.id,
        dermatologist_id=latest.author_id,
        rating=rating,
        comment=(comment or "").strip()[:MAX_COMMENT_LENGTH] or None,
        created_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(feedback)
    except IntegrityError as error:  # the same request rated a moment ago in another tab
        db.session.rollback()
        raise FeedbackRefused(ALREADY_RATED) from error
    audit.record(
        AuditAction.FEEDBACK_GIVEN, Actor.patient(address), consultation=consultation, detail=f"rating {rating}"
    )
    db.session.commit()
    return feedback
