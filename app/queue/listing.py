"""The queue page's rows: which requests, in which order, one page at a time.

One SELECT fetches a page of rows with everything a row shows (the photo count is a
correlated subquery evaluated only for that page, the holder's name comes by join), so
the page costs the same with 10 stored requests or 100,000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select

from app.consultations.states import HELD
from app.extensions import db
from app.models import (
    ANSWERED,
    AWAITING_PATIENT,
    IN_REVIEW,
    OPEN_STATUSES,
    SUBMITTED,
    ConsultationRequest,
    Photo,
    User,
)

PER_PAGE = 25
REFERENCE_LENGTH = len("DRM-7K3Q9X")
FILTERS = ("open", "unclaimed", "mine", "awaiting", "answered")


@dataclass(frozen=True)
class QueueRow:
    id: int
    reference: str
    status: str
    created_at: datetime
    due_at: datetime | None
    condition_slug: str | None
    photo_count: int
    claimed_by_id: int | None
    claimed_by_name: str | None
    urgent: bool = False
    response_target_hours: int | None = None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def normalise_reference(text: str) -> str:
    """What someone typed ("drm-7k3q", "7K3Q9X", "DRM 7K3Q9X") as the start of a reference."""
    cleaned = re.sub(r"[^A-Za-z0-9]", "", text or "").upper()
    if cleaned.startswith("DRM"):
        cleaned = cleaned[3:]
    return "DRM-" + cleaned[:6]


def _criteria(name: str, user_id: int, search: str) -> tuple[list, tuple]:
    """(WHERE conditions, ORDER BY) for a filter, or for a search by reference."""
    request = ConsultationRequest
    # Urgent requests (red-flag answers) first, then the most pressing due time.
    due_order = (request.urgent.desc(), request.due_at.asc().nulls_last(), request.created_at.asc(), request.id.asc())
    if search.strip():
        wanted = normalise_reference(search)
        # Requests held for their payment are not consultations yet: in no list, found by no search.
        held = request.status.not_in(HELD)
        # A whole reference is an exact look-up on the unique index; a partial one a prefix search.
        if len(wanted) == REFERENCE_LENGTH:
            return [request.reference == wanted, held], (request.reference,)
        return [request.reference.startswith(wanted, autoescape=True), held], (request.reference,)
    if name == "unclaimed":
        return [request.status.in_(OPEN_STATUSES), request.claimed_by_id.is_(None)], due_order
    if name == "mine":
        return [
            request.claimed_by_id == user_id,
            request.status.in_((SUBMITTED, IN_REVIEW, AWAITING_PATIENT)),
        ], due_order
    if name == "awaiting":
        return [request.status == AWAITING_PATIENT], (request.updated_at.asc(), request.id.asc())
    if name == "answered":
        return [request.status == ANSWERED], (request.answered_at.desc(), request.id.desc())
    return [request.status.in_(OPEN_STATUSES)], due_order


def queue_page(filter_name: str, user_id: int, page: int = 1, search: str = "", per_page: int = PER_PAGE) -> QueuePage:
    """A page of the queue: open requests most urgent first (urgent ones, then by due time), or a
    filter's rows, or a search.

    A search by reference looks at every request whatever its status: whoever types a
    reference wants that request, not the current filter's view of it.

    One statement: an inner SELECT picks the page's ids (filter, order, LIMIT/OFFSET on the
    bare table and its indexes); the outer one adds the holder's name and the photo count for
    those rows only, so deep pages and big filters never count photos for rows not shown.
    """
    page = max(page, 1)
    conditions, order = _criteria(filter_name, user_id, search)
    # One row more than a page tells whether there is a next page without a COUNT over the table.
    page_ids = (
        select(ConsultationRequest.id)
        .where(*conditions)
        .order_by(*order)
        .limit(per_page + 1)
        .offset((page - 1) * per_page)
        .subquery("page_ids")
    )
    photo_count = (
        select(func.count(Photo.id)).where(Photo.request_id == ConsultationRequest.id).correlate(ConsultationRequest)
    ).scalar_subquery()
    query = (
        select(
            ConsultationRequest.id,
            ConsultationRequest.reference,
            ConsultationRequest.status,
            ConsultationRequest.created_at,
            ConsultationRequest.due_at,
            ConsultationRequest.condition_slug,
            photo_count.label("photo_count"),
            ConsultationRequest.claimed_by_id,
            User.name.label("claimed_by_name"),
            ConsultationRequest.urgent,
            ConsultationRequest.response_target_hours,
        )
        .join(page_ids, page_ids.c.id == ConsultationRequest.id)
        .outerjoin(User, User.id == ConsultationRequest.claimed_by_id)
        .order_by(*order)
    )
    result = db.session.execute(query).all()
    rows = [QueueRow(**row._mapping) for row in result[:per_page]]
    return QueuePage(rows=rows, page=page, has_next=len(result) > per_page)


def tab_counts(user_id: int) -> dict[str, int]:
    """How many requests each working filter holds, in one query over the open requests only."""
    request = ConsultationRequest
    is_open = request.status.in_(OPEN_STATUSES)

    def count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = db.session.execute(
        select(
            count_where(is_open).label("open"),
            count_where(is_open & request.claimed_by_id.is_(None)).label("unclaimed"),
            count_where(request.claimed_by_id == user_id).label("mine"),
            count_where(request.status == AWAITING_PATIENT).label("awaiting"),
        ).where(request.status.in_((SUBMITTED, IN_REVIEW, AWAITING_PATIENT)))
    ).one()
    return {key: int(value) for key, value in row._mapping.items()}


@dataclass(frozen=True)
class Neighbours:
    """The requests before and after one in the open queue's order (for j/k and the page's links)."""

    previous: str | None
    next: str | None


def neighbours(consultation_id: int) -> Neighbours:
    """The open requests either side of this one, most urgent first as the queue lists them.

    A request no longer open has no place in that order: "next" is then the most urgent open one.
    """
    conditions, order = _criteria("open", 0, "")
    ids_and_refs = db.session.execute(
        select(ConsultationRequest.id, ConsultationRequest.reference).where(*conditions).order_by(*order)
    ).all()
    position = next((index for index, row in enumerate(ids_and_refs) if row.id == consultation_id), None)
    if position is None:
        return Neighbours(previous=None, next=ids_and_refs[0].reference if ids_and_refs else None)
    before = ids_and_refs[position - 1].reference if position > 0 else None
    after = ids_and_refs[position + 1].reference if position + 1 < len(ids_and_refs) else None
    return Neighbours(previous=before, next=after)


def next_unclaimed(excluding_id: int | None = None) -> str | None:
    """The most urgent request nobody holds (what "answer and open the next" opens), if any."""
    conditions, order = _criteria("unclaimed", 0, "")
    if excluding_id is not None:
        conditions.append(ConsultationRequest.id != excluding_id)
    return db.session.execute(
        select(ConsultationRequest.reference).where(*conditions).order_by(*order).limit(1)
    ).scalar_one_or_none()
