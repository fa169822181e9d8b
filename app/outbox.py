"""The outbox: queueing emails in the caller's transaction (delivery lives in deliver())."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import ConsultationRequest, OutboundEmail


def _fernet() -> Fernet:
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"outbox:" + secret).digest()))


def seal(values: dict) -> str:
    return _fernet().encrypt(json.dumps(values).encode("utf-8")).decode("ascii")


def unseal(sealed: str | None) -> dict:
    if not sealed:
        return {}
    try:
        return json.loads(_fernet().decrypt(sealed.encode("ascii")))
    except InvalidToken:
        return {}


def enqueue(
    recipient: str,
    template: str,
    *,
    language: str = "en",
    context: dict | None = None,
    secret_context: dict | None = None,
    dedupe_key: str | None = None,
    consultation: ConsultationRequest | None = None,
) -> OutboundEmail | None:
    """Queue one email; with a dedupe key, a second call for the same key queues nothing.

    The row is inserted in a savepoint so that losing a race on the unique dedupe key
    (another worker queued it first) leaves the caller's transaction intact.
    """
    if dedupe_key is not None:
        existing = db.session.execute(select(OutboundEmail.id).where(OutboundEmail.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return None
    if consultation is not None and consultation.id is None:
        db.session.flush()
    email = OutboundEmail(
        recipient=recipient,
        template=template,
        language=language,
        context=context or {},
        sealed_context=seal(secret_context) if secret_context else None,
        dedupe_key=dedupe_key,
        request_id=consultation.id if consultation is not None else None,
    )
    try:
        with db.session.begin_nested():
            db.session.add(email)
    except IntegrityError:
        return None
    return email
