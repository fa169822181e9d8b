"""Saved replies: reusable answers a dermatologist keeps (their own) or the clinic shares (kept by
admins), with placeholders filled in for the patient at hand.

Placeholders are `{first_name}`, `{condition}` and `{follow_up_date}`. Filling is one explicit
substitution of exactly those names: anything else in braces stays as typed, for the writer to see,
and a value is never read again as a template, so neither the reply's text nor a patient's name can
reach Python's format machinery (no `str.format` on anything a person typed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date

from babel.dates import format_date
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update

from app.consultations import audit
from app.consultations.audit import Actor
from app.extensions import db
from app.models import AuditAction, ConsultationRequest, Role, SavedReply, User

PLACEHOLDERS = ("first_name", "condition", "follow_up_date")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")
MAX_TITLE = 120
MAX_TEXT = 5000


class SavedReplyRefused(Exception):
    """The change cannot be made; the message says why, in words fit for the user."""


@dataclass(frozen=True)
class ReplyText:
    """The four fields of an answer, as a saved reply holds them or as they are filled in."""

    assessment: str = ""
    treatment: str = ""
    prescription_note: str = ""
    follow_up: str = ""

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ReplyContent:
    title: str
    language: str
    condition_slug: str | None
    text: ReplyText


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with each known placeholder replaced by its value; unknown ones left visible as typed."""

    def value_for(match: re.Match[str]) -> str:
        name = match.group(1)
        return values[name] if name in PLACEHOLDERS and name in values else match.group(0)

    return _PLACEHOLDER.sub(value_for, text)


def first_name(patient_name: str) -> str:
    parts = (patient_name or "").split()
    return parts[0] if parts else ""


def placeholder_values(
    consultation: ConsultationRequest, condition_name: str, follow_up_until: date | None
) -> dict[str, str]:
    """The values for one request, in the patient's language (the reply's reader)."""
    language = consultation.language or "en"
    return {
        "first_name": first_name(consultation.patient_name),
        "condition": condition_name,
        "follow_up_date": format_date(follow_up_until, "long", locale=language) if follow_up_until else "",
    }


def filled(reply: SavedReply, values: Mapping[str, str]) -> ReplyText:
    return ReplyText(
        assessment=fill(reply.assessment, values),
        treatment=fill(reply.treatment, values),
        prescription_note=fill(reply.prescription_note, values),
        follow_up=fill(reply.follow_up, values),
    )


# --- Who sees and keeps which replies ---------------------------------------------------------------


def may_use(user: User, reply: SavedReply) -> bool:
    return reply.owner_id is None or reply.owner_id == user.id


def may_manage(user: User, reply: SavedReply) -> bool:
    """Dermatologists keep their own replies; admins keep the clinic-wide ones."""
    if reply.owner_id is None:
        return user.role == Role.ADMIN
    return reply.owner_id == user.id


def may_keep_replies(user: User) -> bool:
    return user.role in (Role.DERMATOLOGIST, Role.ADMIN)


def manageable(user: User) -> list[SavedReply]:
    """The replies `user` may change: a dermatologist's own, or for an admin the clinic-wide ones."""
    owner = SavedReply.owner_id.is_(None) if user.role == Role.ADMIN else SavedReply.owner_id == user.id
    return list(
        db.session.execute(select(SavedReply).where(owner).order_by(SavedReply.language, SavedReply.title)).scalars()
    )


def usable(user: User) -> list[SavedReply]:
    """The replies `user` may put into an answer: their own and the clinic-wide ones."""
    return list(
        db.session.execute(
            select(SavedReply).where(or_(SavedReply.owner_id.is_(None), SavedReply.owner_id == user.id))
        ).scalars()
    )


def find_usable(user: User, reply_id: int | None) -> SavedReply | None:
    reply = db.session.get(SavedReply, reply_id) if reply_id else None
    return reply if reply is not None and may_use(user, reply) else None


