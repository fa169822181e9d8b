"""The 24-hour target: when a reply is due, and starting and stopping the response clock.

Functions here take values and return values (or change the request handed to them);
they never commit, so the caller's transaction decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app

from app.models import ConsultationRequest, ResponseClock, User
from app.timeutil import as_utc


def due_time(start: datetime, settings: dict | None = None) -> datetime:
    """When a reply to something received at `start` is due (calendar hours)."""
    settings = settings if settings is not None else current_app.config
    return as_utc(start) + timedelta(hours=settings["RESPONSE_TARGET_HOURS"])


def start_clock(consultation: ConsultationRequest, now: datetime) -> ResponseClock:
    """Start the clock for the current round: on submission, and again after each patient reply."""
    due = due_time(now)
    clock = ResponseClock(round=consultation.response_round, started_at=now, due_at=due)
    consultation.clocks.append(clock)
    consultation.clock_started_at = now
    consultation.due_at = due
    return clock


def stop_clock(consultation: ConsultationRequest, now: datetime, by: User) -> None:
    """A dermatologist's message to the patient (answer or question) meets the current round."""
    for clock in consultation.clocks:
        if clock.round == consultation.response_round and clock.stopped_at is None:
            clock.stopped_at = now
            clock.stopped_by_id = by.id
    if consultation.first_response_at is None:
        consultation.first_response_at = now
    consultation.clock_started_at = None
    consultation.due_at = None


def next_round(consultation: ConsultationRequest, now: datetime) -> ResponseClock:
    """A patient's reply: a new promise of a reply within the target."""
    consultation.response_round += 1
    return start_clock(consultation, now)
