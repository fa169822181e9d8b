"""The patient's letter: a PDF of an answer at /c/<token>/letter.pdf (patient) and
/queue/<reference>/letter.pdf (staff), read back with pypdf; and the licence number it needs."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
import time_machine
from pypdf import PdfReader
from sqlalchemy import select

from app.consultations import staff_actions as actions
from app.extensions import db
from app.models import AuditEvent, User
from tests.conftest import build_app, empty_database, reset_database
from tests.factories import login_as, make_consultation, make_user, use_settings

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
LITHUANIAN = "ą č ę ė į š ų ū ž"


@pytest.fixture(autouse=True)
def pinned_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def pdf_text(data: bytes) -> str:
    """The letter's words, with runs of white space made single (PDF text has no real spaces)."""
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def answered(language="lt", **fields):
    derm = make_user("dermatologist", name="Dr Rūta Žukauskienė", licence_number="MPL-04217")
    consultation, token = make_consultation(
        claimed_by=derm,
        status="in_review",
        language=language,
        patient_name="Ona Petraitienė",
        date_of_birth=date(1986, 4, 12),
        **fields,
    )
    content = actions.Answer(
        assessment=f"Panašu į lengvą egzemą. Raidės: {LITHUANIAN} ĄČĘĖĮŠŲŪŽ.",
        treatment="Drėkinamasis kremas du kartus per dieną.",
        follow_up="Jei po keturių savaičių negerėja, parašykite mums.",
    )
    message = actions.answer(consultation, derm, content, NOW)
    return consultation, token, derm, message


def test_the_patient_downloads_a_letter_in_their_language(app, client, monkeypatch):
    use_settings(app, monkeypatch, CLINIC_NAME="Odos klinika", CLINIC_ADDRESS="Gedimino pr. 1, Vilnius")
    consultation, token, _derm, message = answered("lt")
    response = client.get(f"/c/{token}/letter.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"].startswith("no-store")
    assert "attachment" in response.headers["Content-Disposition"]
    text = pdf_text(response.data)
    assert LITHUANIAN in text and "ĄČĘĖĮŠŲŪŽ" in text
    assert "Panašu į lengvą egzemą." in text and "Drėkinamasis kremas du kartus per dieną." in text
    assert "MPL-04217" in text and "Dr Rūta Žukauskienė" in text
    assert "Odos klinika" in text and "Gedimino pr. 1, Vilnius" in text
    assert consultation.reference in text and "Ona Petraitienė" in text
    assert "1986 m. balandžio 12 d." in text  # the date of birth, written the Lithuanian way
    assert "2026 m. lapkričio 30 d." in text  # the letter's date: the day of the answer
    assert "Prescription note" not in text and "Assessment" not in text  # Lithuanian headings, no empty field
    events = db.session.execute(select(AuditEvent).where(AuditEvent.action == "letter_downloaded")).scalars()
    assert [(e.actor_kind, e.detail) for e in events] == [("patient", f"message {message.id}")]


def test_the_letter_says_the_consultation_was_remote(app, client):
    _consultation, token, _derm, _message = answered("en")
    text = pdf_text(client.get(f"/c/{token}/letter.pdf").data)
    assert "remote consultation" in text and "photos" in text
    assert "Dermatologist's letter" in text and "licence number MPL-04217" in text


def test_staff_get_the_same_letter_in_the_patients_language(app, client):
    consultation, _token, _derm, _message = answered("lt")
    login_as(client, make_user("staff"))
    response = client.get(f"/queue/{consultation.reference}/letter.pdf?lang=en")
    assert response.status_code == 200
    text = pdf_text(response.data)
    assert LITHUANIAN in text and "MPL-04217" in text and "Dermatologist's letter" not in text
    assert db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "letter_downloaded", AuditEvent.actor_kind == "user")
    ).scalar_one()


def test_the_letter_keeps_the_licence_number_the_answer_was_signed_with(app, client):
    _consultation, token, derm, _message = answered("en")
    derm.licence_number = "MPL-99999"
    db.session.commit()
    assert "MPL-04217" in pdf_text(client.get(f"/c/{token}/letter.pdf").data)


def test_no_letter_before_an_answer_nor_for_someone_elses_answer(app, client):
    _waiting, waiting_token = make_consultation()
    assert client.get(f"/c/{waiting_token}/letter.pdf").status_code == 404
    _other, _token, _derm, message = answered("en")
    assert client.get(f"/c/{waiting_token}/letter.pdf?answer={message.id}").status_code == 404
    assert client.get("/c/not-a-token/letter.pdf").status_code == 404
    assert client.get(f"/queue/{_other.reference}/letter.pdf").status_code == 302  # staff only: sign in first