def for_request(replies: Sequence[SavedReply], condition_slug: str | None, language: str) -> list[SavedReply]:
    """Replies in the order to offer them for a request: its condition and language first, then
    general ones in its language, then the rest; the most used first within each group."""

    def rank(reply: SavedReply) -> tuple[int, int, str]:
        same_language = reply.language == language
        same_condition = condition_slug is not None and reply.condition_slug == condition_slug
        if same_language and same_condition:
            group = 0
        elif same_language and reply.condition_slug is None:
            group = 1
        elif same_condition:
            group = 2
        elif same_language:
            group = 3
        else:
            group = 4
        return group, -(reply.usage_count or 0), reply.title.casefold()

    return sorted(replies, key=rank)


def is_suggested(reply: SavedReply, condition_slug: str | None, language: str) -> bool:
    """Offered first: in the request's language, for its condition or for any."""
    return reply.language == language and reply.condition_slug in (None, condition_slug)


# --- Keeping replies ----------------------------------------------------------------------------------


def _checked(content: ReplyContent, languages: Sequence[str]) -> ReplyContent:
    title = " ".join(content.title.split())
    if not title:
        raise SavedReplyRefused(_l("Give the reply a title."))
    if len(title) > MAX_TITLE:
        raise SavedReplyRefused(_l("Keep the title under %(n)s characters.", n=MAX_TITLE))
    if content.language not in languages:
        raise SavedReplyRefused(_l("Choose the language the reply is written in."))
    text = ReplyText(**{name: value.strip() for name, value in content.text.as_dict().items()})
    if not any(text.as_dict().values()):
        raise SavedReplyRefused(_l("Write the text of at least one of the answer's fields."))
    if any(len(value) > MAX_TEXT for value in text.as_dict().values()):
        raise SavedReplyRefused(_l("Each field can hold at most %(n)s characters.", n=MAX_TEXT))
    return ReplyContent(title=title, language=content.language, condition_slug=content.condition_slug, text=text)


def _apply(reply: SavedReply, content: ReplyContent) -> None:
    reply.title = content.title
    reply.language = content.language
    reply.condition_slug = content.condition_slug or None
    for name, value in content.text.as_dict().items():
        setattr(reply, name, value)


def create(user: User, content: ReplyContent, languages: Sequence[str], *, address: str | None = None) -> SavedReply:
    """A new saved reply: a dermatologist's own, or clinic-wide when an admin writes it."""
    if not may_keep_replies(user):
        raise SavedReplyRefused(_l("Your role cannot keep saved replies."))
    checked = _checked(content, languages)
    reply = SavedReply(owner_id=None if user.role == Role.ADMIN else user.id, usage_count=0)
    _apply(reply, checked)
    db.session.add(reply)
    db.session.flush()
    audit.record(AuditAction.SAVED_REPLY_CREATED, Actor.staff(user, address), detail=f"saved reply {reply.id}")
    db.session.commit()
    return reply


def change(
    reply: SavedReply, user: User, content: ReplyContent, languages: Sequence[str], *, address: str | None = None
) -> None:
    if not may_manage(user, reply):
        raise SavedReplyRefused(_l("Only its owner can change this reply (clinic-wide replies: an admin)."))
    _apply(reply, _checked(content, languages))
    audit.record(AuditAction.SAVED_REPLY_UPDATED, Actor.staff(user, address), detail=f"saved reply {reply.id}")
    db.session.commit()


def delete(reply: SavedReply, user: User, *, address: str | None = None) -> None:
    if not may_manage(user, reply):
        raise SavedReplyRefused(_l("Only its owner can delete this reply (clinic-wide replies: an admin)."))
    reply_id = reply.id
    db.session.delete(reply)
    audit.record(AuditAction.SAVED_REPLY_DELETED, Actor.staff(user, address), detail=f"saved reply {reply_id}")
    db.session.commit()


def count_use(reply: SavedReply, actor: Actor, consultation: ConsultationRequest) -> None:
    """An answer using `reply` is being sent: count it in the answer's own transaction (no commit here).

    The increment is done by the database, so two answers sent at once both count.
    """
    db.session.execute(
        update(SavedReply).where(SavedReply.id == reply.id).values(usage_count=SavedReply.usage_count + 1)
    )
    audit.record(AuditAction.SAVED_REPLY_USED, actor, consultation=consultation, detail=f"saved reply {reply.id}")
