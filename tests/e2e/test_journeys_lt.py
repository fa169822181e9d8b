"""The journeys again, in Lithuanian, in a real Chromium against a live server: a patient switches
the site to Lithuanian on a condition page and sends photos; a dermatologist signs in, claims and
answers; the patient reads the question, replies, and reads the answer. The patient's language is
stored with the request, so the emails they get are in Lithuanian too.

(The English journeys are in test_patient_journey.py, test_dermatologist_journey.py and
test_patient_reply.py.)
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ConsultationRequest, OutboundEmail
from app.outbox import render
from app.timeutil import utcnow
from tests.e2e.helpers import PHONE, AccessibilityReport, fits_width, sign_in
from tests.factories import make_consultation, make_photo, make_user, phone_jpeg_with_gps, photo_bytes

pytestmark = pytest.mark.e2e

expect = pytest.importorskip("playwright.sync_api").expect

LOCAL_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")  # how Lithuanian writes a moment


def patient_email(app, template: str) -> tuple[str, str, str]:
    """The (subject, text, html) of the one email of this kind, rendered as it will be sent."""
    with app.app_context():
        email = db.session.execute(select(OutboundEmail).where(OutboundEmail.template == template)).scalar_one()
        assert email.language == "lt"
        rendered = render(email)
        db.session.remove()
    return rendered


def fill_in_the_form_in_lithuanian(page) -> None:
    page.get_by_label("Vardas ir pavardė").fill("Ona Petraitienė")
    page.get_by_label("El. paštas").fill("ona@example.com")
    page.get_by_label("Gimimo data").fill("1986-04-12")
    page.get_by_label("Moteris").check()
    page.get_by_label("Plaštakos ar delnai").check()
    page.get_by_label("Pėdos ar padai").check()
    page.get_by_label("Nuo 1 iki 12 mėnesių").check()
    page.get_by_label("Niežulys").check()
    page.get_by_label("Savais žodžiais aprašykite, kas jus vargina").fill(
        "Ant abiejų delnų kas kelias savaites atsiranda smulkių geltonų pūlinukų."
    )
    page.get_by_label("Nė vienas iš šių").check()
    page.locator("#area-1-site").select_option("hands")
    page.get_by_label(re.compile("saugotų ir naudotų mano sveikatos duomenis")).check()
    page.get_by_label(re.compile("Perskaičiau ir sutinku")).check()


def test_patient_switches_to_lithuanian_and_sends_photos(live_server, page, tmp_path, console_errors):
    sideways = tmp_path / "IMG_2041.jpg"
    sideways.write_bytes(phone_jpeg_with_gps(size=(800, 400)))
    close_up = tmp_path / "arti.png"
    close_up.write_bytes(photo_bytes("PNG", size=(600, 600), colour=(190, 120, 110)))
    page.set_viewport_size(PHONE)

    # The visible language switch turns the article into Lithuanian, and the choice is remembered.
    page.goto(f"{live_server.url}/conditions/palmoplantar-pustulosis")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.locator(".lang-switch").get_by_role("link", name="Lietuvių").click()
    expect(page.locator("html")).to_have_attribute("lang", "lt")
    expect(page.get_by_role("heading", level=1)).to_have_text("Delnų ir padų pustuliozė")
    expect(page.get_by_role("heading", name="Priežastys ir rizikos veiksniai")).to_be_visible()
    page.get_by_role("link", name="Siųsti nuotraukas dermatologui").first.click()

    expect(page).to_have_url(re.compile(r"/consultation/new\?condition=palmoplantar-pustulosis$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Klauskite dermatologo")
    expect(page.locator(".condition-chosen")).to_contain_text("Delnų ir padų pustuliozė")
    expect(page.get_by_label("Dėl kokios ligos kreipiatės?")).to_have_value("palmoplantar-pustulosis")
    assert fits_width(page)

    fill_in_the_form_in_lithuanian(page)
    page.get_by_label("Iš toliau · 1 sritis").set_input_files(str(sideways))
    page.get_by_label("Iš arti · 1 sritis").set_input_files(str(close_up))
    expect(page.locator(".slot-preview .photo-preview")).to_have_count(2)
    expect(page.locator(".slot-preview").get_by_role("button", name=re.compile("Pašalinti")).first).to_be_visible()
    page.get_by_role("button", name="Siųsti dermatologui").click()

    expect(page).to_have_url(f"{live_server.url}/consultation/received")
    expect(page.get_by_role("heading", name="Dėkojame. Jūsų užklausa išsiųsta.")).to_be_visible()
    expect(page.locator(".due-line")).to_contain_text("Dermatologas atsakys iki")
    expect(page.locator(".due-line time")).to_have_text(LOCAL_DATE_TIME)
    expect(page.get_by_role("heading", name="Jūsų privati nuoroda")).to_be_visible()
    reference = page.locator("#reference").inner_text()
    report = AccessibilityReport()
    report.check(page, "confirmation (lt)")
    report.assert_clean()
    assert fits_width(page)

    page.locator("#private-link").click()
    expect(page.get_by_role("heading", name=re.compile(f"Jūsų konsultacija {reference}"))).to_be_visible()
    expect(page.locator("#status")).to_have_text("Gauta")
    expect(page.locator("#due-at")).to_have_text(LOCAL_DATE_TIME)
    expect(page.locator(".photo-grid img")).to_have_count(2)
    assert fits_width(page)

    with live_server.app.app_context():
        stored = db.session.execute(select(ConsultationRequest)).scalar_one()
        assert stored.reference == reference and stored.language == "lt"
        db.session.remove()
    subject, text, html = patient_email(live_server.app, "request_received")
    assert subject == f"Gavome jūsų užklausą {reference}"
    assert "Dermatologas atsakys per 24 val." in text and "Hello" not in text
    assert '<html lang="lt">' in html
    assert console_errors == []


@pytest.fixture
def lithuanian_request(live_server):
    """A dermatologist, and a Lithuanian patient's request that has waited 21 hours (at risk)."""
    with live_server.app.app_context():
        derm = make_user("dermatologist", email="ruta@clinic.example", name="Dr. Rūta Kazlauskienė")
        consultation, _ = make_consultation(
            created_at=utcnow() - timedelta(hours=21),
            email="ona@example.com",
            description="Rankų delnai parausta ir niežti jau tris savaites.",
            condition_slug="atopic-dermatitis",
            language="lt",
        )
        make_photo(consultation, size=(1200, 900))
        details = {"email": derm.email, "reference": consultation.reference}
        db.session.remove()
    return details