def test_characters_the_font_lacks_do_not_break_the_letter(app, client):
    derm = make_user("dermatologist")
    consultation, token = make_consultation(claimed_by=derm, status="in_review")
    actions.answer(consultation, derm, actions.Answer(assessment="Fine 🙂 好 " + "x" * 400, treatment="None."), NOW)
    response = client.get(f"/c/{token}/letter.pdf")
    assert response.status_code == 200 and "Fine" in pdf_text(response.data)


def test_the_letter_is_rate_limited_with_the_private_page(tmp_path):
    app = build_app(tmp_path, RATELIMIT_ENABLED=True, PRIVATE_LINK_RATE_LIMIT="3 per minute")
    reset_database(app)
    try:
        with app.app_context(), time_machine.travel(NOW, tick=False):
            client = app.test_client()
            codes = [client.get(f"/c/guess-{n}/letter.pdf").status_code for n in range(2)]
            codes += [client.get(f"/c/guess-{n}").status_code for n in range(2)]
            assert codes == [404, 404, 404, 429]
    finally:
        empty_database(app)


# --- The licence number ------------------------------------------------------------------------------


def test_answering_is_refused_without_a_licence_number_and_the_text_is_kept(app, client):
    derm = make_user("dermatologist", licence_number=None)
    login_as(client, derm)
    consultation, _ = make_consultation(claimed_by=derm, status="in_review")
    page = client.get(f"/queue/{consultation.reference}").get_data(as_text=True)
    assert "Your licence number is not on your account yet" in page
    response = client.post(
        f"/queue/{consultation.reference}/answer",
        data={"assessment": "My careful assessment.", "treatment": "My treatment."},
    )
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert "Ask an admin to add it on the Accounts page" in text
    assert "My careful assessment.</textarea>" in text and "My treatment.</textarea>" in text
    db.session.expire_all()
    assert consultation.status == "in_review" and not consultation.messages


def test_an_admin_sets_the_licence_number_on_the_accounts_page(app, client):
    derm = make_user("dermatologist", licence_number=None)
    login_as(client, make_user("admin"))
    assert "No licence number: cannot answer" in client.get("/staff/users").get_data(as_text=True)
    bad = client.post(f"/staff/users/{derm.id}/licence", data={"licence_number": "<b>"})
    assert bad.status_code == 409 and "&lt;b&gt;" in bad.get_data(as_text=True)
    assert client.post(f"/staff/users/{derm.id}/licence", data={"licence_number": " MPL-0042 "}).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, derm.id).licence_number == "MPL-0042"
    created = client.post(
        "/staff/users/new",
        data={
            "name": "Dr Naujas",
            "email": "naujas@clinic.example",
            "role": "dermatologist",
            "licence_number": "MPL-7",
            "password": "correct horse battery staple",
            "confirm": "correct horse battery staple",
        },
    )
    assert created.status_code == 302
    assert db.session.execute(select(User.licence_number).where(User.email == "naujas@clinic.example")).scalar() == (
        "MPL-7"
    )


def test_flask_users_create_and_licence(app, runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "ruta@clinic.example",
            "--name",
            "Dr Rūta",
            "--role",
            "dermatologist",
            "--password",
            "correct horse battery staple",
            "--licence",
            "MPL-12345",
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.execute(select(User).where(User.email == "ruta@clinic.example")).scalar_one()
    assert user.licence_number == "MPL-12345"
    result = runner.invoke(args=["users", "licence", "--email", "ruta@clinic.example", "--licence", "MPL-54321"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(User, user.id).licence_number == "MPL-54321"
    assert "licence MPL-54321" in runner.invoke(args=["users", "list"]).output
    refused = runner.invoke(args=["users", "licence", "--email", "ruta@clinic.example", "--licence", "a" * 41])
    assert refused.exit_code != 0 and "licence number" in refused.output


def test_the_private_page_links_to_the_letter(app, client):
    _consultation, token, _derm, message = answered("lt")
    page = client.get(f"/c/{token}?lang=lt").get_data(as_text=True)
    assert f'href="/c/{token}/letter.pdf?answer={message.id}"' in page
    assert "Atsisiųsti šį atsakymą kaip raštą (PDF)" in page
