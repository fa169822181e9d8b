"""Why late: a reply after the due moment asks for a reason and is refused without one (nothing sent,
the text kept); the dashboard reports the reasons and splits every round's time into the patient
waiting for the clinic (in and outside working hours) and the clinic waiting for the patient."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from app.consultations import lateness, rota
from app.consultations import staff_actions as actions
from app.consultations.audit import Actor
from app.consultations.clock import next_round
from app.extensions import db
from app.models import ConsultationRequest, Message, OutboundEmail, ResponseClock
from app.runtime import policies
from tests.factories import login_as, make_consultation, make_user

VILNIUS = ZoneInfo("Europe/Vilnius")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VILNIUS).astimezone(UTC)


SUBMITTED = local(2026, 11, 30, 10)
DUE = SUBMITTED + timedelta(hours=24)
ANSWER = {"assessment": "Hand eczema, irritant type.", "treatment": "Emollient after every wash."}


@pytest.fixture
def held(app):
    derm = make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta")
    consultation, _ = make_consultation(created_at=SUBMITTED, claimed_by=derm, status="in_review")
    return derm, consultation


def first_clock(consultation: ConsultationRequest) -> ResponseClock:
    return db.session.execute(
        select(ResponseClock).where(ResponseClock.request_id == consultation.id, ResponseClock.round == 1)
    ).scalar_one()


def test_a_late_answer_without_a_reason_is_refused_and_keeps_the_text(app, client, held):
    derm, consultation = held
    with time_machine.travel(DUE + timedelta(minutes=10), tick=False):
        login_as(client, derm)
        refused = client.post(f"/queue/{consultation.reference}/answer", data=ANSWER)
    assert refused.status_code == 422
    assert "The reply is late, so nothing was sent yet" in refused.text
    assert "Choose a reason." in refused.text
    assert "Hand eczema, irritant type." in refused.text and "Emollient after every wash." in refused.text
    db.session.refresh(consultation)
    assert consultation.status == "in_review" and consultation.due_at == DUE
    assert db.session.execute(select(Message)).first() is None
    assert (
        db.session.execute(select(OutboundEmail).where(OutboundEmail.template == "patient_reply_ready")).first() is None
    )


def test_a_late_answer_with_a_reason_is_sent_and_the_reason_kept(app, client, held):
    derm, consultation = held
    with time_machine.travel(DUE + timedelta(hours=2), tick=False):
        login_as(client, derm)
        page = client.get(f"/queue/{consultation.reference}")
        assert 'id="answer-late-reason"' in page.text and 'id="ask-late-reason"' in page.text
        sent = client.post(
            f"/queue/{consultation.reference}/answer",
            data={**ANSWER, "late_reason": "needed_colleague", "late_note": "  asked   Dr Tomas  "},
        )
    assert sent.status_code == 302
    db.session.refresh(consultation)
    assert consultation.status == "answered"
    clock = first_clock(consultation)
    assert (clock.late_reason, clock.late_note) == ("needed_colleague", "asked Dr Tomas")
    assert clock.stopped_at == DUE + timedelta(hours=2)


def test_other_needs_words_and_an_unknown_reason_is_refused(app, client, held):
    derm, consultation = held
    with time_machine.travel(DUE + timedelta(hours=1), tick=False):
        login_as(client, derm)
        other = client.post(f"/queue/{consultation.reference}/answer", data={**ANSWER, "late_reason": "other"})
        bogus = client.post(f"/queue/{consultation.reference}/answer", data={**ANSWER, "late_reason": "tired"})
    assert other.status_code == 422 and "Say in a few words what made the reply late." in other.text
    assert '<input checked id="answer-late-reason-4"' in other.text  # "Other" stays chosen
    assert bogus.status_code == 422 and "Not a valid choice" in bogus.text
    db.session.refresh(consultation)
    assert consultation.status == "in_review"


def test_a_late_question_needs_a_reason_too(app, client, held):
    derm, consultation = held
    with time_machine.travel(DUE + timedelta(hours=1), tick=False):
        login_as(client, derm)
        refused = client.post(f"/queue/{consultation.reference}/ask", data={"question": "Does it itch at night?"})
        assert refused.status_code == 422 and "Does it itch at night?" in refused.text
        sent = client.post(
            f"/queue/{consultation.reference}/ask",
            data={"question": "Does it itch at night?", "late_reason": "waited_for_photos"},
        )
    assert sent.status_code == 302
    assert first_clock(consultation).late_reason == "waited_for_photos"


def test_a_reply_in_time_is_not_asked_why_and_keeps_no_reason(app, client, held):
    derm, consultation = held
    with time_machine.travel(DUE - timedelta(seconds=1), tick=False):
        login_as(client, derm)
        page = client.get(f"/queue/{consultation.reference}")
        assert "Why is this reply late?" not in page.text
        sent = client.post(f"/queue/{consultation.reference}/answer", data={**ANSWER, "late_reason": "workload"})
    assert sent.status_code == 302
    assert first_clock(consultation).late_reason is None


def test_the_rule_refuses_a_late_reply_without_a_reason(app, held):
    derm, consultation = held
    with pytest.raises(actions.LateReasonNeeded):
        actions.answer(consultation, derm, actions.Answer("a", "b"), DUE)  # at the due moment: already late
    db.session.refresh(consultation)
    assert consultation.status == "in_review"
    late = lateness.LateExplanation(lateness.LateReason.TECHNICAL)
    actions.answer(consultation, derm, actions.Answer("a", "b"), DUE, late=late)
    assert first_clock(consultation).late_reason == "technical"


# --- Where the time went ----------------------------------------------------------------------------


def test_each_round_is_split_into_working_hours_outside_them_and_waiting_for_the_patient(app):
    derm = make_user("dermatologist", email="ruta@clinic.example")
    rota.set_weekly(derm, rota.parse_weekly("Mon-Fri 08:00-16:00"), Actor.system())
    submitted = local(2026, 11, 30, 14)  # Monday 14:00
    asked = local(2026, 12, 1, 10)  # Tuesday 10:00: 2 h on Monday + 2 h on Tuesday on duty, 16 h not
    replied = local(2026, 12, 1, 18)  # the clinic waited 8 hours for the patient
    answered = local(2026, 12, 2, 9)  # Wednesday 09:00: 1 h on duty, 14 h not
    consultation, _ = make_consultation(created_at=submitted, claimed_by=derm, status="in_review")
    actions.ask(consultation, derm, "Any fever?", asked)
    consultation.status = "in_review"
    next_round(consultation, replied, policies().response)
    db.session.commit()
    actions.answer(consultation, derm, actions.Answer("a", "b"), answered)
    times = lateness.round_times(policies().rota, submitted - timedelta(days=1), local(2026, 12, 3))
    split = [(t.round, t.within_hours, t.outside_hours, t.waiting_for_patient) for t in times]
    assert split == [
        (1, timedelta(hours=4), timedelta(hours=16), timedelta(hours=8)),
        (2, timedelta(hours=1), timedelta(hours=14), timedelta(0)),
    ]
    totals = lateness.totals(times)
    assert (totals.rounds, totals.within_hours, totals.outside_hours, totals.waiting_for_patient) == (2, 5.0, 30.0, 8.0)


def test_without_a_rota_working_hours_are_the_clinics_opening_hours(app):
    derm = make_user("dermatologist")
    submitted = local(2026, 12, 4, 18)  # Friday 18:00; open 8-20 on working days
    consultation, _ = make_consultation(created_at=submitted, claimed_by=derm, status="in_review")
    late = lateness.LateExplanation(lateness.LateReason.WORKLOAD)
    actions.answer(consultation, derm, actions.Answer("a", "b"), local(2026, 12, 7, 9), late=late)  # Monday 09:00
    (time,) = lateness.round_times(policies().rota, submitted - timedelta(days=1), local(2026, 12, 8))
    assert (time.within_hours, time.outside_hours) == (timedelta(hours=3), timedelta(hours=60))


def test_the_dashboard_reports_reasons_and_where_the_time_went(app, client, held):
    derm, consultation = held
    late = lateness.LateExplanation(lateness.LateReason.OTHER, "Lab system was down")
    actions.answer(consultation, derm, actions.Answer("a", "b"), DUE + timedelta(hours=3), late=late)
    for reason in ("workload", "workload"):
        other, _ = make_consultation(created_at=SUBMITTED, claimed_by=derm, status="in_review")
        actions.answer(
            other, derm, actions.Answer("a", "b"), DUE + timedelta(hours=1), late=lateness.explanation(reason, "")
        )
    quick, _ = make_consultation(created_at=SUBMITTED, claimed_by=derm, status="in_review")
    actions.answer(quick, derm, actions.Answer("a", "b"), SUBMITTED + timedelta(hours=2))
    staff = make_user("staff")
    with time_machine.travel(DUE + timedelta(days=1), tick=False):
        login_as(client, staff)
        page = client.get("/staff/").text
    reasons = page[page.index('id="late-replies"') : page.index('id="time-split"')]
    assert reasons.index("Workload") < reasons.index("Other")  # most frequent first
    assert ">2</td>" in reasons and "Lab system was down" in reasons and consultation.reference in reasons
    split = page[page.index('id="time-split"') : page.index('id="outbox"')]
    # Four rounds since Monday 10:00, none in a rota (none is set): opening hours 8-20 count.
    assert "Last 7 days" in split and quick.reference in split
    assert split.count('class="round-late"') == 3


def test_the_csv_export_carries_the_reasons_and_where_the_time_went(app, client, held):
    derm, consultation = held
    late = lateness.LateExplanation(lateness.LateReason.OTHER, "Lab system was down")
    actions.answer(consultation, derm, actions.Answer("a", "b"), DUE + timedelta(hours=3), late=late)
    other, _ = make_consultation(created_at=SUBMITTED, claimed_by=derm, status="in_review")
    actions.answer(
        other, derm, actions.Answer("a", "b"), DUE + timedelta(hours=1), late=lateness.explanation("workload", "")
    )
    with time_machine.travel(DUE + timedelta(days=1), tick=False):
        login_as(client, make_user("staff"))
        text = client.get("/staff/export.csv").text
    table = {tuple(row[:2]): row[4] for row in csv.reader(io.StringIO(text))}
    assert table[("late_replies_workload", "last 30 days")] == "1"
    assert table[("late_replies_other", "last 30 days")] == "1"
    assert table[("rounds_started", "last 7 days")] == "2"
    # Monday 10:00 to Tuesday 11:00 and 13:00, opening hours 8-20 (no rota): open 10 + 3 and 10 + 5
    # hours, closed the 12 night hours each
    assert table[("patient_waiting_on_duty_hours", "last 7 days")] == "28.0"
    assert table[("patient_waiting_off_duty_hours", "last 7 days")] == "24.0"
    assert table[("clinic_waiting_for_patient_hours", "last 30 days")] == "0.0"
    assert "Lab system was down" not in text  # free text may name a patient: it stays on the dashboard
