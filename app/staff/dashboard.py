"""The figures behind /staff/: read from the database as plain values, computed by app.staff.figures.

Periods: "last 7/30 days" are rolling windows ending now; the daily table and chart cover the
last 30 calendar days in the clinic's time zone, today included. A round counts on the day its
outcome became known: the reply, if it came in time; otherwise the due moment.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from app.consultations import forecast, lateness, rota
from app.consultations.clock import ResponsePolicy
from app.consultations.policies import Policies
from app.extensions import db
from app.models import (
    FAILED,
    OPEN_STATUSES,
    PENDING,
    SENT,
    ConsultationRequest,
    Feedback,
    OutboundEmail,
    ResponseClock,
    User,
)
from app.staff import figures as sla
from app.timeutil import utcnow

PERIODS = (7, 30)
OPEN_STATES = (sla.ON_TRACK, sla.AT_RISK, sla.OVERDUE)
CHART_DAYS = 30
UNCLAIMED = _l("Not claimed")
# What each email template is, in staff's words (unknown templates show their file name).
EMAIL_KINDS = {
    "request_received": _l("Request received (to the patient)"),
    "staff_new_request": _l("New request (to the team)"),
    "patient_reply_ready": _l("Reply ready (to the patient)"),
    "patient_replied": _l("Patient replied (to the team)"),
    "sla_at_risk": _l("At-risk alert"),
    "sla_overdue": _l("Overdue escalation"),
    "payments/receipt": _l("Receipt (to the patient)"),
    "payments/reminder": _l("Payment not completed (to the patient)"),
    "payments/refund": _l("Refund (to the patient)"),
    "payments/refund_refused": _l("Refund refused by the provider (to the team)"),
    "sla_escalated": _l("Still overdue (to the medical lead)"),
    "request_assigned": _l("Request assigned (to the dermatologist)"),
    "coverage_gap": _l("Rota gap forecast"),
    "weekly_summary": _l("Weekly summary"),
    "urgent_request": _l("Urgent request (to staff and on-call dermatologists)"),
    "check_in_due": _l("Check-in (to the patient)"),
}


@dataclass(frozen=True)
class PeriodFigures:
    days: int
    compliance: sla.Compliance
    answered: int  # requests first answered in the period
    median_hours: float | None
    p90_hours: float | None
    # Urgent rounds (red-flag answers, URGENT_TARGET_HOURS) and routine ones, counted apart.
    urgent: sla.Compliance = field(default_factory=lambda: sla.Compliance(0, 0))
    routine: sla.Compliance = field(default_factory=lambda: sla.Compliance(0, 0))


@dataclass(frozen=True)
class OpenRequest:
    reference: str
    state: str
    due_at: datetime
    dermatologist: str | None
    urgent: bool = False


@dataclass(frozen=True)
class Comment:
    reference: str
    given_at: datetime
    rating: int
    dermatologist: str | None
    text: str


@dataclass(frozen=True)
class FeedbackFigures:
    """Was this helpful? Ratings per month (last 12) and per dermatologist (last 12 months), latest comments."""

    overall: sla.RatingFigures
    by_month: list[tuple[date, sla.RatingFigures]]
    by_dermatologist: list[tuple[str | None, sla.RatingFigures]]
    comments: list[Comment]


@dataclass(frozen=True)
class Figures:
    now: datetime
    open_counts: dict[str, int]
    needs_attention: list[OpenRequest]  # at risk and overdue, most urgent first
    periods: list[PeriodFigures]
    days: list[sla.DayFigures]
    by_dermatologist: list[tuple[str | None, int]]  # None: not claimed
    chart: Chart
    open_urgent: int = 0
    feedback: FeedbackFigures | None = None


def _names() -> dict[int, str]:
    return dict(db.session.execute(select(User.id, User.name)).all())


def load_rounds(since: datetime) -> list[sla.RoundFacts]:
    """Every round that started, came due or was answered since `since`."""
    rows = db.session.execute(
        select(ResponseClock, ConsultationRequest.claimed_by_id, ConsultationRequest.status)
        .join(ConsultationRequest, ConsultationRequest.id == ResponseClock.request_id)
        .where(or_(ResponseClock.due_at >= since, ResponseClock.stopped_at >= since))
    ).all()
    return [
        sla.RoundFacts(
            request_id=clock.request_id,
            round=clock.round,
            started_at=clock.started_at,
            due_at=clock.due_at,
            stopped_at=clock.stopped_at,
            dermatologist_id=claimed_by_id or clock.stopped_by_id,
            cancelled=clock.stopped_at is None and status not in OPEN_STATUSES,
            urgent=bool(clock.urgent),
        )
        for clock, claimed_by_id, status in rows
    ]


def _open_requests(now: datetime, policy: ResponsePolicy, names: dict[int, str]) -> list[OpenRequest]:
    rows = db.session.execute(
        select(
            ConsultationRequest.reference,
            ConsultationRequest.due_at,
            ConsultationRequest.claimed_by_id,
            ConsultationRequest.urgent,
            ConsultationRequest.response_target_hours,
        )
        .where(ConsultationRequest.status.in_(OPEN_STATUSES), ConsultationRequest.due_at.is_not(None))
        .order_by(ConsultationRequest.urgent.desc(), ConsultationRequest.due_at)
    ).all()
    return [
        OpenRequest(
            reference,
            sla.clock_state(due_at, now, policy, target),
            due_at,
            names.get(claimed_by_id) if claimed_by_id is not None else None,
            bool(urgent),
        )
        for reference, due_at, claimed_by_id, urgent, target in rows
        if due_at is not None  # as the query already ensures
    ]


def period_figures(rounds: list[sla.RoundFacts], now: datetime, days: int) -> PeriodFigures:
    hours = sla.first_response_hours(rounds, now, days)
    return PeriodFigures(
        days=days,
        compliance=sla.compliance(rounds, now, days),
        answered=len(hours),
        median_hours=_one_decimal(sla.median(hours)),
        p90_hours=_one_decimal(sla.percentile(hours, 90)),
        urgent=sla.compliance(rounds, now, days, urgent=True),
        routine=sla.compliance(rounds, now, days, urgent=False),
    )


def _one_decimal(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def build(now: datetime, policy: ResponsePolicy, zone: ZoneInfo) -> Figures:
    """Everything the dashboard and the CSV export show, as of `now` (times shown in `zone`)."""
    rounds = load_rounds(now - timedelta(days=max(*PERIODS, CHART_DAYS) + 2))
    names = _names()
    open_requests = _open_requests(now, policy, names)
    days = sla.daily(rounds, now, CHART_DAYS, zone)
    breaches = sla.breaches_by_dermatologist(rounds, now, 30)
    # None stands for "not claimed"; it is named in the reader's language when shown.
    by_dermatologist = sorted(
        ((names.get(user_id) if user_id else None, count) for user_id, count in breaches.items()),
        key=lambda item: (-item[1], item[0] is None, item[0] or ""),
    )
    return Figures(
        now=now,
        # Each open request's state is already decided with its own target (an urgent one's is shorter).
        open_counts={state: sum(1 for r in open_requests if r.state == state) for state in OPEN_STATES},
        open_urgent=sum(1 for r in open_requests if r.urgent),
        feedback=feedback_figures(now, zone, names),
        needs_attention=[r for r in open_requests if r.state in (sla.AT_RISK, sla.OVERDUE)],
        periods=[period_figures(rounds, now, days) for days in PERIODS],
        days=days,
        by_dermatologist=by_dermatologist,
        chart=chart(days),
    )


FEEDBACK_MONTHS = 12
LATEST_COMMENTS = 20


def feedback_figures(now: datetime, zone: ZoneInfo, names: dict[int, str]) -> FeedbackFigures:
    """Ratings of the last 12 months, per month and per dermatologist, and the latest comments."""
    since = now - timedelta(days=31 * FEEDBACK_MONTHS)
    rows = db.session.execute(
        select(Feedback.created_at, Feedback.rating, Feedback.dermatologist_id).where(Feedback.created_at >= since)
    ).all()
    ratings = [sla.Rating(given_at, rating, dermatologist_id) for given_at, rating, dermatologist_id in rows]
    per_dermatologist = sorted(
        (
            (names.get(user_id) if user_id else None, figures)
            for user_id, figures in sla.ratings_by_dermatologist(ratings).items()
        ),
        key=lambda item: (item[0] is None, item[0] or ""),
    )
    latest = db.session.execute(
        select(Feedback, ConsultationRequest.reference)
        .join(ConsultationRequest, ConsultationRequest.id == Feedback.request_id)
        .where(Feedback.comment.is_not(None))
        .order_by(Feedback.created_at.desc(), Feedback.id.desc())
        .limit(LATEST_COMMENTS)
    ).all()
    comments = [
        Comment(reference, row.created_at, row.rating, names.get(row.dermatologist_id or 0), row.comment or "")
        for row, reference in latest
    ]
    return FeedbackFigures(
        overall=sla.rating_figures(ratings),
        by_month=sla.ratings_by_month(ratings, now, FEEDBACK_MONTHS, zone),
        by_dermatologist=per_dermatologist,
        comments=comments,
    )


# --- The chart: daily volume (bars) and share answered within target (line), as SVG geometry -----


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    max_volume: int
    bars: list[Bar] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # polyline points, one per unbroken run of days
    points: list[tuple[float, float]] = field(default_factory=list)
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    volume_ticks: list[tuple[float, int]] = field(default_factory=list)
    share_ticks: list[tuple[float, int]] = field(default_factory=list)


def _runs(points: list[tuple[float, float] | None]) -> list[str]:
    """Polyline point lists, broken where a day had no decided round (no share to plot)."""
    runs: list[list[str]] = [[]]
    for point in points:
        if point is None:
            runs.append([])
        else:
            runs[-1].append(f"{point[0]},{point[1]}")
    return [" ".join(run) for run in runs if run]


def chart(days: list[sla.DayFigures], width: int = 720, height: int = 260) -> Chart:
    """Coordinates for a bar (new requests) and line (% within target) chart, drawn by the template."""
    left, right, top, bottom = 40, 48, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    base = top + plot_h
    max_volume = max([d.new_requests for d in days] + [1])
    step = plot_w / max(len(days), 1)
    bars, points, labels = [], [], []
    for index, day in enumerate(days):
        x = left + index * step
        bar_h = plot_h * day.new_requests / max_volume
        bars.append(Bar(round(x + step * 0.15, 1), round(base - bar_h, 1), round(step * 0.7, 1), round(bar_h, 1)))
        share_y = None if day.share is None else round(base - plot_h * day.share / 100, 1)
        points.append(None if share_y is None else (round(x + step / 2, 1), share_y))
        if (len(days) - 1 - index) % 7 == 0:  # weekly ticks, counted back from today
            labels.append((round(x + step / 2, 1), day.day.strftime("%m-%d")))
    return Chart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        max_volume=max_volume,
        bars=bars,
        lines=_runs(points),
        points=[p for p in points if p is not None],
        x_labels=labels,
        volume_ticks=[(round(base - plot_h * v / max_volume, 1), v) for v in sorted({0, max_volume // 2, max_volume})],
        share_ticks=[(round(base - plot_h * p / 100, 1), p) for p in (0, 50, 100)],
    )


# --- CSV export -----------------------------------------------------------------------------------

CSV_HEADER = ["figure", "period", "date", "dermatologist", "value"]


def _cell(value: object) -> str:
    """Text a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(figures: Figures, late: LateFigures | None = None) -> list[list[str]]:
    """The dashboard's figures as one tidy table: one figure per row. With `late`, also the reasons
    given for late replies and where each period's time went (the dermatologists' own words for
    "other" stay on the dashboard: free text may name a patient)."""
    rows: list[list[object]] = [list(CSV_HEADER)]
    rows += [["open_requests", "now", "", state, count] for state, count in figures.open_counts.items()]
    for period in figures.periods:
        label = f"last {period.days} days"
        rows += [
            ["rounds_met", label, "", "", period.compliance.met],
            ["rounds_missed", label, "", "", period.compliance.missed],
            ["answered_within_target_percent", label, "", "", period.compliance.share],
            ["first_responses", label, "", "", period.answered],
            ["first_response_median_hours", label, "", "", period.median_hours],
            ["first_response_p90_hours", label, "", "", period.p90_hours],
            ["urgent_rounds_met", label, "", "", period.urgent.met],
            ["urgent_rounds_missed", label, "", "", period.urgent.missed],
            ["routine_rounds_met", label, "", "", period.routine.met],
            ["routine_rounds_missed", label, "", "", period.routine.missed],
        ]
    for day in figures.days:
        iso = day.day.isoformat()
        rows += [
            ["new_requests", "day", iso, "", day.new_requests],
            ["rounds_met", "day", iso, "", day.met],
            ["rounds_missed", "day", iso, "", day.missed],
            ["answered_within_target_percent", "day", iso, "", day.share],
        ]
    rows += [["breaches", "last 30 days", "", name or UNCLAIMED, count] for name, count in figures.by_dermatologist]
    rows.append(["open_urgent_requests", "now", "", "", figures.open_urgent])
    if figures.feedback is not None:
        for month, rated in figures.feedback.by_month:
            rows += [
                ["ratings", "month", month.strftime("%Y-%m"), "", rated.count],
                ["rating_average", "month", month.strftime("%Y-%m"), "", rated.average],
            ]
        for name, rated in figures.feedback.by_dermatologist:
            rows += [
                ["ratings", "last 12 months", "", name or UNCLAIMED, rated.count],
                ["rating_average", "last 12 months", "", name or UNCLAIMED, rated.average],
            ]
    if late is not None:
        rows += late_rows(late)
    return [[_cell(value) for value in row] for row in rows]


