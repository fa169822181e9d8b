"""Hostile text: script tags (kept as text, shown escaped), 500,000 characters, NUL bytes,
bad and header-injecting email addresses, missing consent."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ConsultationRequest, Message, OutboundEmail
from tests.factories import login_as, make_consultation, make_user, submit_request
from tests.security.attack import ESCAPED_SCRIPT, SCRIPT, assert_refused, body, field_error, nothing_stored

HUGE = "a" * 500_000
# The consultation form's free-text fields and what each is stored as.
TEXT_FIELDS = {
    "full_name": "patient_name",
    "description": "description",
    "medications": "medications",
    "allergies": "allergies",
    "history_notes": "history_notes",
}


def only_request() -> ConsultationRequest:
    db.session.expire_all()
    return db.session.execute(select(ConsultationRequest)).scalar_one()


# --- Script tags: stored as the text they are, shown escaped --------------------------------


def test_script_tags_in_every_text_field_are_stored_as_text_and_escaped_on_the_queue_page(app, client):
    answers = {name: f"Itchy patches {SCRIPT} on both hands" for name in TEXT_FIELDS}
    assert submit_request(client, **answers).status_code == 303
    consultation = only_request()
    for column in TEXT_FIELDS.values():
        assert getattr(consultation, column) == f"Itchy patches {SCRIPT} on both hands"

    login_as(client, make_user("dermatologist"))
    for page in (f"/queue/{consultation.reference}", "/queue/?filter=all"):
        text = assert_refused(client.get(page), 200)
        assert SCRIPT not in text
    assert body(client.get(f"/queue/{consultation.reference}")).count(ESCAPED_SCRIPT) == len(TEXT_FIELDS)


def test_script_tags_in_messages_are_escaped_on_the_private_page_and_the_queue(app, client):
    derm = make_user("dermatologist")
    consultation, token = make_consultation(status="awaiting_patient", claimed_by=derm)
    db.session.add(Message(request_id=consultation.id, kind="question", author_id=derm.id, body=f"Q {SCRIPT}"))
    db.session.commit()
    assert client.post(f"/c/{token}/reply", data={"body": f"My answer {SCRIPT}"}).status_code in (302, 303)

    private = assert_refused(client.get(f"/c/{token}"), 200)
    assert SCRIPT not in private and private.count(ESCAPED_SCRIPT) == 2
    login_as(client, derm)
    queue = assert_refused(client.get(f"/queue/{consultation.reference}"), 200)
    assert SCRIPT not in queue and queue.count(ESCAPED_SCRIPT) == 2


def test_script_tags_in_a_dermatologists_answer_are_escaped_for_the_patient(app, client):
    derm = make_user("dermatologist")
    consultation, token = make_consultation(status="in_review", claimed_by=derm)
    login_as(client, derm)
    answer = {"assessment": SCRIPT, "treatment": SCRIPT, "prescription_note": SCRIPT, "follow_up": SCRIPT}
    assert client.post(f"/queue/{consultation.reference}/answer", data=answer).status_code == 302
    private = assert_refused(app.test_client().get(f"/c/{token}"), 200)
    assert SCRIPT not in private and private.count(ESCAPED_SCRIPT) == 4


# --- Length: a form error (or a clean 413), nothing stored ----------------------------------


@pytest.mark.parametrize("name", [*TEXT_FIELDS, "email", "phone", "date_of_birth"])
def test_500000_characters_in_a_consultation_field_is_a_form_error(app, client, name):
    with nothing_stored(app):
        text = assert_refused(submit_request(client, photos=[], **{name: HUGE}), 422)
    field_error(text, name)


def test_500000_characters_in_a_patient_reply_is_refused(app, client):
    _, token = make_consultation(status="awaiting_patient")
    with nothing_stored(app):
        response = client.post(f"/c/{token}/reply", data={"body": HUGE}, content_type="multipart/form-data")
        text = assert_refused(response, 422, 413)
    if response.status_code == 422:
        assert "under 5000 characters" in field_error(text, "body")


@pytest.mark.parametrize("name", ["assessment", "treatment", "prescription_note", "follow_up"])
def test_500000_characters_in_an_answer_is_refused(app, client, name):
    derm = make_user("dermatologist")
    consultation, _ = make_consultation(status="in_review", claimed_by=derm)
    login_as(client, derm)
    answer = {"assessment": "Eczema.", "treatment": "Emollients.", name: HUGE}
    with nothing_stored(app):
        response = client.post(
            f"/queue/{consultation.reference}/answer", data=answer, content_type="multipart/form-data"
        )
        text = assert_refused(response, 422, 413)
    if response.status_code == 422:
        field_error(text, name)


@pytest.mark.parametrize(
    ("path", "data"), [("/login", {"email": HUGE, "password": "x"}), ("/consultation/link", {"email": HUGE})]
)
def test_500000_characters_in_a_short_form_is_refused(app, client, path, data):
    with nothing_stored(app):
        response = client.post(path, data=data, content_type="multipart/form-data")
        text = assert_refused(response, 200, 422, 413)
    if response.status_code != 413:
        field_error(text, "email")


# --- NUL bytes: PostgreSQL cannot store them; refused before any view runs ------------------


@pytest.mark.parametrize("name", ["full_name", "email", "description", "medications"])
def test_a_nul_byte_in_a_consultation_field_is_refused(app, client, name):
    with nothing_stored(app):
        assert_refused(submit_request(client, **{name: "Ona\x00Petraitienė"}), 400)


def test_a_nul_byte_in_a_file_name_is_refused(app, client):
    from tests.factories import photo_bytes

    with nothing_stored(app):
        assert_refused(submit_request(client, photos=[("rash\x00.php", photo_bytes())]), 400)


def test_nul_bytes_in_a_reply_a_search_a_reference_and_a_sign_in_are_refused(app, client):
    derm = make_user("dermatologist")
    consultation, token = make_consultation(status="awaiting_patient")
    with nothing_stored(app):
        assert_refused(client.post(f"/c/{token}/reply", data={"body": "a\x00b"}), 400)
        assert_refused(client.post("/login", data={"email": f"{derm.email}\x00", "password": "x"}), 400)
        login_as(client, derm)
        assert_refused(client.get("/queue/?q=DRM-%00"), 400)
        assert_refused(client.get(f"/queue/{consultation.reference}%00"), 404)
        assert_refused(client.get(f"/c/{token}%00"), 404)


# --- Email addresses ------------------------------------------------------------------------

BAD_EMAILS = [
    "not-an-email",
    "ona@",
    "@example.com",
    "ona@@example.com",
    "ona@example..com",
    "ona petraitiene@example.com",
    "<script>alert(1)</script>@example.com",
    "ona@example.com\r\nBcc: everyone@example.com",
    "ona@example.com,attacker@evil.example",
    "o" * 250 + "@example.com",
]


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_a_bad_email_is_a_form_error_and_nothing_is_sent(app, client, email):
    with nothing_stored(app):
        text = assert_refused(submit_request(client, photos=[], email=email), 422)
    field_error(text, "email")
    assert "<script>alert(1)</script>" not in text


@pytest.mark.parametrize("email", BAD_EMAILS[-3:])
def test_a_header_injecting_email_cannot_ask_for_links(app, client, email):
    make_consultation(email="ona@example.com")
    with nothing_stored(app):
        text = assert_refused(client.post("/consultation/link", data={"email": email}), 422)
    field_error(text, "email")
    assert db.session.execute(select(OutboundEmail)).first() is None


# --- Consent --------------------------------------------------------------------------------


@pytest.mark.parametrize("consent", ["consent_health_data", "consent_terms"])
def test_missing_consent_is_a_form_error_and_nothing_is_stored(app, client, consent):
    with nothing_stored(app):
        text = assert_refused(submit_request(client, photos=[], **{consent: None}), 422)
    field_error(text, consent)


def test_consent_cannot_be_faked_with_an_odd_value(app, client):
    with nothing_stored(app):
        text = assert_refused(submit_request(client, photos=[], consent_health_data="", consent_terms=""), 422)
    field_error(text, "consent_health_data")
