"""Making sure the demo requests numbered 1..N exist: the first ones are the played examples, the
rest a made-up history (history.py: COPY on PostgreSQL, batched INSERTs on SQLite). Only missing
numbers are created, so a run can be repeated at no cost, and a larger N adds the older ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from flask import current_app

from app.conditions.library import articles
from app.consultations.clock import due_time
from app.demo import history, store, stories
from app.demo.cases import DEMO_CASES
from app.extensions import db
from app.models import User
from app.runtime import policies


def ensure_requests(
    total: int, dermatologists: Sequence[User], now: datetime, progress: history.Progress | None = None
) -> int:
    """Create the demo requests numbered 1..total that do not exist yet; returns how many were created.

    `progress` hears how far the history is (requests written so far, and the stage)."""
    existing = store.existing_keys()
    missing = [number for number in range(1, total + 1) if store.submission_key(number) not in existing]
    stories.create_examples([number for number in missing if number <= len(DEMO_CASES)], dermatologists, now)
    create_history([number for number in missing if number > len(DEMO_CASES)], dermatologists, now, progress)
    return len(missing)


def history_plan(dermatologists: Sequence[User], now: datetime) -> history.Plan:
    """The history as the demo wants it: the demo dermatologists answer, the clinic's own due times,
    conditions and consent version, demo keys and private links (store.py), and neither photo rows
    (there would be no files behind them) nor emails (nobody hears of demo data)."""
    return history.Plan(
        now=now,
        dermatologists=[user.id for user in dermatologists],
        key_format=store.KEY_FORMAT,
        slugs=[condition.slug for condition in articles().all()],
        consent_version=current_app.config["CONSENT_VERSION"],
        due=partial(due_time, policy=policies().response),
        link_hash=store.link_hashes(),
        photos=False,
        emails=False,
    )


def create_history(
    numbers: Sequence[int], dermatologists: Sequence[User], now: datetime, progress: history.Progress | None = None
) -> history.Loaded | None:
    """Write the history requests `numbers` in one transaction (all of them, or none)."""
    if not numbers:
        return None
    plan = history_plan(dermatologists, now)
    db.session.commit()  # the examples are in; the history is a transaction of its own
    try:
        loaded = history.load(db.session.connection(), numbers, plan, progress)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    history.analyse(db.engine)
    return loaded
