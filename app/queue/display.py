"""How the queue shows time: the countdown badge's words, a request's age, a condition's name.

static/js/countdown.js rebuilds the same words in the browser every 30 seconds from the
formats in countdown_formats(), so the server's first paint and the live text agree.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import format_timedelta, get_locale, gettext

from app.conditions.library import articles
from app.consultations.clock import AT_RISK, ON_TRACK, OVERDUE, clock_state, time_left
from app.runtime import policies


def state_labels() -> dict[str, str]:
    return {ON_TRACK: gettext("on track"), AT_RISK: gettext("at risk"), OVERDUE: gettext("overdue")}


def countdown_formats() -> dict[str, str]:
    """Word patterns for the live countdown, in the reader's language (placeholders filled in by JS)."""
    return {
        "hours_minutes": gettext("%(hours)s h %(minutes)s min"),
        "minutes": gettext("%(minutes)s min"),
        "left": gettext("%(time)s left"),
        "late": gettext("%(time)s late"),
    }


def _duration(span: timedelta) -> str:
    minutes = int(abs(span).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return gettext("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes)
    return gettext("%(minutes)s min", minutes=minutes)


def countdown(due_at: datetime | None, now: datetime, target_hours: int | None = None) -> tuple[str, str]:
    """(state, words) for a badge, e.g. ("at_risk", "at risk · 3 h 10 min left").

    `target_hours`: the request's own target (an urgent request's), which brings its warning closer."""
    state = clock_state(due_at, now, policies().response, target_hours)
    remaining = time_left(due_at, now)
    if remaining is None:
        return state, ""
    if remaining > timedelta(0):
        time_text = gettext("%(time)s left", time=_duration(remaining))
    else:
        time_text = gettext("%(time)s late", time=_duration(remaining))
    return state, f"{state_labels()[state]} · {time_text}"


def warning_hours(target_hours: int | None = None) -> float:
    """Hours before the due moment a badge turns "at risk" (for static/js/countdown.js)."""
    return policies().response.warning_for(target_hours).total_seconds() / 3600


def describe_age(created_at: datetime, now: datetime) -> str:
    """'3 hours ago' in the reader's language."""
    return format_timedelta(created_at - now, add_direction=True, threshold=1.1)


def condition_title(slug: str | None) -> str:
    """The article title (in the reader's language when translated) for a condition slug the
    patient picked, or a plain fallback."""
    if not slug:
        return gettext("Not sure / other")
    article, _ = articles().get(slug, str(get_locale() or "en"), include_drafts=True)
    return article.title if article is not None else slug


def status_labels() -> dict[str, str]:
    """A request's status in the clinic's words."""
    return {
        "submitted": gettext("New, unclaimed"),
        "in_review": gettext("In review"),
        "awaiting_patient": gettext("Waiting for the patient"),
        "answered": gettext("Answered"),
        "closed": gettext("Closed"),
        "withdrawn": gettext("Withdrawn by the patient"),
    }