def test_dermatologist_works_the_queue_in_lithuanian(live_server, page, lithuanian_request, console_errors):
    sign_in(page, live_server.url, lithuanian_request["email"], "lt")
    expect(page).to_have_url(f"{live_server.url}/queue/")
    expect(page.get_by_role("heading", name="Peržiūros eilė")).to_be_visible()
    badge = page.locator("[data-countdown]").first
    expect(badge).to_contain_text(re.compile(r"gresia vėlavimas · liko 2 val\. \d+ min\."))
    row = page.locator(".queue-row").first
    expect(row).to_contain_text("Atopinis dermatitas (egzema)")  # the condition in the reader's language

    page.locator("a.reference").first.click()
    expect(page.get_by_role("heading", name=lithuanian_request["reference"])).to_be_visible()
    expect(page.get_by_text("Rankų delnai parausta ir niežti jau tris savaites.")).to_be_visible()
    expect(page.locator(".patient-sent dd").filter(has_text="Lietuvių")).to_have_count(1)  # the patient's language
    page.get_by_role("button", name="Paimti šią užklausą").click()
    expect(page.get_by_text("Paėmėte šią užklausą.")).to_be_visible()

    page.get_by_label("Įvertinimas ir tikėtina diagnozė").fill("Panašu į kontaktinį rankų dermatitą.")
    page.get_by_label("Rekomenduojamas gydymas").fill("Riebus minkštiklis po kiekvieno rankų plovimo.")
    page.get_by_label("Tolesni patarimai").fill("Jei po keturių savaičių nepagerės, atsiųskite naujų nuotraukų.")
    page.get_by_role("button", name="Siųsti atsakymą").click()

    expect(page.get_by_text("Jūsų atsakymas paskelbtas paciento puslapyje")).to_be_visible()
    expect(page.locator("[data-status]")).to_have_text("Atsakyta")
    expect(page.locator(".message-answer")).to_contain_text("Panašu į kontaktinį rankų dermatitą.")

    # The patient chose Lithuanian, so the "your answer is ready" email is in Lithuanian.
    subject, text, _ = patient_email(live_server.app, "patient_reply_ready")
    assert subject == f"Dermatologas jums atsakė ({lithuanian_request['reference']})"
    assert "kontaktin" not in text  # never the answer itself
    assert console_errors == []


