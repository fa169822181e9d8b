"""Was this helpful? Asked on the private page after an answer, once per request; staff see the figures
per month and per dermatologist and the comments on the dashboard, never in an email. The dashboard
also counts urgent and routine rounds apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.consultations import feedback
from app.consultations import staff_actions as actions
from app.consultations.lateness import LateExplanation, LateReason, is_late
from app.extensions import db
from app.models import Feedback, OutboundEmail
from app.outbox import render
from app.runtime import policies
from app.staff.dashboard import build, csv_text
from tests.factories import login_as, make_consultation, make_user

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
COMMENT = "Clear advice, and the cream worked within a week."


@pytest.fixture
def derm(app):
    return make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta")


def answered(derm, at=T0, **fields):
    consultation, token = make_consultation(created_at=at, **fields)
    actions.claim(consultation, derm, at)
    actions.answer(consultation, derm, actions.Answer("Eczema.", "Emollient."), at + timedelta(hours=3))
    return consultation, token


def ratings() -> int:
    return db.session.execute(select(func.count(Feedback.id))).scalar_one()


def test_the_rating_is_asked_only_after_an_answer(client, derm):
    _, waiting_token = make_consultation(created_at=T0)
    assert "Was this helpful?" not in client.get(f"/c/{waiting_token}").get_data(as_text=True)
    assert client.post(f"/c/{waiting_token}/feedback", data={"rating": "5"}).status_code == 303
    assert ratings() == 0
    _, token = answered(derm)
    page = client.get(f"/c/{token}").get_data(as_text=True)
    assert "Was this helpful?" in page and 'name="rating"' in page and "5 – very helpful" in page


def test_a_rating_is_stored_once_per_request(client, derm):
    consultation, token = answered(derm)
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        first = client.post(f"/c/{token}/feedback", data={"rating": "4", "comment": f"  {COMMENT}  "})
        second = client.post(f"/c/{token}/feedback", data={"rating": "1", "comment": "changed my mind"})
    assert first.status_code == 303 and second.status_code == 303
    stored = db.session.execute(select(Feedback)).scalar_one()
    assert (stored.rating, stored.comment, stored.dermatologist_id) == (4, COMMENT, derm.id)
    page = client.get(f"/c/{token}").get_data(as_text=True)
    assert 'name="rating"' not in page  # the question is gone once answered
    with pytest.raises(feedback.FeedbackRefused):
        feedback.give(consultation, 5, None, T0)
    assert ratings() == 1


@pytest.mark.parametrize("rating", ["0", "6", "many", ""])
def test_a_rating_outside_1_to_5_is_refused_next_to_the_field(client, derm, rating):
    _, token = answered(derm)
    response = client.post(f"/c/{token}/feedback", data={"rating": rating, "comment": COMMENT})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert COMMENT in text  # what was typed is kept
    assert ratings() == 0


def test_staff_see_ratings_per_month_and_dermatologist_and_the_comments_never_in_an_email(client, app, derm):
    other = make_user("dermatologist", name="Dr Jonas")
    staff = make_user("staff")
    for when, by, rating, comment in [
        (T0 - timedelta(days=40), derm, 2, None),
        (T0, derm, 5, COMMENT),
        (T0, other, 4, None),
    ]:
        consultation, _ = answered(by, at=when)
        feedback.give(consultation, rating, comment, when + timedelta(hours=5))
    with time_machine.travel(T0 + timedelta(hours=6), tick=False):
        figures = build(T0 + timedelta(hours=6), policies().response, policies().zone).feedback
        login_as(client, staff)
        page = client.get("/staff/").get_data(as_text=True)
        csv = csv_text(build(T0 + timedelta(hours=6), policies().response, policies().zone))
    assert figures.overall.count == 3 and figures.overall.average == pytest.approx(11 / 3, abs=0.01)
    months = {month.strftime("%Y-%m"): rated for month, rated in figures.by_month}
    assert months["2026-11"].count == 2 and months["2026-11"].average == 4.5
    assert months["2026-10"].count == 1 and months["2026-10"].average == 2
    assert dict((name, rated.count) for name, rated in figures.by_dermatologist) == {"Dr Rūta": 2, "Dr Jonas": 1}
    assert [c.text for c in figures.comments] == [COMMENT]
    assert "feedback-heading" in page and COMMENT in page
    assert "rating_average,month,2026-11,,4.5" in csv
    for email in db.session.execute(select(OutboundEmail)).scalars():
        subject, text, html = render(email)
        assert COMMENT not in subject + text + html


def test_the_dashboard_counts_urgent_and_routine_rounds_apart(app):
    derm = make_user("dermatologist")
    urgent, _ = make_consultation(created_at=T0, urgent=True, triage_level="today", response_target_hours=4)
    late_urgent, _ = make_consultation(created_at=T0, urgent=True, triage_level="emergency", response_target_hours=4)
    routine, _ = make_consultation(created_at=T0)
    for consultation, hours in ((urgent, 2), (late_urgent, 6), (routine, 6)):
        actions.claim(consultation, derm, T0)
        answered_at = T0 + timedelta(hours=hours)
        late = LateExplanation(LateReason.WORKLOAD) if is_late(consultation.due_at, answered_at) else None
        actions.answer(consultation, derm, actions.Answer("A.", "B."), answered_at, late=late)
    make_consultation(created_at=T0 + timedelta(hours=7), urgent=True, triage_level="today", response_target_hours=4)
    now = T0 + timedelta(hours=8)
    figures = build(now, policies().response, policies().zone)
    week = figures.periods[0]
    assert (week.urgent.met, week.urgent.missed) == (1, 1)
    assert (week.routine.met, week.routine.missed) == (1, 0)
    assert figures.open_urgent == 1
    assert "urgent_rounds_missed,last 7 days,,,1" in csv_text(figures)
