"""Medical review of the articles: who reviewed each one and when, when the next review is due,
and the staff page /staff/articles listing every article in each language, overdue first.

An article names its reviewer in front matter (`reviewed_by`): a dermatologist's account, shown
by the account's current name, or a named person. Until a dermatologist has reviewed it, the
page says so; an account that is not a dermatologist's counts as no review and is listed for staff.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from flask import render_template
from sqlalchemy import func, select

from app.auth.session import roles_required
from app.conditions import bp
from app.conditions.content import Condition
from app.conditions.library import articles
from app.extensions import db
from app.models import ROLES, User
from app.runtime import policies
from app.timeutil import local, utcnow

# "Due soon" on the staff list: this many days or fewer before the next review date.
DUE_SOON_DAYS = 30


class ReviewState(StrEnum):
    OVERDUE = "overdue"
    DUE_SOON = "due_soon"
    AWAITING_FIRST_REVIEW = "awaiting_first_review"
    UNKNOWN_REVIEWER = "unknown_reviewer"
    DRAFT = "draft"


@dataclass(frozen=True)
class MedicalReview:
    """What a page can truthfully say about an article's medical review."""

    reviewer: str | None  # the dermatologist's name; None while no dermatologist has reviewed it
    reviewed_on: date
    next_review: date
    unknown_account: str | None = None  # reviewed_by names an account that is no dermatologist's


@dataclass(frozen=True)
class ReviewRow:
    article: Condition
    review: MedicalReview
    states: tuple[ReviewState, ...]


def review_of(article: Condition, dermatologists: Mapping[str, str]) -> MedicalReview:
    """The article's review, given the names of dermatologist accounts by lower-case email."""
    reviewer, name, unknown = article.reviewed_by, None, None
    if reviewer is not None and reviewer.name:
        name = reviewer.name
    elif reviewer is not None and reviewer.account:
        name = dermatologists.get(reviewer.account)
        unknown = None if name else reviewer.account
    return MedicalReview(name, article.last_reviewed, article.next_review, unknown)


def review_states(article: Condition, review: MedicalReview, today: date) -> tuple[ReviewState, ...]:
    states = []
    if today > review.next_review:
        states.append(ReviewState.OVERDUE)
    elif (review.next_review - today).days <= DUE_SOON_DAYS:
        states.append(ReviewState.DUE_SOON)
    if review.unknown_account:
        states.append(ReviewState.UNKNOWN_REVIEWER)
    if review.reviewer is None:
        states.append(ReviewState.AWAITING_FIRST_REVIEW)
    if article.is_draft:
        states.append(ReviewState.DRAFT)
    return tuple(states)


def review_rows(versions: Iterable[Condition], dermatologists: Mapping[str, str], today: date) -> list[ReviewRow]:
    """One row per article per language: overdue first, then due soon, then by next review date."""
    rows = []
    for article in versions:
        review = review_of(article, dermatologists)
        rows.append(ReviewRow(article, review, review_states(article, review, today)))
    urgency = {ReviewState.OVERDUE: 0, ReviewState.DUE_SOON: 1}
    return sorted(
        rows,
        key=lambda row: (
            min((urgency.get(state, 2) for state in row.states), default=2),
            row.review.next_review,
            row.article.slug,
            row.article.lang,
        ),
    )


def dermatologist_names(emails: Iterable[str]) -> dict[str, str]:
    """The names of the dermatologists' accounts among `emails`, by lower-case email."""
    wanted = {email.lower() for email in emails}
    if not wanted:
        return {}
    users = db.session.execute(select(User).where(func.lower(User.email).in_(wanted))).scalars()
    return {user.email.lower(): user.name for user in users if user.is_dermatologist}


def _accounts(versions: Iterable[Condition]) -> set[str]:
    return {c.reviewed_by.account for c in versions if c.reviewed_by is not None and c.reviewed_by.account}


def medical_review(article: Condition) -> MedicalReview:
    """The article's review, with an account reviewer's name looked up as the page is built."""
    return review_of(article, dermatologist_names(_accounts([article])))


@bp.get("/staff/articles")
@roles_required(*ROLES)
def review_list():
    versions = articles().every_version()
    today = local(utcnow()).date()
    rows = review_rows(versions, dermatologist_names(_accounts(versions)), today)
    return render_template(
        "conditions/review_list.html",
        rows=rows,
        today=today,
        states=ReviewState,
        due_soon_days=DUE_SOON_DAYS,
        triage=policies().triage.questions,  # the red-flag questions are reviewed like the articles
    )