@pytest.fixture
def question_for_a_lithuanian_patient(live_server):
    """A Lithuanian patient's request that the dermatologist has claimed and asked a question about."""
    from app.consultations import staff_actions as actions

    with live_server.app.app_context():
        derm = make_user("dermatologist", email="ruta@clinic.example", name="Dr. Rūta Kazlauskienė")
        consultation, token = make_consultation(created_at=utcnow() - timedelta(hours=2), language="lt")
        make_photo(consultation)
        actions.claim(consultation, derm, utcnow())
        actions.ask(
            consultation, derm, "Ar galėtumėte atsiųsti kairiojo delno nuotrauką iš arti, dienos šviesoje?", utcnow()
        )
        db.session.commit()
        ids = consultation.id, derm.id
        db.session.remove()
    return ids, token


def test_patient_replies_and_reads_the_answer_in_lithuanian(
    live_server, page, question_for_a_lithuanian_patient, tmp_path, console_errors
):
    from app.consultations import staff_actions as actions
    from app.models import User

    (request_id, derm_id), token = question_for_a_lithuanian_patient
    close_up = tmp_path / "delnas.jpg"
    close_up.write_bytes(photo_bytes(size=(900, 700), colour=(196, 120, 110)))
    page.set_viewport_size(PHONE)

    page.goto(f"{live_server.url}/c/{token}?lang=lt")
    expect(page.locator("#status")).to_have_text("Jums klausimas")
    expect(page.get_by_text("kairiojo delno nuotrauką")).to_be_visible()
    expect(page.locator("#dermatologist")).to_have_text("Dr. Rūta Kazlauskienė")
    assert fits_width(page)

    page.get_by_role("link", name="Atsakyti į klausimą").click()
    page.get_by_label("Jūsų žinutė").fill("Štai nuotrauka iš arti. Labiausiai niežti naktį.")
    page.get_by_label("Pridėti nuotraukų (neprivaloma)").set_input_files(str(close_up))
    expect(page.locator("#photos-chosen")).to_contain_text("Pasirinktos nuotraukos: delnas.jpg")
    page.get_by_role("button", name="Siųsti atsakymą").click()

    expect(page.get_by_text("Jūsų žinutę gavo Dr. Rūta Kazlauskienė.")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Nagrinėjama")
    expect(page.locator(".message-patient_reply")).to_contain_text("Labiausiai niežti naktį.")
    expect(page.locator(".message-patient_reply img")).to_have_count(1)
    assert fits_width(page)

    with live_server.app.app_context():
        consultation = db.session.get(ConsultationRequest, request_id)
        answer = actions.Answer(
            assessment="Panašu į dishidrozinę rankų egzemą.",
            treatment="Mometazono kremas kartą per dieną dvi savaites, paskui riebus minkštiklis.",
            follow_up="Jei po keturių savaičių nepagerės, parašykite mums čia.",
        )
        actions.answer(consultation, db.session.get(User, derm_id), answer, utcnow())
        db.session.commit()
        db.session.remove()
    page.reload()
    expect(page.locator("#status")).to_have_text("Atsakyta")
    answer_box = page.locator(".message-answer")
    expect(answer_box.get_by_role("heading", name="Įvertinimas ir tikėtina diagnozė")).to_be_visible()
    expect(answer_box).to_contain_text("dishidrozinę rankų egzemą")
    expect(page.get_by_role("heading", name="Parašykite papildomą žinutę")).to_be_visible()
    assert fits_width(page)

    # The answer-ready email is in the patient's language, and says nothing about their skin.
    with live_server.app.app_context():
        emails = db.session.execute(
            select(OutboundEmail).where(OutboundEmail.template == "patient_reply_ready").order_by(OutboundEmail.id)
        ).scalars()
        subjects = [render(email)[0] for email in emails]
        db.session.remove()
    assert subjects[-1].startswith("Dermatologas jums atsakė")
    assert console_errors == []
