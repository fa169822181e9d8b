"""Which requests are demo data, their private links, and removing them again.

A demo request is one whose submission key starts with "demo-"; its number gives the key
("demo-000001"), so a run can tell which ones are missing. Each also has a private link whose token
is derived from SECRET_KEY and the key, so the summary can print a working link on every run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Collection
from datetime import datetime
from typing import cast

from flask import current_app
from sqlalchemy import ColumnElement, CursorResult, delete, select

from app.extensions import db
from app.models import (
    AuditEvent,
    ConsultationRequest,
    Message,
    OutboundEmail,
    PatientLink,
    Photo,
    ResponseClock,
    hash_token,
)
from app.storage import photo_storage

KEY_PREFIX = "demo-"
KEY_FORMAT = KEY_PREFIX + "{:06d}"  # a demo request's submission key from its number


def submission_key(number: int) -> str:
    return KEY_FORMAT.format(number)


def is_demo() -> ColumnElement[bool]:
    """A condition on ConsultationRequest: it is demo data."""
    return ConsultationRequest.submission_key.like(f"{KEY_PREFIX}%")


def existing_keys() -> set[str]:
    keys = db.session.execute(select(ConsultationRequest.submission_key).where(is_demo())).scalars()
    return {key for key in keys if key is not None}


def demo_token(key: str) -> str:
    """The private-link token of a demo request: derived, so the summary can show it on every run."""
    return tokens()(key)


def tokens() -> Callable[[str], str]:
    """demo_token with SECRET_KEY read once (the history asks for a million of them)."""
    secret = current_app.config["SECRET_KEY"].encode("utf-8")

    def token(key: str) -> str:
        digest = hmac.new(secret, f"demo-private-link:{key}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")  # shaped like new_access_token()

    return token


def demo_link_hash(key: str) -> str:
    return hash_token(demo_token(key))


def link_hashes() -> Callable[[str], str]:
    """demo_link_hash with SECRET_KEY read once."""
    token = tokens()
    return lambda key: hash_token(token(key))


def demo_link(key: str, at: datetime) -> PatientLink:
    """The demo request's private link, stored as ConsultationRequest.issue_link stores one: its hash only."""
    return PatientLink(token_hash=demo_link_hash(key), created_at=at)


def remove_requests(keys: Collection[str] | None = None) -> int:
    """Delete demo requests (all, or those with `keys`) with their photos (rows, then files), messages,
    clocks, links, emails and audit rows; returns how many requests were deleted."""
    chosen = is_demo() if keys is None else ConsultationRequest.submission_key.in_(list(keys))
    demo_ids = select(ConsultationRequest.id).where(chosen)
    files = db.session.execute(select(Photo.storage_key, Photo.thumbnail_key).where(Photo.request_id.in_(demo_ids)))
    file_keys = [key for pair in files for key in pair]
    for model in (Photo, Message, ResponseClock, PatientLink, AuditEvent, OutboundEmail):
        db.session.execute(delete(model).where(model.request_id.in_(demo_ids)))
    # A DELETE's result is a CursorResult, which has the rowcount; Session.execute is typed for any statement.
    removed = cast(CursorResult, db.session.execute(delete(ConsultationRequest).where(chosen))).rowcount
    db.session.commit()
    storage = photo_storage()
    for key in file_keys:  # after the commit: a failed delete must not leave rows pointing at missing files
        storage.delete(key)
    return removed