def late_rows(late: LateFigures) -> list[list[object]]:
    rows: list[list[object]] = []
    for period in late.periods:
        label = f"last {period.days} days"
        rows += [
            ["rounds_started", label, "", "", period.totals.rounds],
            ["patient_waiting_on_duty_hours", label, "", "", period.totals.within_hours],
            ["patient_waiting_off_duty_hours", label, "", "", period.totals.outside_hours],
            ["clinic_waiting_for_patient_hours", label, "", "", period.totals.waiting_for_patient],
        ]
    reasons_period = f"last {max(PERIODS)} days"
    rows += [[f"late_replies_{reason}", reasons_period, "", "", count] for reason, count in late.reasons]
    return rows


def csv_text(figures: Figures, late: LateFigures | None = None) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(csv_rows(figures, late))
    return buffer.getvalue()


# --- The outbox as staff see it --------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxOverview:
    counts: dict[str, int]
    failed: list[OutboundEmail]
    pending: list[OutboundEmail]
    sent: list[OutboundEmail]


# "Sent" on the dashboard counts this many days back: the whole history of a national service is
# millions of rows that staff never need counted, and counting them grows with every year.
SENT_DAYS = 7


def outbox_overview(limit: int = 50, recent_sent: int = 10, now: datetime | None = None) -> OutboxOverview:
    """Emails waiting and failed (all of them), and sent in the last SENT_DAYS days; each count reads
    only its own rows (ix_outbox_status_next, ix_outbox_status_sent)."""
    since = (now or utcnow()) - timedelta(days=SENT_DAYS)
    email = OutboundEmail

    def count(*conditions) -> int:
        return db.session.execute(select(func.count(email.id)).where(*conditions)).scalar_one()

    counts = {
        PENDING: count(email.status == PENDING),
        FAILED: count(email.status == FAILED),
        SENT: count(email.status == SENT, email.sent_at >= since),
    }

    def rows(status: str, order, size: int) -> list[OutboundEmail]:
        query = select(OutboundEmail).where(OutboundEmail.status == status).order_by(*order).limit(size)
        return list(db.session.execute(query).scalars())

    return OutboxOverview(
        counts=counts,
        failed=rows(FAILED, (OutboundEmail.id.desc(),), limit),
        pending=rows(PENDING, (OutboundEmail.next_attempt_at, OutboundEmail.id), limit),
        sent=rows(SENT, (OutboundEmail.sent_at.desc(), OutboundEmail.id.desc()), recent_sent),
    )


