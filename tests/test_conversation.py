"""The patient's side of the conversation on /c/<token>: reading the answer and questions, replying
with photos, following up after an answer, marking resolved and withdrawing."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.consultations import conversation
from app.consultations import staff_actions as actions
from app.consultations.alerts import check as sla_check
from app.consultations.policies import FollowUpPolicy
from app.extensions import db
from app.models import AuditEvent, ConsultationRequest, Message, OutboundEmail, Photo, ResponseClock
from app.outbox import deliver, render
from app.photos import PhotoLimits, clean_photo
from app.queue.listing import queue_page
from app.runtime import policies
from app.storage import LocalStorage, photo_storage
from tests.conftest import build_app, empty_database, reset_database
from tests.factories import make_consultation, make_photo, make_user, photo_bytes, stored_files
from tests.smtp import MailServer, body_html, body_text

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NOTE = "Internal: looks odd, ask Dr B about the left palm before answering."
QUESTION = "Could you send a close-up of the left palm, in daylight?"
REPLY = "Here is the close-up. It itches most at night."


# --- Helpers that read like what people do ----------------------------------------------------------


@pytest.fixture
def derm(app):
    return make_user("dermatologist", name="Dr Rūta Kazlauskienė", email="ruta@clinic.example")


def dermatologist_asks(consultation, derm, question=QUESTION, at=None):
    now = at or T0
    if consultation.claimed_by_id is None:
        actions.claim(consultation, derm, now)
    actions.add_note(consultation, derm, NOTE, now)
    actions.ask(consultation, derm, question, now)
    db.session.commit()


def dermatologist_answers(consultation, derm, at=None, **parts):
    now = at or T0
    if consultation.claimed_by_id is None:
        actions.claim(consultation, derm, now)
    content = actions.Answer(
        assessment=parts.get("assessment", "This looks like dyshidrotic hand eczema."),
        treatment=parts.get("treatment", "Mometasone cream once a day for two weeks, then emollient."),
        prescription_note=parts.get("prescription_note", "Prescription sent to your e-health account."),
        follow_up=parts.get("follow_up", "Write to us if it is not better in four weeks."),
    )
    actions.answer(consultation, derm, content, now)
    db.session.commit()


def patient_replies(client, token, text=REPLY, photos=(), kept=(), **extra):
    data = {"body": text, "photos": [(io.BytesIO(content), name) for name, content in photos], **extra}
    if kept:
        data["kept_photos"] = list(kept)
    return client.post(f"/c/{token}/reply", data=data, content_type="multipart/form-data")


def page_text(response) -> str:
    return response.get_data(as_text=True)


def reload(consultation) -> ConsultationRequest:
    db.session.expire_all()
    return db.session.get(ConsultationRequest, consultation.id)


def replies_of(consultation) -> list[Message]:
    return list(
        db.session.execute(
            select(Message).where(Message.request_id == consultation.id, Message.kind == "patient_reply")
        ).scalars()
    )


def patient_audit(consultation) -> list[tuple[str, str | None]]:
    rows = db.session.execute(
        select(AuditEvent).where(AuditEvent.request_id == consultation.id, AuditEvent.actor_kind == "patient")
    ).scalars()
    return [(row.action, row.detail) for row in rows]


def emails(template: str) -> list[OutboundEmail]:
    return list(db.session.execute(select(OutboundEmail).where(OutboundEmail.template == template)).scalars())


def not_a_photo() -> tuple[str, bytes]:
    return ("holiday.jpg", b"<?php system($_GET['c']); ?> this is not a picture")


# --- Reading the thread -----------------------------------------------------------------------------


def test_the_answer_is_shown_in_its_parts_with_the_dermatologists_name(client, derm):
    consultation, token = make_consultation(created_at=T0)
    dermatologist_asks(consultation, derm)
    patient_replies(client, token)
    dermatologist_answers(reload(consultation), derm, at=T0 + timedelta(hours=3))

    text = page_text(client.get(f"/c/{token}"))
    assert 'id="status">Answered</span>' in text
    assert "Dr Rūta Kazlauskienė" in text
    for heading, words in [
        ("Assessment and likely diagnosis", "This looks like dyshidrotic hand eczema."),
        ("Recommended treatment", "Mometasone cream once a day for two weeks"),
        ("About your prescription", "Prescription sent to your e-health account."),
        ("Follow-up advice", "Write to us if it is not better in four weeks."),
    ]:
        assert re.search(rf"<h4>{heading}</h4><p class=\"message-text\">{re.escape(words)}", text)
    # The question, the patient's own reply and the answer, in that order.
    order = [text.index(QUESTION), text.index(REPLY), text.index("This looks like dyshidrotic")]
    assert order == sorted(order)


def test_an_internal_note_never_reaches_the_page_whatever_the_status(client, derm):
    consultation, token = make_consultation(created_at=T0)
    actions.claim(consultation, derm, T0)
    actions.add_note(consultation, derm, NOTE, T0)
    db.session.commit()
    pages = [page_text(client.get(f"/c/{token}"))]  # in review, note only
    dermatologist_asks(consultation, derm)
    pages.append(page_text(client.get(f"/c/{token}")))  # a question is waiting
    pages.append(page_text(patient_replies(client, token, text="x" * 6000)))  # the form comes back with an error
    patient_replies(client, token)
    dermatologist_answers(reload(consultation), derm)
    pages.append(page_text(client.get(f"/c/{token}")))
    for text in pages:
        assert "Internal:" not in text and "ask Dr B" not in text
    assert QUESTION in pages[1]


def test_a_question_shows_a_reply_form_and_other_states_do_not(client, derm):
    consultation, token = make_consultation(created_at=T0)
    assert 'id="reply-form"' not in page_text(client.get(f"/c/{token}"))  # submitted
    actions.claim(consultation, derm, T0)
    db.session.commit()
    assert 'id="reply-form"' not in page_text(client.get(f"/c/{token}"))  # in review
    dermatologist_asks(consultation, derm)
    text = page_text(client.get(f"/c/{token}"))
    assert 'id="status">Question for you</span>' in text
    assert 'href="#reply"' in text and 'id="reply-form"' in text and "Reply to the dermatologist" in text
    assert f'action="/c/{token}/reply#reply"' in text and 'enctype="multipart/form-data"' in text


# --- Replying to a question -------------------------------------------------------------------------


def test_reply_with_photos_goes_back_to_the_same_dermatologist_with_a_new_due_time(client, derm):
    consultation, token = make_consultation(created_at=T0)
    make_photo(consultation)
    dermatologist_asks(consultation, derm)
    replied_at = T0 + timedelta(hours=5)
    with time_machine.travel(replied_at, tick=False):
        response = patient_replies(
            client, token, photos=[("palm.jpg", photo_bytes()), ("palm-2.png", photo_bytes("PNG", size=(300, 300)))]
        )
    assert response.status_code == 303
    assert re.fullmatch(rf"/c/{token}#message-\d+", response.headers["Location"])

    consultation = reload(consultation)
    assert consultation.status == "in_review" and consultation.claimed_by_id == derm.id
    assert consultation.response_round == 2 and consultation.due_at == replied_at + timedelta(hours=24)
    clocks = db.session.execute(select(ResponseClock).where(ResponseClock.request_id == consultation.id)).scalars()
    assert [(c.round, c.stopped_at is None) for c in clocks] == [(1, False), (2, True)]
    [message] = replies_of(consultation)
    assert (message.body, message.author_id, message.created_at) == (REPLY, None, replied_at)
    photos = db.session.execute(select(Photo).where(Photo.message_id == message.id)).scalars().all()
    assert len(photos) == 2 and all(p.request_id == consultation.id for p in photos)
    assert all(photo_storage().exists(p.storage_key) and photo_storage().exists(p.thumbnail_key) for p in photos)
    assert ("patient_replied", f"message {message.id}, 2 photos") in patient_audit(consultation)

    [email] = emails("patient_replied")
    assert email.recipient == derm.email
    subject, text, html = render(email)
    assert consultation.reference in subject and f"/queue/{consultation.reference}" in text
    assert "close-up" not in subject + text + html and "itches" not in text + html  # no health data

    # Read the page soon after replying: the session cookie holding the notice is signed with the
    # travelled-to time and would have expired by the real clock.
    with time_machine.travel(replied_at + timedelta(seconds=5), tick=False):
        page = page_text(client.get(response.headers["Location"]))
    assert "Your message has been sent to Dr Rūta Kazlauskienė" in page
    assert REPLY in page and 'id="reply-form"' not in page
    thumbnails = re.findall(rf'src="(/c/{token}/photos/[a-f0-9]+\.jpg/thumb)"', page)
    assert len(thumbnails) == 3  # the reply's two, and the one sent with the request
    for src in thumbnails:
        assert client.get(src).mimetype == "image/jpeg"


def test_reply_to_a_released_request_waits_for_any_dermatologist_and_alerts_the_team(client, derm):
    colleague = make_user("dermatologist", email="colleague@clinic.example")
    consultation, token = make_consultation(created_at=T0)
    dermatologist_asks(consultation, derm)
    actions.release(consultation, derm, T0)
    db.session.commit()
    assert patient_replies(client, token).status_code == 303
    consultation = reload(consultation)
    assert (consultation.status, consultation.claimed_by_id) == ("submitted", None)
    recipients = sorted(email.recipient for email in emails("patient_replied"))
    assert recipients == sorted(["alerts@clinic.example", derm.email, colleague.email])
    page = queue_page("unclaimed", derm.id)
    assert consultation.reference in [row.reference for row in page.rows]


def test_the_team_hears_of_the_reply_by_real_email_without_health_data(tmp_path):
    server = MailServer().start()
    app = build_app(tmp_path, **server.settings())
    reset_database(app)
    try:
        with app.app_context():
            derm = make_user("dermatologist", email="ruta@clinic.example")
            consultation, token = make_consultation()
            dermatologist_asks(consultation, derm)
            assert patient_replies(app.test_client(), token).status_code == 303
            assert deliver()["sent"] >= 1
            [message] = server.messages_to("ruta@clinic.example")
            assert consultation.reference in message["Subject"]
            body = body_text(message) + body_html(message)
            assert f"/queue/{consultation.reference}" in body
            assert "itches" not in body and "Test Patient" not in body and token not in body
    finally:
        empty_database(app)
        server.stop()


def test_a_reply_may_be_only_a_photo_but_not_nothing(client, derm):
    consultation, token = make_consultation()
    dermatologist_asks(consultation, derm)
    empty = patient_replies(client, token, text="   ")
    assert empty.status_code == 422
    assert re.search(r'id="body-error">Write your reply, or add a photo\.', page_text(empty))
    assert replies_of(consultation) == []
    assert patient_replies(client, token, text="", photos=[("palm.jpg", photo_bytes())]).status_code == 303
    [message] = replies_of(consultation)
    assert message.body is None and len(message.photos) == 1


def test_a_too_long_reply_is_explained_next_to_the_field_and_the_text_is_kept(client, derm):
    consultation, token = make_consultation()
    dermatologist_asks(consultation, derm)
    typed = "It started on the left palm. " * 200  # 5,600 characters
    response = patient_replies(client, token, text=typed)
    assert response.status_code == 422
    text = page_text(response)
    assert 'id="body-error">Please keep your message under 5000 characters.' in text
    assert 'aria-describedby="body-help body-error"' in text
    assert typed.strip() in text  # what the patient wrote is still in the box
    assert reload(consultation).status == "awaiting_patient" and replies_of(consultation) == []
    assert emails("patient_replied") == []


def test_a_bad_photo_is_named_and_the_good_one_is_kept_for_the_next_try(client, derm, app):
    consultation, token = make_consultation()
    dermatologist_asks(consultation, derm)
    response = patient_replies(client, token, photos=[("palm.jpg", photo_bytes()), not_a_photo()])
    assert response.status_code == 422
    text = page_text(response)
    assert "“holiday.jpg”: This is not a photo we can open." in text
    assert REPLY in text
    kept = re.findall(r'name="kept_photos" value="([a-f0-9]{32})" checked', text)
    assert len(kept) == 1
    assert client.get(f"/c/{token}/reply/photos/{kept[0]}").mimetype == "image/jpeg"
    assert replies_of(consultation) == [] and db.session.execute(select(func.count(Photo.id))).scalar_one() == 0
    # A reload still shows the kept photo; nothing is stored as the request's photos yet.
    assert f'value="{kept[0]}"' in page_text(client.get(f"/c/{token}"))

    assert patient_replies(client, token, kept=kept).status_code == 303
    [message] = replies_of(consultation)
    assert len(message.photos) == 1
    assert [name for name in stored_files(app.config["UPLOAD_DIR"]) if name.startswith("pending")] == []


def test_too_many_photos_are_refused_like_at_intake(client, derm, app):
    consultation, token = make_consultation()
    dermatologist_asks(consultation, derm)
    photos = [(f"p{n}.jpg", photo_bytes(size=(32, 32))) for n in range(app.config["MAX_PHOTOS"] + 1)]
    response = patient_replies(client, token, photos=photos)
    assert response.status_code == 422
    assert "You can send up to 6 photos. Please remove some." in page_text(response)
    assert replies_of(consultation) == []


def test_control_characters_are_removed_and_markup_is_shown_as_text(client, derm):
    consultation, token = make_consultation()
    dermatologist_asks(consultation, derm)
    assert patient_replies(client, token, text="Better\x00 now").status_code == 400  # the app refuses NUL outright
    assert replies_of(consultation) == []
    assert patient_replies(client, token, text="Better\x07\x1b now <script>alert(1)</script>").status_code == 303
    [message] = replies_of(consultation)
    assert message.body == "Better now <script>alert(1)</script>"
    text = page_text(client.get(f"/c/{token}"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert(1)" not in text


def test_replying_when_not_asked_is_refused_and_keeps_the_text(client, derm):
    consultation, token = make_consultation()
    actions.claim(consultation, derm, T0)
    db.session.commit()
    response = patient_replies(client, token, text="Just checking in")
    assert response.status_code == 409
    text = page_text(response)
    assert "not waiting for a message from you" in text and "Just checking in" in text
    assert replies_of(consultation) == [] and reload(consultation).status == "in_review"
    assert patient_replies(client, "made-up-token").status_code == 404


def test_a_double_press_of_send_stores_one_reply(client, derm):
    consultation, token = make_consultation()
    dermatologist_asks(consultation, derm)
    first = patient_replies(client, token)
    second = patient_replies(client, token)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(replies_of(consultation)) == 1 and len(emails("patient_replied")) == 1


def test_a_reply_racing_a_change_of_status_is_refused_by_the_database(app, derm):
    consultation, _token = make_consultation()
    dermatologist_asks(consultation, derm)
    stale = db.session.get(ConsultationRequest, consultation.id)
    # Someone else closes it behind this session's back; the object in memory still says awaiting_patient.
    with db.engine.begin() as connection:
        connection.execute(ConsultationRequest.__table__.update().values(status="closed"))
    assert stale.status == "awaiting_patient"
    with pytest.raises(conversation.PatientActionRefused):
        conversation.reply(stale, "Hello", [], now=T0, policies=policies(), storage=photo_storage())
    assert replies_of(consultation) == []


class DiskFullAfter(LocalStorage):
    """A real folder that runs out of space after a number of writes."""

    def __init__(self, root, writes: int) -> None:
        super().__init__(root)
        self.writes = writes

    def save(self, key: str, data: bytes) -> None:
        if self.writes == 0:
            raise OSError(28, "No space left on device")
        self.writes -= 1
        super().save(key, data)


def test_a_storage_failure_keeps_nothing_of_the_reply(app, derm, tmp_path):
    consultation, _token = make_consultation()
    dermatologist_asks(consultation, derm)
    limits = PhotoLimits.from_config(app.config)
    photos = [clean_photo(photo_bytes(), limits), clean_photo(photo_bytes("PNG"), limits)]
    storage = DiskFullAfter(tmp_path / "full", writes=3)  # the second photo's thumbnail fails
    with pytest.raises(OSError):
        conversation.reply(consultation, REPLY, photos, now=T0, policies=policies(), storage=storage)
    assert storage.keys() == []
    consultation = reload(consultation)
    assert consultation.status == "awaiting_patient" and consultation.response_round == 1
    assert replies_of(consultation) == [] and emails("patient_replied") == []
    assert "patient_replied" not in [action for action, _ in patient_audit(consultation)]


def test_a_database_failure_keeps_no_files_and_gives_the_text_back(client, derm, app):
    consultation, token = make_consultation()
    dermatologist_asks(consultation, derm)

    def database_goes_away(session):
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    event.listen(Session, "before_commit", database_goes_away, once=True)  # a transient failure
    try:
        response = patient_replies(client, token, photos=[("palm.jpg", photo_bytes())])
    finally:
        if event.contains(Session, "before_commit", database_goes_away):
            event.remove(Session, "before_commit", database_goes_away)
    assert response.status_code == 503
    text = page_text(response)
    assert "We could not send your message just now" in text and REPLY in text
    assert stored_files(app.config["UPLOAD_DIR"]) == []
    assert replies_of(consultation) == [] and reload(consultation).status == "awaiting_patient"


# --- Following up after an answer ---------------------------------------------------------------------


def test_a_follow_up_after_an_answer_reopens_the_request_for_the_same_dermatologist(client, derm):
    consultation, token = make_consultation(created_at=T0)
    dermatologist_answers(consultation, derm, at=T0 + timedelta(hours=2))
    later = T0 + timedelta(days=10)
    with time_machine.travel(later, tick=False):
        text = page_text(client.get(f"/c/{token}"))
        assert "Send a follow-up message" in text and 'id="reply-form"' in text
        response = patient_replies(client, token, text="The cream stings. Should I stop?")
    assert response.status_code == 303
    consultation = reload(consultation)
    assert (consultation.status, consultation.claimed_by_id) == ("in_review", derm.id)
    assert consultation.due_at == later + timedelta(hours=24) and consultation.response_round == 2
    assert [email.recipient for email in emails("patient_replied")] == [derm.email]
    # The dermatologist can answer the follow-up as usual.
    dermatologist_answers(consultation, derm, at=later + timedelta(hours=1), assessment="Stop for three days.")
    assert reload(consultation).status == "answered"


def test_no_follow_up_once_the_window_has_passed(client, derm):
    consultation, token = make_consultation(created_at=T0)
    dermatologist_answers(consultation, derm, at=T0)
    with time_machine.travel(T0 + timedelta(days=15), tick=False):
        assert 'id="reply-form"' not in page_text(client.get(f"/c/{token}"))
        assert patient_replies(client, token).status_code == 409
    assert reload(consultation).status == "answered"


def test_patient_choices_rule():
    follow_up = FollowUpPolicy(days=14)

    def choices(status, answered_at=None, now=T0):
        return conversation.patient_choices(ConsultationRequest(status=status, answered_at=answered_at), now, follow_up)

    assert choices("submitted") == conversation.PatientChoices(None, False, True, None)
    assert choices("awaiting_patient").reply == "answer_question"
    assert choices("answered", T0).reply == "follow_up"
    assert choices("answered", T0).follow_up_until == T0 + timedelta(days=14)
    assert choices("answered", T0, now=T0 + timedelta(days=14, seconds=1)).reply is None
    assert choices("answered", T0).resolve and not choices("answered", T0).withdraw
    assert choices("in_review", T0).resolve  # a follow-up being looked at can still be closed
    assert not choices("closed", T0).resolve and not choices("withdrawn").withdraw


# --- Resolved and withdrawn ------------------------------------------------------------------------


def test_marking_resolved_asks_first_then_closes_the_consultation(client, derm):
    consultation, token = make_consultation(created_at=T0)
    dermatologist_answers(consultation, derm, at=T0 + timedelta(hours=1))
    page = page_text(client.get(f"/c/{token}"))
    assert f'href="/c/{token}/resolve"' in page and f'href="/c/{token}/withdraw"' not in page

    confirm = client.get(f"/c/{token}/resolve")
    assert confirm.status_code == 200 and "Yes, mark as resolved" in page_text(confirm)
    assert reload(consultation).status == "answered"  # looking at the question changes nothing

    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        response = client.post(f"/c/{token}/resolve")
        assert response.status_code == 303 and response.headers["Location"] == f"/c/{token}"
        text = page_text(client.get(f"/c/{token}"))  # (the session cookie is signed with the moved clock)
    consultation = reload(consultation)
    assert consultation.status == "closed" and consultation.closed_at == T0 + timedelta(days=2)
    assert ("resolved", None) in patient_audit(consultation)
    assert 'id="status">Closed</span>' in text and "Thank you. Your consultation is closed." in text
    assert 'id="reply-form"' not in text and "This looks like dyshidrotic hand eczema." in text


def test_a_follow_up_being_reviewed_can_be_closed_and_its_clock_stops(client, derm):
    consultation, token = make_consultation(created_at=T0)
    dermatologist_answers(consultation, derm, at=T0)
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        patient_replies(client, token, text="Actually, forget it, it is fine.")
        assert reload(consultation).due_at is not None
        client.post(f"/c/{token}/resolve")
    consultation = reload(consultation)
    assert (consultation.status, consultation.due_at) == ("closed", None)


def test_withdrawing_asks_first_then_takes_the_request_out_of_the_queue_with_no_alerts(client, derm):
    consultation, token = make_consultation(created_at=T0)
    assert f'href="/c/{token}/withdraw"' in page_text(client.get(f"/c/{token}"))
    assert "Yes, withdraw my request" in page_text(client.get(f"/c/{token}/withdraw"))
    assert reload(consultation).status == "submitted"

    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        assert client.post(f"/c/{token}/withdraw").status_code == 303
    consultation = reload(consultation)
    assert consultation.status == "withdrawn" and consultation.closed_at == T0 + timedelta(hours=1)
    assert consultation.due_at is None and consultation.clock_started_at is None
    [clock] = consultation.clocks
    assert clock.stopped_at is None  # cancelled: neither met nor missed
    assert consultation.first_response_at is None
    assert ("withdrawn", None) in patient_audit(consultation)
    assert consultation.reference not in [row.reference for row in queue_page("open", derm.id).rows]
    # Long past the old due time, the 24-hour check finds nothing to alert about.
    assert sla_check(policies(), now=T0 + timedelta(days=3))["emails"] == 0
    assert 'id="status">Withdrawn</span>' in page_text(client.get(f"/c/{token}"))


def test_withdrawing_is_only_before_an_answer_and_resolving_only_after(client, derm):
    unanswered, token = make_consultation(created_at=T0)
    response = client.post(f"/c/{token}/resolve")
    assert response.status_code == 303 and reload(unanswered).status == "submitted"
    assert "cannot be marked as resolved now" in page_text(client.get(f"/c/{token}"))
    assert client.get(f"/c/{token}/resolve").status_code == 303  # no confirmation page for what is not offered

    answered, answered_token = make_consultation(created_at=T0)
    dermatologist_answers(answered, derm)
    client.post(f"/c/{answered_token}/withdraw")
    assert reload(answered).status == "answered"


def test_a_withdrawn_request_cannot_be_answered_by_the_dermatologist(client, derm):
    consultation, token = make_consultation(created_at=T0)
    actions.claim(consultation, derm, T0)
    db.session.commit()
    client.post(f"/c/{token}/withdraw")
    with pytest.raises(actions.ActionRefused):
        dermatologist_answers(reload(consultation), derm)


# --- CSRF and rate limits (the testing config turns both off; these apps turn them on) -------------------


@pytest.fixture
def guarded_app(tmp_path):
    app = build_app(tmp_path, WTF_CSRF_ENABLED=True)
    reset_database(app)
    with app.app_context():
        yield app
    empty_database(app)


def csrf_token_on(page: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)


def test_every_patient_action_needs_the_csrf_token(guarded_app):
    client = guarded_app.test_client()
    derm = make_user("dermatologist")
    consultation, token = make_consultation()
    dermatologist_asks(consultation, derm)
    for path in ("resolve", "withdraw", "export", "erase"):
        assert client.post(f"/c/{token}/{path}", data={"confirm": "y"}).status_code == 400
    forged = patient_replies(client, token, csrf_token="forged", photos=[("palm.jpg", photo_bytes())])
    assert forged.status_code == 400
    text = page_text(forged)
    assert "has expired, so your message has not been sent yet" in text and REPLY in text
    assert "please add your photos again" in text
    assert replies_of(consultation) == [] and reload(consultation).status == "awaiting_patient"
    assert stored_files(guarded_app.config["UPLOAD_DIR"]) == []

    # With the token from the page (the one the expired page gives back works too), it goes through.
    assert patient_replies(client, token, csrf_token=csrf_token_on(text)).status_code == 303
    assert len(replies_of(consultation)) == 1


def test_patient_actions_are_rate_limited_like_the_page(tmp_path):
    app = build_app(tmp_path, RATELIMIT_ENABLED=True, PRIVATE_LINK_RATE_LIMIT="3 per minute")
    reset_database(app)
    try:
        with app.app_context():
            client = app.test_client()
            _consultation, token = make_consultation(status="awaiting_patient")
            codes = [patient_replies(client, token, text="").status_code for _ in range(3)]
            codes.append(patient_replies(client, token).status_code)
            assert codes == [422, 422, 422, 429]
            # Every action under the private link draws on the same budget as the page.
            assert client.post(f"/c/{token}/export").status_code == 429
            assert client.post(f"/c/{token}/erase").status_code == 429
            assert client.get(f"/c/{token}").status_code == 429
            other = {"REMOTE_ADDR": "198.51.100.7"}
            exports = [client.post(f"/c/{token}/export", environ_base=other).status_code for _ in range(4)]
            assert exports == [200, 200, 200, 429]
    finally:
        empty_database(app)


def test_a_made_up_token_cannot_act(client):
    consultation, _token = make_consultation()
    make_photo(consultation)
    for path in ("reply", "resolve", "withdraw", "export", "erase"):
        assert client.post(f"/c/made-up-token/{path}", data={"confirm": "y"}).status_code == 404
    assert reload(consultation).status == "submitted"
