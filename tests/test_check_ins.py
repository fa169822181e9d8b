"""Check back in N weeks: set with an answer, emailed exactly once when due (with time moved, and with
several workers), answered as a new round of the same request with new photos in the same views,
shown before and after to the dermatologist, and turned off by the patient."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.cli.worker import run_once
from app.consultations import check_ins
from app.consultations import staff_actions as actions
from app.extensions import db
from app.models import CheckIn, ConsultationRequest, OutboundEmail
from app.outbox import render
from app.runtime import policies
from tests.conftest import build_app, empty_database, reset_database
from tests.factories import login_as, make_consultation, make_user, photo_bytes

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ANSWER = actions.Answer("Mild hand eczema.", "Emollient twice a day; hydrocortisone 1% on flares.")


@pytest.fixture
def derm(app):
    return make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta")


def answered_with_check_in(derm, weeks=6, **fields):
    consultation, token = make_consultation(created_at=T0, **fields)
    consultation.photos.extend([])
    actions.claim(consultation, derm, T0)
    actions.answer(
        consultation, derm, ANSWER, T0 + timedelta(hours=2), check_in_weeks=weeks, check_in_policy=policies().check_ins
    )
    return consultation, token


def reload(request_id: int) -> ConsultationRequest:
    """The request afresh: the worker's round ends its database session."""
    return db.session.get(ConsultationRequest, request_id)


def check_in_emails() -> list[OutboundEmail]:
    return list(db.session.execute(select(OutboundEmail).where(OutboundEmail.template == "check_in_due")).scalars())


def test_an_answer_can_plan_a_check_in_shown_on_the_private_page(client, derm):
    consultation, token = answered_with_check_in(derm, weeks=6)
    planned = consultation.check_ins[0]
    assert planned.weeks == 6 and planned.due_at == T0 + timedelta(hours=2, weeks=6)
    assert planned.set_by_id == derm.id and planned.answer_id == consultation.messages[0].id
    page = client.get(f"/c/{token}").get_data(as_text=True)
    assert "We will check in with you" in page and 'id="check-in-off"' in page


@pytest.mark.parametrize("weeks", [1, 13])
def test_a_check_in_outside_2_to_12_weeks_is_refused_and_nothing_is_answered(derm, weeks):
    consultation, _ = make_consultation(created_at=T0)
    actions.claim(consultation, derm, T0)
    with pytest.raises(actions.ActionRefused):
        actions.answer(consultation, derm, ANSWER, T0, check_in_weeks=weeks, check_in_policy=policies().check_ins)
    db.session.refresh(consultation)
    assert consultation.status == "in_review" and consultation.check_ins == []


def test_the_check_in_form_field_reaches_the_rule(client, derm):
    consultation, _ = make_consultation(created_at=T0)
    actions.claim(consultation, derm, T0)
    form = {"assessment": "Eczema.", "treatment": "Emollient.", "check_in_weeks": "4"}
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):  # in time: no late reason asked
        login_as(client, derm)
        assert client.post(f"/queue/{consultation.reference}/answer", data=form).status_code == 302
    db.session.refresh(consultation)
    assert [c.weeks for c in consultation.check_ins] == [4]


def test_the_check_in_email_goes_exactly_once_when_it_is_due_whoever_runs(app, derm):
    consultation, _ = answered_with_check_in(derm, weeks=2)
    due, check_in_id = consultation.check_ins[0].due_at, consultation.check_ins[0].id
    with time_machine.travel(due - timedelta(minutes=1), tick=False):
        assert check_ins.send_due(policies(), due - timedelta(minutes=1)) == {"check_ins": 0}
        assert check_in_emails() == []
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        assert check_ins.send_due(policies(), due + timedelta(minutes=1)) == {"check_ins": 1}
        run_once()  # the worker's round: nothing left to send
        assert check_ins.send_due(policies(), due + timedelta(minutes=2)) == {"check_ins": 0}
    emails = check_in_emails()
    assert len(emails) == 1 and emails[0].dedupe_key == f"check-in:{check_in_id}"
    assert emails[0].recipient == "patient@example.com"


