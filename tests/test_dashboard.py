"""The staff dashboard: figures against a hand-computed month, the chart, CSV export, access rules.

The month (now = Tuesday 24 Nov 2026 12:00 UTC, 14:00 in Vilnius); hours are relative to now,
every round is due 24 h after it starts. D1 = Dr Alpha, D2 = Dr Beta.

    req round started stopped  holder  outcome (decided at)       first response
    A   1     -100    -90      D1      met     (-90)              10 h
    A   2     -70     -47      D1      met     (-47)              (not a first response)
    B   1     -81.5   -50      D2      missed  (due -57.5)        31.5 h
    C   1     -60     -58      D1      met     (-58)              2 h
    D   1     -30     -        none    missed  (due -6), overdue  -
    E   1     -22     -        D1      open, at risk (due +2)     -
    F   1     -5      -        none    open, on track (due +19)   -
    W   1     -50     -        none    withdrawn unanswered: not counted
    G   1     -240    -236     D2      met     (-236)             4 h
    H   1     -480    -454     D1      missed  (due -456)         26 h
    J   1     -300    -299     D2      met     (-299)             1 h
    K   1     -200    -172     none*   missed  (due -176)         28 h   (*answered by D1)
    L   1     -500    -495     D1      met     (-495)             5 h
    M   1     -400    -399.5   D2      met     (-399.5)           0.5 h
    N   1     -350    -347     D1      met     (-347)             3 h
    I   1     -960    -959     D1      met, 40 days ago: outside every window

Last 7 days (168 h): met A1 A2 C, missed B D -> 3 of 5 = 60.0 %; first responses A B C
    [2, 10, 31.5] -> median 10.0 h, p90 (nearest rank 3 of 3) 31.5 h.
Last 30 days: met A1 A2 C G J L M N, missed B D H K -> 8 of 12 = 66.7 %; first responses
    [0.5, 1, 2, 3, 4, 5, 10, 26, 28, 31.5] -> median (4 + 5) / 2 = 4.5 h, p90 (rank 9 of 10) 28.0 h.
Breaches, 30 days: Dr Alpha 2 (H; K answered by him), Dr Beta 1 (B), not claimed 1 (D).
Days (Vilnius): B came due at 22:30 UTC on 21 Nov = 00:30 on 22 Nov; N arrived 22:00 UTC on
    9 Nov = 00:00 on 10 Nov.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from app.consultations.clock import AT_RISK, MET, MISSED, ON_TRACK, OVERDUE, next_round, stop_clock
from app.extensions import db
from app.models import AuditEvent, OutboundEmail
from app.runtime import policies
from app.staff.dashboard import build, chart, load_rounds
from app.staff.figures import (
    RoundFacts,
    breaches_by_dermatologist,
    compliance,
    daily,
    decided_at,
    first_response_hours,
    median,
    outcome,
    percentile,
)
from tests.factories import make_consultation, make_user

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
VILNIUS = ZoneInfo("Europe/Vilnius")


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def request_with_rounds(rounds, *, holder=None, status="answered"):
    """A request whose rounds started and stopped at the given hours: [(started, stopped, stopped_by)]."""
    (first_start, _, _), *_ = rounds
    consultation, _ = make_consultation(created_at=at(first_start), claimed_by=holder, status=status)
    for index, (started, stopped, by) in enumerate(rounds):
        if index:
            next_round(consultation, at(started), policies().response)
        if stopped is not None:
            stop_clock(consultation, at(stopped), by)
    db.session.commit()
    return consultation


@pytest.fixture
def clinic_month(app):
    alpha = make_user("dermatologist", name="Dr Alpha")
    beta = make_user("dermatologist", name="Dr Beta")
    request_with_rounds([(-100, -90, alpha), (-70, -47, alpha)], holder=alpha)  # A
    request_with_rounds([(-81.5, -50, beta)], holder=beta)  # B
    request_with_rounds([(-60, -58, alpha)], holder=alpha)  # C
    request_with_rounds([(-30, None, None)], status="submitted")  # D
    request_with_rounds([(-22, None, None)], holder=alpha, status="in_review")  # E
    request_with_rounds([(-5, None, None)], status="submitted")  # F
    request_with_rounds([(-50, None, None)], status="withdrawn")  # W
    request_with_rounds([(-240, -236, beta)], holder=beta)  # G
    request_with_rounds([(-480, -454, alpha)], holder=alpha)  # H
    request_with_rounds([(-300, -299, beta)], holder=beta)  # J
    request_with_rounds([(-200, -172, alpha)])  # K: nobody held it; Dr Alpha answered late
    request_with_rounds([(-500, -495, alpha)], holder=alpha)  # L
    request_with_rounds([(-400, -399.5, beta)], holder=beta)  # M
    request_with_rounds([(-350, -347, alpha)], holder=alpha)  # N
    request_with_rounds([(-960, -959, alpha)], holder=alpha)  # I
    return alpha, beta


# --- Pure figures ------------------------------------------------------------------------------


def test_compliance_over_7_and_30_days(clinic_month):
    rounds = load_rounds(NOW - timedelta(days=60))
    week, month = compliance(rounds, NOW, 7), compliance(rounds, NOW, 30)
    assert (week.met, week.missed, week.share) == (3, 2, 60.0)
    assert (month.met, month.missed, month.share) == (8, 4, 66.7)


def test_time_to_first_response_median_and_90th_percentile(clinic_month):
    rounds = load_rounds(NOW - timedelta(days=60))
    week, month = first_response_hours(rounds, NOW, 7), first_response_hours(rounds, NOW, 30)
    assert week == [2, 10, 31.5]
    assert (median(week), percentile(week, 90)) == (10, 31.5)
    assert month == [0.5, 1, 2, 3, 4, 5, 10, 26, 28, 31.5]
    assert (median(month), percentile(month, 90)) == (4.5, 28)


def test_breaches_by_dermatologist(clinic_month):
    alpha, beta = clinic_month
    rounds = load_rounds(NOW - timedelta(days=60))
    assert breaches_by_dermatologist(rounds, NOW, 30) == {alpha.id: 2, beta.id: 1, None: 1}
    assert breaches_by_dermatologist(rounds, NOW, 7) == {beta.id: 1, None: 1}


def test_breaches_and_volume_by_day_in_clinic_time(clinic_month):
    days = {d.day: d for d in daily(load_rounds(NOW - timedelta(days=60)), NOW, 30, VILNIUS)}
    assert min(days) == date(2026, 10, 26) and max(days) == date(2026, 11, 24) and len(days) == 30
    # B came due at 22:30 UTC on the 21st, which is already the 22nd in Vilnius.
    assert (days[date(2026, 11, 21)].new_requests, days[date(2026, 11, 21)].missed) == (1, 0)
    nov22 = days[date(2026, 11, 22)]
    assert (nov22.new_requests, nov22.met, nov22.missed, nov22.share) == (2, 2, 1, 66.7)  # C, W; C, A2; B
    nov24 = days[date(2026, 11, 24)]
    assert (nov24.new_requests, nov24.met, nov24.missed, nov24.share) == (1, 0, 1, 0.0)  # F; D
    assert days[date(2026, 11, 23)].share is None  # D and E arrived; nothing was decided
    # N arrived at 22:00 UTC on the 9th: midnight on the 10th in Vilnius, answered 03:00.
    assert (days[date(2026, 11, 9)].new_requests, days[date(2026, 11, 10)].new_requests) == (0, 1)
    assert days[date(2026, 11, 10)].met == 1
    missed_days = sorted(d.day for d in days.values() if d.missed)
    assert missed_days == [date(2026, 11, 5), date(2026, 11, 17), date(2026, 11, 22), date(2026, 11, 24)]
    assert sum(d.new_requests for d in days.values()) == 14
    assert sum(d.met for d in days.values()) == 8


def test_a_round_is_decided_by_a_timely_reply_or_by_its_due_moment():
    due = at(10)
    running = RoundFacts(1, 1, at(-14), due)
    assert decided_at(running, at(9)) is None and outcome(running, at(9)) is None
    assert decided_at(running, due) == due and outcome(running, due) == MISSED
    answered_late = RoundFacts(1, 1, at(-14), due, stopped_at=at(12))
    assert decided_at(answered_late, at(20)) == due and outcome(answered_late, at(20)) == MISSED
    answered = RoundFacts(1, 1, at(-14), due, stopped_at=at(1))
    assert decided_at(answered, at(20)) == at(1) and outcome(answered, at(20)) == MET
    withdrawn = RoundFacts(1, 1, at(-14), due, cancelled=True)
    assert decided_at(withdrawn, at(40)) is None and outcome(withdrawn, at(40)) is None


def test_percentile_is_nearest_rank_and_empty_lists_have_no_figure():
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile([7], 90) == 7
    assert percentile([], 90) is None and median([]) is None


# --- Built dashboard, chart and HTTP -------------------------------------------------------------


def test_build_collects_every_figure(app, clinic_month):
    figures = build(NOW, policies().response, policies().zone)
    assert figures.open_counts == {ON_TRACK: 1, AT_RISK: 1, OVERDUE: 1}
    assert [r.state for r in figures.needs_attention] == [OVERDUE, AT_RISK]
    assert figures.needs_attention[1].dermatologist == "Dr Alpha"
    week, month = figures.periods
    assert (week.compliance.share, week.median_hours, week.p90_hours, week.answered) == (60.0, 10.0, 31.5, 3)
    assert (month.compliance.share, month.median_hours, month.p90_hours, month.answered) == (66.7, 4.5, 28.0, 10)
    assert figures.by_dermatologist == [("Dr Alpha", 2), ("Dr Beta", 1), (None, 1)]


def test_chart_geometry_scales_bars_and_the_share_line(app, clinic_month):
    figures = build(NOW, policies().response, policies().zone)
    c = figures.chart
    assert c.max_volume == 2 and len(c.bars) == 30
    plot_bottom = c.height - c.bottom
    tallest = [index for index, b in enumerate(c.bars) if b.y == c.top and b.height == plot_bottom - c.top]
    assert [figures.days[i].day for i in tallest] == [date(2026, 11, 22), date(2026, 11, 23)]  # C, W and D, E
    assert c.bars[-1].height == (plot_bottom - c.top) / 2  # one request today
    assert [label for _x, label in c.x_labels] == ["10-27", "11-03", "11-10", "11-17", "11-24"]  # weekly, to today
    # A day with no decided round breaks the line; each plotted point is a day with a share.
    assert len(c.points) == sum(1 for d in figures.days if d.share is not None)
    assert len(c.lines) >= 2
    empty = chart([])
    assert empty.bars == [] and empty.lines == []


@pytest.fixture
def staff_member(app):
    return make_user("staff", name="Sam Staff")


def test_dermatologists_get_403_and_strangers_are_sent_to_sign_in(app, client, login_as):
    dermatologist = make_user("dermatologist")
    anonymous = client.get("/staff/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    login_as(dermatologist)
    assert client.get("/staff/").status_code == 403
    assert client.get("/staff/export.csv").status_code == 403


def test_the_dashboard_shows_the_figures(app, client, login_as, clinic_month, staff_member):
    with time_machine.travel(NOW, tick=False):
        login_as(staff_member)
        page = client.get("/staff/").get_data(as_text=True)
    for text in ("60.0 %", "66.7 %", "10.0 h", "31.5 h", "4.5 h", "28.0 h", "Dr Alpha", "Not claimed"):
        assert text in page
    assert 'role="img"' in page and 'id="chart-title"' in page and 'id="chart-desc"' in page
    assert "<table" in page and "2026-11-22" in page


def test_admins_see_the_dashboard_too(app, client, login_as):
    login_as(make_user("admin"))
    assert client.get("/staff/").status_code == 200


def test_csv_export_has_every_figure_and_is_audited(app, client, login_as, clinic_month, staff_member):
    with time_machine.travel(NOW, tick=False):
        login_as(staff_member)
        response = client.get("/staff/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="target-figures-2026-11-24.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["figure", "period", "date", "dermatologist", "value"]
    table = {tuple(row[:4]): row[4] for row in rows[1:]}
    assert table[("answered_within_target_percent", "last 7 days", "", "")] == "60.0"
    assert table[("answered_within_target_percent", "last 30 days", "", "")] == "66.7"
    assert table[("first_response_median_hours", "last 30 days", "", "")] == "4.5"
    assert table[("first_response_p90_hours", "last 7 days", "", "")] == "31.5"
    assert table[("rounds_missed", "day", "2026-11-22", "")] == "1"
    assert table[("new_requests", "day", "2026-11-10", "")] == "1"
    assert table[("answered_within_target_percent", "day", "2026-11-23", "")] == ""
    assert table[("open_requests", "now", "", "overdue")] == "1"
    assert table[("breaches", "last 30 days", "", "Dr Alpha")] == "2"
    assert table[("breaches", "last 30 days", "", "Not claimed")] == "1"
    events = db.session.execute(select(AuditEvent).where(AuditEvent.action == "exported")).scalars().all()
    assert len(events) == 1 and events[0].actor_user_id == staff_member.id


def test_csv_cells_cannot_become_spreadsheet_formulas(app, client, login_as, staff_member):
    sneaky = make_user("dermatologist", name="=HYPERLINK(1)")
    request_with_rounds([(-40, -10, sneaky)], holder=sneaky)
    with time_machine.travel(NOW, tick=False):
        login_as(staff_member)
        text = client.get("/staff/export.csv").get_data(as_text=True)
    assert "'=HYPERLINK(1)" in text and ",=HYPERLINK" not in text


def test_outbox_rows_show_their_status_and_failed_ones_can_be_sent_again(app, client, login_as, staff_member):
    failed = OutboundEmail(
        recipient="bounce@example.com",
        template="sla_overdue",
        context={"reference": "DRM-TEST22", "link": "http://localhost/queue/DRM-TEST22", "due_local": "x"},
        status="failed",
        attempts=8,
        last_error="recipient refused: 550 5.1.1 Mailbox unavailable",
    )
    db.session.add(failed)
    db.session.commit()
    login_as(staff_member)
    page = client.get("/staff/").get_data(as_text=True)
    assert "bounce@example.com" in page and "550 5.1.1 Mailbox unavailable" in page
    assert "Email delivery is switched off" in page  # no MAIL_SERVER in tests
    preview = client.get(f"/staff/outbox/{failed.id}").get_data(as_text=True)
    assert "Overdue: DRM-TEST22 missed the 24-hour target" in preview
    response = client.post(f"/staff/outbox/{failed.id}/retry")
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/#outbox")
    db.session.refresh(failed)
    assert (failed.status, failed.attempts) == ("pending", 0)
    again = client.post(f"/staff/outbox/{failed.id}/retry", follow_redirects=True)
    assert "not waiting for a retry" in again.get_data(as_text=True)
