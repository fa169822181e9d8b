"""The text `flask demo seed` prints: where to sign in, the demo logins, the demo requests by state,
and private links of two example patients (every link built from the route table, app.links)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select

from app.consultations import clock
from app.consultations.states import OPEN, Status
from app.demo import store
from app.demo.accounts import DEMO_ACCOUNTS, DemoLogin
from app.demo.cases import DEMO_CASES, SHOWCASE_LINKS
from app.extensions import db
from app.links import external_url
from app.models import ConsultationRequest
from app.runtime import policies
from app.timeutil import utcnow

# What the queue calls each status, in the counts.
LABELS = {
    Status.SUBMITTED: "new",
    Status.IN_REVIEW: "claimed",
    Status.AWAITING_PATIENT: "awaiting patient",
    Status.ANSWERED: "answered",
}


def summary(logins: Sequence[DemoLogin], created: int) -> str:
    widths = (13, max(len(a.email) for a in DEMO_ACCOUNTS), max(len(a.password) for a in DEMO_ACCOUNTS))
    rule = "+-" + "-+-".join("-" * width for width in widths) + "-+"

    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    lines = [
        "",
        f"Demo data is ready. Sign in at {external_url('auth.login')}",
        rule,
        row(("role", "email", "password")),
    ]
    lines.append(rule)
    for login in logins:
        password = login.account.password if login.password_works else "(changed; --reset restores)"
        lines.append(row((login.account.role, login.account.email, password)))
    lines.append(rule)
    lines.append(f"Demo requests on file: {state_counts()}. Created by this run: {created}.")
    lines.append("A patient's private page (no sign-in; demo data only):")
    for index in SHOWCASE_LINKS:
        key = store.submission_key(index + 1)
        found = db.session.execute(
            select(ConsultationRequest.reference).where(ConsultationRequest.submission_key == key)
        ).scalar()
        if found:
            link = external_url("intake.private", token=store.demo_token(key))
            lines.append(f"  {found} ({DEMO_CASES[index].story}): {link}")
    return "\n".join(lines) + "\n"


def state_counts() -> str:
    """Demo requests by what the queue shows: new, claimed (at risk, overdue), awaiting patient, answered, closed."""
    now = utcnow()
    response = policies().response
    by_status = dict(
        db.session.execute(
            select(ConsultationRequest.status, func.count()).where(store.is_demo()).group_by(ConsultationRequest.status)
        ).all()
    )
    open_due = db.session.execute(
        select(ConsultationRequest.due_at).where(
            store.is_demo(), ConsultationRequest.status.in_(OPEN), ConsultationRequest.due_at < now + timedelta(days=1)
        )
    ).scalars()
    clocks = Counter(clock.clock_state(due_at, now, response) for due_at in open_due)
    parts = [f"{by_status[status]} {LABELS.get(status, status.value)}" for status in Status if by_status.get(status)]
    text = f"{sum(by_status.values())} ({', '.join(parts)})" if parts else "none"
    return text + f"; open: {clocks[clock.AT_RISK]} at risk, {clocks[clock.OVERDUE]} overdue"