def test_two_workers_on_one_database_send_it_once(tmp_path):
    """Two apps (two worker processes) on one SQLite file, each running its round at the due time."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    first = build_app(tmp_path, SQLALCHEMY_DATABASE_URI=url)
    second = build_app(tmp_path, SQLALCHEMY_DATABASE_URI=url)
    reset_database(first)
    try:
        with first.app_context():
            derm = make_user("dermatologist")
            consultation, _ = answered_with_check_in(derm, weeks=3)
            due = consultation.check_ins[0].due_at
            db.session.remove()
        with time_machine.travel(due + timedelta(hours=1), tick=False):
            for worker in (first, second, first):
                with worker.app_context():
                    check_ins.send_due(worker.extensions["clinic_policies"], due + timedelta(hours=1))
                    db.session.remove()
        with second.app_context():
            assert len(check_in_emails()) == 1
            db.session.remove()
    finally:
        empty_database(first)
        empty_database(second)


def test_the_patient_answers_the_check_in_as_a_new_round_with_new_photos(client, app, derm):
    consultation, _ = answered_with_check_in(derm, weeks=4, urgent=True, triage_level="today", response_target_hours=4)
    # The first photos were sent in guided slots: area 1, hands, far and close-up.
    first_far = _stored_photo(consultation, area=1, body_site="hands", view="far")
    _stored_photo(consultation, area=1, body_site="hands", view="close")
    due, request_id, first_far_key = consultation.check_ins[0].due_at, consultation.id, first_far.storage_key
    with time_machine.travel(due + timedelta(minutes=5), tick=False):
        run_once()
        email = check_in_emails()[0]
    _subject, text, _html = render(email)
    assert "Hand eczema" not in text and "eczema" not in text.lower()  # no health data in the email
    link = re.search(r"http://localhost(/c/[\w-]+)", text).group(1)
    replied_at = due + timedelta(days=3)
    with time_machine.travel(replied_at, tick=False):
        page = client.get(link).get_data(as_text=True)
        assert "How is it going?" in page and 'name="photo-1-far"' in page and 'name="progress"' in page
        response = client.post(
            f"{link}/reply",
            data={
                "body": "Much better, only a little dry now.",
                "progress": "better",
                "photo-1-far": (io.BytesIO(photo_bytes(size=(900, 700))), "now-far.jpg"),
                "photo-1-close": (io.BytesIO(photo_bytes(size=(900, 700))), "now-close.jpg"),
            },
            content_type="multipart/form-data",
        )
    assert response.status_code == 303
    consultation = reload(request_id)
    check_in = consultation.check_ins[0]
    assert check_in.reply_id is not None and check_in.progress == "better"
    assert consultation.status == "in_review" and consultation.response_round == 2
    # Weeks later the new round is routine: the clinic's 24 hours, not the urgent 4.
    assert not consultation.urgent and consultation.response_target_hours is None
    assert consultation.due_at == replied_at + timedelta(hours=24)
    new = sorted((p.area, p.body_site, p.view) for p in consultation.photos if p.message_id == check_in.reply_id)
    assert new == [(1, "hands", "close"), (1, "hands", "far")]
    with time_machine.travel(replied_at + timedelta(minutes=1), tick=False):
        login_as(client, db.session.merge(derm))
        detail = client.get(f"/queue/{consultation.reference}").get_data(as_text=True)
    assert "Before and after" in detail and "Reply to the 4-week check-in." in detail and "better" in detail
    assert first_far_key in detail.split("Before and after")[1]  # the old far view beside the new


def _stored_photo(consultation, **slot):
    from tests.factories import make_photo

    photo = make_photo(consultation)
    for name, value in slot.items():
        setattr(photo, name, value)
    db.session.commit()
    return photo


def test_the_patient_can_turn_the_check_in_off_and_then_no_email_goes(client, derm):
    consultation, token = answered_with_check_in(derm, weeks=2)
    assert client.post(f"/c/{token}/check-in/off").status_code == 303
    page = client.get(f"/c/{token}").get_data(as_text=True)
    assert "We will not send you the check-in email." in page and 'id="check-in-off"' not in page
    request_id = consultation.id
    with time_machine.travel(T0 + timedelta(weeks=3), tick=False):
        run_once()
    assert check_in_emails() == []
    assert reload(request_id).check_ins[0].cancelled_at is not None
    again = client.post(f"/c/{token}/check-in/off", follow_redirects=True).get_data(as_text=True)
    assert "There is no check-in email to turn off." in again


def test_a_closed_request_gets_no_check_in(client, derm):
    consultation, token = answered_with_check_in(derm, weeks=2)
    request_id = consultation.id
    assert client.post(f"/c/{token}/resolve").status_code == 303
    with time_machine.travel(T0 + timedelta(weeks=3), tick=False):
        run_once()
    assert check_in_emails() == [] and reload(request_id).check_ins[0].cancelled_at is not None


def test_a_new_answer_with_a_check_in_replaces_the_one_waiting(derm):
    consultation, _ = answered_with_check_in(derm, weeks=6)
    consultation.status = "in_review"  # the patient followed up, and the dermatologist answers again
    db.session.commit()
    actions.answer(
        consultation, derm, ANSWER, T0 + timedelta(days=1), check_in_weeks=3, check_in_policy=policies().check_ins
    )
    waiting = db.session.execute(select(CheckIn).where(CheckIn.cancelled_at.is_(None))).scalars().all()
    assert [c.weeks for c in waiting] == [3]
    assert db.session.execute(select(ConsultationRequest)).scalar_one().status == "answered"
