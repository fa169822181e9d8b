"""Making sure the demo requests numbered 1..N exist: the first ones are the played examples, the
rest bulk rows. Only missing numbers are created, so a run can be repeated at no cost."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from app.demo import bulk, store, stories
from app.demo.cases import DEMO_CASES
from app.models import User


def ensure_requests(total: int, dermatologists: Sequence[User], now: datetime) -> int:
    """Create the demo requests numbered 1..total that do not exist yet; returns how many were created."""
    existing = store.existing_keys()
    missing = [number for number in range(1, total + 1) if store.submission_key(number) not in existing]
    stories.create_examples([number for number in missing if number <= len(DEMO_CASES)], dermatologists, now)
    bulk.create_bulk([number for number in missing if number > len(DEMO_CASES)], dermatologists, now)
    return len(missing)
