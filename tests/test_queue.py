"""The review queue and the request page: access, ordering, filters, search, pages, one query
per page, the claim race, claim/release/reassign, answers, questions, notes, photos and audit."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from app.consultations import staff_actions as actions
from app.consultations.clock import ResponsePolicy, clock_state, time_left
from app.extensions import db
from app.links import resolve
from app.models import (
    ANSWERED,
    AWAITING_PATIENT,
    IN_REVIEW,
    SUBMITTED,
    AuditEvent,
    ConsultationRequest,
    Message,
    OutboundEmail,
    ResponseClock,
    User,
    find_by_token,
)
from app.queue.listing import normalise_reference, queue_page
from app.runtime import policies
from app.timeutil import utcnow
from tests.conftest import ON_POSTGRES, build_app, empty_database, reset_database
from tests.factories import (
    login_as,
    make_consultation,
    make_photo,
    make_user,
)

# --- helpers that read like what people do -------------------------------------------------


def open_queue(client, **params) -> str:
    response = client.get("/queue/", query_string=params)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def references_on(page: str) -> list[str]:
    return re.findall(r'class="reference" href="/queue/(DRM-[A-Z0-9]{6})"', page)


def claim(client, consultation):
    return client.post(f"/queue/{consultation.reference}/claim", follow_redirects=True)


def release(client, consultation):
    return client.post(f"/queue/{consultation.reference}/release", follow_redirects=True)


def send_answer(client, consultation, **fields):
    data = {
        "assessment": "Looks like mild hand eczema.",
        "treatment": "Emollient cream twice a day.",
        "prescription_note": "",
        "follow_up": "Come back in four weeks if no better.",
    }
    data.update(fields)
    return client.post(f"/queue/{consultation.reference}/answer", data=data)


def ask_question(client, consultation, question="Could you send a close-up of the left palm?"):
    return client.post(f"/queue/{consultation.reference}/ask", data={"question": question})


def add_note(client, consultation, note="Discussed with Dr Petraitis; likely eczema."):
    return client.post(f"/queue/{consultation.reference}/note", data={"note": note})


def audit_actions(consultation) -> list[str]:
    return list(
        db.session.execute(
            select(AuditEvent.action).where(AuditEvent.request_id == consultation.id).order_by(AuditEvent.id)
        ).scalars()
    )


def outbox_for(consultation) -> list[OutboundEmail]:
    return list(
        db.session.execute(
            select(OutboundEmail).where(OutboundEmail.request_id == consultation.id).order_by(OutboundEmail.id)
        ).scalars()
    )


def reload(consultation) -> ConsultationRequest:
    db.session.expire_all()
    return db.session.get(ConsultationRequest, consultation.id)


@pytest.fixture
def derm(app):
    return make_user("dermatologist", name="Dr Rūta Kazlauskienė")


@pytest.fixture
def signed_in_derm(client, derm):
    login_as(client, derm)
    return derm


# --- the clock helpers in app.sla ----------------------------------------------------------


def test_clock_state_on_track_at_risk_overdue_and_stopped(app):
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    settings = ResponsePolicy(target_hours=24, warning_hours=4)
    assert clock_state(now + timedelta(hours=5), now, settings) == "on_track"
    assert clock_state(now + timedelta(hours=4), now, settings) == "at_risk"
    assert clock_state(now + timedelta(minutes=1), now, settings) == "at_risk"
    assert clock_state(now, now, settings) == "overdue"
    assert clock_state(now - timedelta(hours=3), now, settings) == "overdue"
    assert clock_state(None, now, settings) == "stopped"
    assert time_left(now + timedelta(hours=2), now) == timedelta(hours=2)
    assert time_left(now - timedelta(minutes=5), now) == timedelta(minutes=-5)
    assert time_left(None, now) is None


# --- access --------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in_for_queue_request_and_photos(client, app):
    consultation, _ = make_consultation()
    photo = make_photo(consultation)
    for path in (
        "/queue/",
        f"/queue/{consultation.reference}",
        f"/queue/{consultation.reference}/photos/{photo.storage_key}",
        f"/queue/{consultation.reference}/photos/{photo.thumbnail_key}",
        f"/queue/{consultation.reference}/audit",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.location.startswith("/login"), path
    assert client.post(f"/queue/{consultation.reference}/claim").status_code == 302
    assert audit_actions(consultation) == []


def test_a_patient_private_link_does_not_open_the_queue(client, app):
    consultation, token = make_consultation()
    photo = make_photo(consultation)
    client.get(f"/c/{token}")  # whatever the patient page shows, it must not sign anyone in
    assert client.get("/queue/").status_code == 302
    assert client.get(f"/queue/{consultation.reference}").status_code == 302
    assert client.get(f"/queue/{consultation.reference}/photos/{photo.storage_key}").status_code == 302


def test_staff_cannot_claim_or_answer_and_dermatologists_cannot_read_the_audit_page(app, client, derm):
    staff = make_user("staff")
    consultation, _ = make_consultation()
    login_as(client, staff)
    assert client.get(f"/queue/{consultation.reference}").status_code == 200
    assert client.post(f"/queue/{consultation.reference}/claim").status_code == 403
    assert send_answer(client, consultation).status_code == 403
    assert ask_question(client, consultation).status_code == 403
    assert client.get(f"/queue/{consultation.reference}/audit").status_code == 200
    client.post("/logout")
    login_as(client, derm)
    assert client.get(f"/queue/{consultation.reference}/audit").status_code == 403
    assert client.post(f"/queue/{consultation.reference}/reassign", data={"dermatologist": derm.id}).status_code == 403


def test_unknown_reference_is_a_404(client, signed_in_derm):
    assert client.get("/queue/DRM-ZZZZZZ").status_code == 404


# --- the list: order, filters, search, pages, one query ------------------------------------


def test_open_requests_most_urgent_first_and_requests_without_a_clock_last(client, signed_in_derm):
    now = utcnow()
    newest, _ = make_consultation(created_at=now - timedelta(hours=1))
    oldest, _ = make_consultation(created_at=now - timedelta(hours=23))
    middle, _ = make_consultation(created_at=now - timedelta(hours=10))
    no_clock, _ = make_consultation(created_at=now - timedelta(hours=30))
    no_clock.due_at = None
    no_clock.clock_started_at = None
    waiting, _ = make_consultation(created_at=now - timedelta(hours=2), status=AWAITING_PATIENT)
    db.session.commit()
    page = open_queue(client)
    assert references_on(page) == [oldest.reference, middle.reference, newest.reference, no_clock.reference]
    assert waiting.reference not in page
    assert "badge-at_risk" in page and "badge-on_track" in page


def test_rows_show_age_countdown_condition_photos_and_holder(client, signed_in_derm):
    other = make_user("dermatologist", name="Dr Jonas Petraitis")
    overdue, _ = make_consultation(
        created_at=utcnow() - timedelta(hours=26), condition_slug="psoriasis", claimed_by=other
    )
    for _ in range(3):
        make_photo(overdue)
    page = open_queue(client)
    row = page[page.index(overdue.reference) :].split("</tr>")[0]
    assert "badge-overdue" in row and "2 h 0 min late" in row
    assert "Psoriasis" in row
    assert 'data-label="Photos">3<' in row
    assert "Dr Jonas Petraitis" in row
    assert "26 hours ago" in row


def test_filters_unclaimed_mine_awaiting_answered(client, signed_in_derm):
    other = make_user("dermatologist")
    unclaimed, _ = make_consultation()
    mine, _ = make_consultation(claimed_by=signed_in_derm, status=IN_REVIEW)
    theirs, _ = make_consultation(claimed_by=other, status=IN_REVIEW)
    waiting, _ = make_consultation(claimed_by=signed_in_derm, status=AWAITING_PATIENT)
    answered, _ = make_consultation(claimed_by=other, status=ANSWERED, answered_at=utcnow())

    assert set(references_on(open_queue(client))) == {unclaimed.reference, mine.reference, theirs.reference}
    assert references_on(open_queue(client, filter="unclaimed")) == [unclaimed.reference]
    assert set(references_on(open_queue(client, filter="mine"))) == {mine.reference, waiting.reference}
    assert references_on(open_queue(client, filter="awaiting")) == [waiting.reference]
    assert references_on(open_queue(client, filter="answered")) == [answered.reference]
    assert set(references_on(open_queue(client, filter="nonsense"))) == {
        unclaimed.reference,
        mine.reference,
        theirs.reference,
    }


@pytest.mark.parametrize("typed", ["{ref}", "{lower}", "{bare}", "{bare_lower}", " {spaced} "])
def test_a_whole_reference_however_typed_opens_that_request(client, signed_in_derm, typed):
    wanted, _ = make_consultation(status=ANSWERED)  # search looks beyond the open requests
    make_consultation()
    ref = wanted.reference
    text = typed.format(ref=ref, lower=ref.lower(), bare=ref[4:], bare_lower=ref[4:].lower(), spaced=f"drm {ref[4:]}")
    response = client.get("/queue/", query_string={"q": text})
    assert response.status_code == 302 and response.location == f"/queue/{ref}"


def test_part_of_a_reference_lists_the_matches(client, signed_in_derm):
    wanted, _ = make_consultation()
    make_consultation()
    found = references_on(open_queue(client, q=wanted.reference[:7].lower()))
    assert wanted.reference in found
    assert all(ref.startswith(wanted.reference[:7]) for ref in found)


def test_search_with_no_match_says_so(client, signed_in_derm):
    make_consultation()
    page = open_queue(client, q="DRM-ZZZZZZ")
    assert references_on(page) == []
    assert "No request has a reference starting with" in page


def test_normalise_reference():
    assert normalise_reference("drm-7k3q9x") == "DRM-7K3Q9X"
    assert normalise_reference("7K3Q9X") == "DRM-7K3Q9X"
    assert normalise_reference("DRM 7k3") == "DRM-7K3"
    assert normalise_reference("%_'") == "DRM-"


def test_queue_is_paginated_25_per_page(client, signed_in_derm):
    start = utcnow() - timedelta(hours=20)
    made = [make_consultation(created_at=start + timedelta(minutes=i))[0].reference for i in range(30)]
    first = open_queue(client)
    assert references_on(first) == made[:25]
    assert 'rel="next" href="/queue/?page=2"' in first
    second = open_queue(client, page=2)
    assert references_on(second) == made[25:]
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert references_on(open_queue(client, page=9)) == []
    assert references_on(open_queue(client, page="x")) == made[:25]


def count_statements(action) -> int:
    statements = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    return len(statements)


def test_the_queue_page_costs_the_same_number_of_queries_for_2_or_25_rows(client, signed_in_derm):
    holders = [make_user("dermatologist") for _ in range(3)]
    for i in range(2):
        consultation, _ = make_consultation(claimed_by=holders[i % 3])
        make_photo(consultation)
    db.session.expire_all()  # the test shares the app's session: start each count from cold
    small = count_statements(lambda: open_queue(client))
    for i in range(23):
        consultation, _ = make_consultation(claimed_by=holders[i % 3] if i % 2 else None)
        make_photo(consultation)
        make_photo(consultation)
    assert len(references_on(open_queue(client))) == 25
    db.session.expire_all()
    large = count_statements(lambda: open_queue(client))
    assert large == small
    # The signed-in user, the page's rows, the tab counts, and for "on duty now and next" the
    # dermatologists and whether a rota is set (two more to read one): nothing per row.
    assert small <= 6


def test_queue_page_rule_returns_photo_counts_and_holder_names(app, derm):
    consultation, _ = make_consultation(claimed_by=derm)
    make_photo(consultation)
    make_photo(consultation)
    page = queue_page("open", derm.id)
    assert [(r.reference, r.photo_count, r.claimed_by_name) for r in page.rows] == [
        (consultation.reference, 2, derm.name)
    ]
    assert not page.has_next and not page.has_prev


# --- the request page ----------------------------------------------------------------------


def test_request_page_shows_everything_the_patient_sent_and_is_audited(client, signed_in_derm):
    consultation, _ = make_consultation(
        patient_name="Ona Jonaitė",
        patient_phone="+37060000000",
        medications="Cetirizine 10 mg",
        allergies="Penicillin",
        history=["eczema"],
        history_notes="Eczema as a child",
        description="Red <b>itchy</b> patches\non both palms.",
    )
    photo = make_photo(consultation)
    response = client.get(f"/queue/{consultation.reference}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for text in (
        "Ona Jonaitė",
        "+37060000000",
        "Cetirizine 10 mg",
        "Penicillin",
        "Eczema as a child",
        "Hands or palms",  # the patient's answers in words, not their codes
        "Itching",
        "patient@example.com",
        "Acne",
    ):
        assert text in page, text
    assert "Red &lt;b&gt;itchy&lt;/b&gt; patches\non both palms." in page  # escaped, line breaks kept
    assert f"/queue/{consultation.reference}/photos/{photo.storage_key}" in page
    assert audit_actions(consultation) == ["viewed"]
    client.get(f"/queue/{consultation.reference.lower()}")
    assert audit_actions(consultation) == ["viewed", "viewed"]
    event = db.session.execute(select(AuditEvent).where(AuditEvent.request_id == consultation.id)).scalars().first()
    assert event.actor_user_id == signed_in_derm.id and event.ip == "127.0.0.1"


def test_photos_are_served_to_staff_uncached_and_audited(client, signed_in_derm):
    consultation, _ = make_consultation()
    photo = make_photo(consultation, size=(80, 60))
    other, _ = make_consultation()
    response = client.get(f"/queue/{consultation.reference}/photos/{photo.storage_key}")
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.data[:3] == b"\xff\xd8\xff"
    assert "no-store" in response.headers["Cache-Control"]
    thumb = client.get(f"/queue/{consultation.reference}/photos/{photo.thumbnail_key}")
    assert thumb.status_code == 200 and len(thumb.data) < len(response.data)
    assert audit_actions(consultation) == ["photo_viewed", "photo_viewed"]
    # A photo is only reachable under its own request, and keys outside storage's pattern are refused.
    assert client.get(f"/queue/{other.reference}/photos/{photo.storage_key}").status_code == 404
    assert client.get(f"/queue/{consultation.reference}/photos/..%2Fsecret.jpg").status_code == 404
    assert audit_actions(other) == []


def test_staff_can_read_the_audit_log_of_a_request(client, app, derm):
    staff = make_user("staff", name="Staff Member Aistė")
    consultation, _ = make_consultation()
    login_as(client, derm)
    client.get(f"/queue/{consultation.reference}")
    claim(client, consultation)
    client.post("/logout")
    login_as(client, staff)
    page = client.get(f"/queue/{consultation.reference}/audit").get_data(as_text=True)
    assert derm.name in page
    assert "claimed" in page and "viewed" in page


# --- claim, release, reassign --------------------------------------------------------------


def test_claim_moves_the_request_into_review_and_is_audited(client, signed_in_derm):
    consultation, _ = make_consultation()
    page = claim(client, consultation).get_data(as_text=True)
    assert "You have claimed this request." in page
    consultation = reload(consultation)
    assert consultation.status == IN_REVIEW
    assert consultation.claimed_by_id == signed_in_derm.id
    assert consultation.claimed_at is not None
    assert "claimed" in audit_actions(consultation)


def test_the_second_claim_gets_a_clear_message(app, client, derm):
    first = make_user("dermatologist", name="Dr Jonas Petraitis")
    consultation, _ = make_consultation()
    actions.claim(consultation, first, utcnow())
    db.session.commit()
    login_as(client, derm)
    page = claim(client, consultation).get_data(as_text=True)
    assert "Dr Jonas Petraitis claimed this request first." in page
    assert reload(consultation).claimed_by_id == first.id
    assert audit_actions(consultation).count("claimed") == 1


def test_release_returns_the_request_to_the_queue(client, signed_in_derm):
    consultation, _ = make_consultation()
    claim(client, consultation)
    page = release(client, consultation).get_data(as_text=True)
    assert "The request is back in the queue." in page
    consultation = reload(consultation)
    assert consultation.status == SUBMITTED and consultation.claimed_by_id is None and consultation.claimed_at is None
    assert audit_actions(consultation)[-2:] == ["released", "viewed"]
    assert consultation.reference in open_queue(client, filter="unclaimed")


def test_a_dermatologist_cannot_release_a_colleagues_request(app, client, derm):
    other = make_user("dermatologist")
    consultation, _ = make_consultation(claimed_by=other, status=IN_REVIEW)
    login_as(client, derm)
    page = release(client, consultation).get_data(as_text=True)
    assert "Your role cannot do this." in page
    assert reload(consultation).claimed_by_id == other.id


def test_releasing_while_waiting_for_the_patient_keeps_that_status(app, derm):
    consultation, _ = make_consultation()
    actions.claim(consultation, derm, utcnow())
    actions.ask(consultation, derm, "How long has it itched?", utcnow())
    actions.release(consultation, derm, utcnow())
    db.session.commit()
    assert reload(consultation).status == AWAITING_PATIENT
    assert reload(consultation).claimed_by_id is None


def test_staff_reassign_a_request_to_another_dermatologist(app, client, derm):
    staff = make_user("staff")
    other = make_user("dermatologist", name="Dr Jonas Petraitis")
    retired = make_user("dermatologist", active=False)
    consultation, _ = make_consultation(claimed_by=derm, status=IN_REVIEW)
    login_as(client, staff)
    page = client.get(f"/queue/{consultation.reference}").get_data(as_text=True)
    assert f'<option value="{other.id}">Dr Jonas Petraitis</option>' in page
    assert f'value="{retired.id}"' not in page
    response = client.post(
        f"/queue/{consultation.reference}/reassign", data={"dermatologist": other.id}, follow_redirects=True
    )
    assert "The request now belongs to Dr Jonas Petraitis." in response.get_data(as_text=True)
    assert reload(consultation).claimed_by_id == other.id
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "reassigned")).scalar_one()
    assert event.detail == f"user {derm.id} -> user {other.id}" and event.actor_user_id == staff.id
    # A staff member may also take a request away and put it back in the queue.
    release(client, consultation)
    assert reload(consultation).claimed_by_id is None and reload(consultation).status == SUBMITTED


def test_reassign_refuses_someone_who_is_not_an_active_dermatologist(app, derm):
    staff = make_user("staff")
    consultation, _ = make_consultation()
    with pytest.raises(actions.ActionRefused):
        actions.reassign(consultation, staff, staff, utcnow())
    with pytest.raises(actions.ActionRefused):
        actions.reassign(consultation, derm, derm, utcnow())  # dermatologists do not reassign


def _claim_in_thread(app, consultation_id: int, user_id: int, barrier: threading.Barrier, results: list) -> None:
    with app.app_context():
        consultation = db.session.get(ConsultationRequest, consultation_id)
        user = db.session.get(User, user_id)
        barrier.wait()
        try:
            actions.claim(consultation, user, utcnow())
            db.session.commit()
            results.append(("won", user_id))
        except actions.ActionRefused:
            db.session.rollback()
            results.append(("lost", user_id))
        except Exception as error:  # a database error is a failed test, not a lost claim
            db.session.rollback()
            results.append(("error", repr(error)))
        finally:
            db.session.remove()


def _race(app, rounds: int = 8) -> None:
    """Two dermatologists claim the same request at the same moment, several times over."""
    with app.app_context():
        first, second = make_user("dermatologist"), make_user("dermatologist")
        ids = [make_consultation()[0].id for _ in range(rounds)]
        user_ids = (first.id, second.id)
        db.session.remove()
    for consultation_id in ids:
        barrier, results = threading.Barrier(2), []
        threads = [
            threading.Thread(target=_claim_in_thread, args=(app, consultation_id, uid, barrier, results))
            for uid in user_ids
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcome for outcome, _ in results) == ["lost", "won"], results
        winner = next(uid for outcome, uid in results if outcome == "won")
        with app.app_context():
            stored = db.session.get(ConsultationRequest, consultation_id)
            assert stored.claimed_by_id == winner and stored.status == IN_REVIEW
            claims = db.session.execute(
                select(AuditEvent).where(AuditEvent.request_id == consultation_id, AuditEvent.action == "claimed")
            ).scalars()
            assert [event.actor_user_id for event in claims] == [winner]
            db.session.remove()


def test_exactly_one_of_two_simultaneous_claims_wins_on_a_sqlite_file(tmp_path):
    app = build_app(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'race.sqlite'}")
    reset_database(app)
    try:
        _race(app)
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="needs TEST_DATABASE_URL pointing at PostgreSQL")
def test_exactly_one_of_two_simultaneous_claims_wins_on_postgresql(app):
    db.session.remove()
    _race(app)


# --- answer, question, note ---------------------------------------------------------------


def test_answer_stops_the_clock_emails_the_patient_and_is_audited(client, signed_in_derm):
    consultation, _ = make_consultation(email="ona@example.com", description="Secret rash details")
    claim(client, consultation)
    response = send_answer(client, consultation, prescription_note="Hydrocortisone 1% for a week.")
    assert response.status_code == 302 and response.location == f"/queue/{consultation.reference}"

    consultation = reload(consultation)
    assert consultation.status == ANSWERED
    assert consultation.answered_at is not None and consultation.first_response_at is not None
    assert consultation.due_at is None and consultation.clock_started_at is None
    clock = db.session.execute(select(ResponseClock).where(ResponseClock.request_id == consultation.id)).scalar_one()
    assert clock.stopped_at is not None and clock.stopped_by_id == signed_in_derm.id

    (message,) = consultation.messages
    assert (message.kind, message.author_id) == ("answer", signed_in_derm.id)
    assert message.assessment == "Looks like mild hand eczema."
    assert message.prescription_note == "Hydrocortisone 1% for a week."
    assert message.visible_to_patient

    (email,) = outbox_for(consultation)
    assert email.recipient == "ona@example.com" and email.template == "patient_reply_ready"
    assert email.dedupe_key == f"replied:{message.id}"
    stored = json.dumps(email.context) + (email.sealed_context or "")
    for secret in ("eczema", "Emollient", "Hydrocortisone", "Secret rash", "Test Patient"):
        assert secret not in stored
    assert resolve(email.context["lost_link"]) == "http://localhost/consultation/link"
    assert audit_actions(consultation) == ["claimed", "viewed", "answered"]

    page = client.get(response.location).get_data(as_text=True)
    assert "Looks like mild hand eczema." in page and "Send the answer" not in page


def test_a_double_clicked_answer_is_sent_once(client, signed_in_derm):
    consultation, _ = make_consultation()
    claim(client, consultation)
    assert send_answer(client, consultation).status_code == 302
    again = send_answer(client, consultation)
    assert again.status_code == 409
    assert "already answered" in again.get_data(as_text=True)
    assert len(reload(consultation).messages) == 1
    assert len(outbox_for(consultation)) == 1


def test_an_answer_needs_assessment_and_treatment(client, signed_in_derm):
    consultation, _ = make_consultation()
    claim(client, consultation)
    response = send_answer(client, consultation, assessment="  ", treatment="", follow_up="Keep this text")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Write your assessment." in page and "Write the recommended treatment" in page
    assert "Keep this text" in page
    assert reload(consultation).status == IN_REVIEW
    assert reload(consultation).messages == [] and outbox_for(consultation) == []


def test_answering_a_request_you_no_longer_hold_keeps_your_text(app, client, derm):
    staff = make_user("staff")
    other = make_user("dermatologist")
    consultation, _ = make_consultation()
    login_as(client, derm)
    claim(client, consultation)
    actions.reassign(reload(consultation), other, staff, utcnow())
    db.session.commit()
    response = send_answer(client, consultation, assessment="My careful assessment text")
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "You no longer hold this request" in page and "My careful assessment text" in page
    assert reload(consultation).status == IN_REVIEW and reload(consultation).messages == []
    assert outbox_for(consultation) == []


def test_you_must_claim_before_answering(client, signed_in_derm):
    consultation, _ = make_consultation()
    response = send_answer(client, consultation)
    assert response.status_code == 409
    assert reload(consultation).status == SUBMITTED and outbox_for(consultation) == []


def test_a_question_waits_for_the_patient_and_emails_them(client, signed_in_derm):
    consultation, _ = make_consultation()
    claim(client, consultation)
    response = ask_question(client, consultation)
    assert response.status_code == 302
    consultation = reload(consultation)
    assert consultation.status == AWAITING_PATIENT and consultation.due_at is None
    assert consultation.first_response_at is not None
    (message,) = consultation.messages
    assert message.kind == "question" and message.body == "Could you send a close-up of the left palm?"
    (email,) = outbox_for(consultation)
    assert email.template == "patient_reply_ready" and email.context["is_question"] is True
    assert "asked" in audit_actions(consultation)
    assert consultation.reference in open_queue(client, filter="awaiting")
    # Waiting for the patient, the dermatologist may still give a final answer.
    assert send_answer(client, consultation).status_code == 302
    assert reload(consultation).status == ANSWERED
    assert [e.template for e in outbox_for(consultation)] == ["patient_reply_ready", "patient_reply_ready"]


def test_internal_notes_stay_internal(client, app, signed_in_derm):
    consultation, token = make_consultation()
    assert add_note(client, consultation, "Internal only: query melanoma, discuss Friday").status_code == 302
    (note,) = reload(consultation).messages
    assert note.kind == "internal_note" and not note.visible_to_patient
    assert outbox_for(consultation) == []
    assert audit_actions(consultation)[-1] == "noted"
    page = client.get(f"/queue/{consultation.reference}").get_data(as_text=True)
    assert "Internal note · not visible to the patient" in page
    claim(client, consultation)
    send_answer(client, consultation, assessment="Benign seborrhoeic keratosis.")
    # The patient's own page shows the answer and never the note.
    patient_page = app.test_client().get(f"/c/{token}")
    assert patient_page.status_code == 200
    text = patient_page.get_data(as_text=True)
    assert "Benign seborrhoeic keratosis." in text
    assert "query melanoma" not in text and "Internal" not in text


def test_an_empty_note_is_refused_next_to_the_field(client, signed_in_derm):
    consultation, _ = make_consultation()
    response = add_note(client, consultation, "")
    assert response.status_code == 422
    assert "Write the note." in response.get_data(as_text=True)
    assert reload(consultation).messages == []


# --- emails for replies --------------------------------------------------------------------


def test_patient_replied_alerts_the_holder_or_else_the_team(app, derm):
    from app.consultations import notify

    held, _ = make_consultation(claimed_by=derm, status=AWAITING_PATIENT)
    reply = Message(kind="patient_reply", body="Here is the photo", request_id=held.id)
    db.session.add(reply)
    db.session.flush()
    notify.patient_replied(held, policies().alerts)
    notify.patient_replied(held, policies().alerts)  # the same reply never alerts twice
    db.session.commit()
    (email,) = outbox_for(held)
    assert (email.recipient, email.template) == (derm.email, "patient_replied")
    assert resolve(email.context["link"]) == f"http://localhost/queue/{held.reference}"
    assert "photo" not in json.dumps(email.context).lower()

    free, _ = make_consultation(status=SUBMITTED)
    db.session.add(Message(kind="patient_reply", body="More details", request_id=free.id))
    db.session.flush()
    notify.patient_replied(free, policies().alerts)
    db.session.commit()
    assert {e.recipient for e in outbox_for(free)} == {"alerts@clinic.example", derm.email}


def test_reply_emails_render_with_a_subject_and_no_health_data(client, signed_in_derm):
    from app.outbox import render

    consultation, _ = make_consultation(description="Secret rash details")
    claim(client, consultation)
    ask_question(client, consultation, "Does the rash itch at night?")
    send_answer(client, consultation)
    question_email, answer_email = outbox_for(consultation)
    subject, text, html = render(question_email)
    assert subject == f"A question about your request {consultation.reference}"
    question_link = re.search(r"http://localhost/c/([A-Za-z0-9_-]+)", text).group(1)
    assert "has a question for you" in text and f"/c/{question_link}" in html
    subject, text, html = render(answer_email)
    assert subject == f"Your dermatologist has replied ({consultation.reference})"
    for body in (text, html):
        for secret in ("itch", "eczema", "Emollient", "Secret rash", "Test Patient"):
            assert secret not in body
    # Each email carries a link of its own that opens this request (only its hash is stored).
    answer_link = re.search(r"http://localhost/c/([A-Za-z0-9_-]+)", text).group(1)
    assert answer_link != question_link
    assert find_by_token(answer_link) is consultation and find_by_token(question_link) is consultation
    assert all(len(link.token_hash) == 64 for link in consultation.links)
    # Once sent, the sealed link is wiped and a resent email falls back to the "lost your link?" page.
    answer_email.sealed_context = None
    _subject, text, _html = render(answer_email)
    assert "/c/" not in text and "http://localhost/consultation/link" in text

    from app.consultations import notify

    db.session.add(Message(kind="patient_reply", body="Yes, mostly at night", request_id=consultation.id))
    db.session.flush()
    notify.patient_replied(consultation, policies().alerts)
    db.session.commit()
    subject, text, _html = render(outbox_for(consultation)[-1])
    assert subject == f"Patient replied: {consultation.reference}"
    assert f"http://localhost/queue/{consultation.reference}" in text and "night" not in text


def test_every_action_form_carries_a_csrf_token(tmp_path):
    app = build_app(tmp_path, WTF_CSRF_ENABLED=True)
    reset_database(app)
    try:
        with app.app_context():
            derm = make_user("dermatologist")
            consultation, _ = make_consultation()
            client = app.test_client()

            def token_on(path: str, action: str) -> str:
                page = client.get(path).get_data(as_text=True)
                form = page[page.index(f'action="{action}"') :]
                return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)

            login = {"email": derm.email, "password": "correct horse battery staple"}
            client.post("/login", data={**login, "csrf_token": token_on("/login", "/login")})
            detail = f"/queue/{consultation.reference}"
            assert client.post(f"{detail}/claim").status_code == 400  # no token: refused
            token = token_on(detail, f"{detail}/claim")
            assert client.post(f"{detail}/claim", data={"csrf_token": token}).status_code == 302
            answer = {"assessment": "Mild eczema.", "treatment": "Emollient."}
            assert client.post(f"{detail}/answer", data=answer).status_code == 400
            assert reload(consultation).status == IN_REVIEW
            token = token_on(detail, f"{detail}/answer")
            assert client.post(f"{detail}/answer", data={**answer, "csrf_token": token}).status_code == 302
            assert reload(consultation).status == ANSWERED
            db.session.remove()
    finally:
        empty_database(app)