def references(emails: list[OutboundEmail]) -> dict[int, str]:
    """Request references for outbox rows, to link each email to its request."""
    ids = {email.request_id for email in emails if email.request_id is not None}
    if not ids:
        return {}
    query = select(ConsultationRequest.id, ConsultationRequest.reference).where(ConsultationRequest.id.in_(ids))
    return {request_id: reference for request_id, reference in db.session.execute(query)}


# --- The rota: on duty now and next, the coverage forecast, late replies and where the time went -----


@dataclass(frozen=True)
class LatePeriod:
    days: int
    totals: lateness.TimeTotals


@dataclass(frozen=True)
class LateFigures:
    periods: list[LatePeriod]  # time split of the rounds started in the last 7 and 30 days
    reasons: list[tuple[str, int]]  # missed rounds answered in the last 30 days, by reason
    notes: list[lateness.RoundTime]  # ... those with "other" and the dermatologist's words, newest first
    rounds: list[lateness.RoundTime]  # every round started in the last 7 days, newest first
    rounds_shown_limit: int


@dataclass(frozen=True)
class RotaFigures:
    board: rota.DutyBoard
    forecast: forecast.CoverageForecast
    late: LateFigures


ROUNDS_SHOWN = 200


def late_figures(now: datetime, policies: Policies) -> LateFigures:
    """Late replies and where the time went, as of `now` (the dashboard and the CSV export)."""
    since = now - timedelta(days=max(PERIODS))
    times = lateness.round_times(policies.rota, since, now)
    started = {days: [t for t in times if t.started_at > now - timedelta(days=days)] for days in PERIODS}
    answered_late = [t for t in times if t.missed and t.stopped_at is not None and t.stopped_at > since]
    newest_first = sorted(started[min(PERIODS)], key=lambda t: (t.started_at, t.round), reverse=True)
    return LateFigures(
        periods=[LatePeriod(days, lateness.totals(started[days])) for days in PERIODS],
        reasons=lateness.reason_counts(answered_late),
        notes=sorted(
            (t for t in answered_late if t.late_note), key=lambda t: t.stopped_at or t.started_at, reverse=True
        ),
        rounds=newest_first[:ROUNDS_SHOWN],
        rounds_shown_limit=ROUNDS_SHOWN,
    )


def rota_figures(now: datetime, policies: Policies) -> RotaFigures:
    """Everything the dashboard shows about the rota and about late replies, as of `now`."""
    return RotaFigures(
        board=rota.duty_board(policies.rota, now),
        forecast=forecast.build(policies, now),
        late=late_figures(now, policies),
    )
