"""Red-flag triage: the rules table-tested in both languages, the file's checks, the advice page before
sending (the form is stored only once the patient has seen the advice), and what an urgent request
becomes: its own target and warning, first in the queue with a mark, one alert each to staff and the
on-call dermatologists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
import yaml
from sqlalchemy import func, select

from app.consultations import notify, triage
from app.consultations.alerts import check
from app.consultations.clock import AT_RISK, ON_TRACK, OVERDUE, clock_state
from app.extensions import db
from app.models import ConsultationRequest, OutboundEmail
from app.queue.listing import queue_page
from app.runtime import policies
from tests.factories import login_as, make_consultation, make_user, open_consultation_form, submit_request

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TRIAGE_FILE = Path(__file__).resolve().parent.parent / "content" / "triage.yaml"
QUESTIONS = triage.load(TRIAGE_FILE)


def keys_for(language: str, texts: list[str]) -> list[str]:
    """The question keys a patient ticks, found by the words they read in `language`."""
    by_text = {text: key for key, text in QUESTIONS.choices(language)}
    return [by_text[text] for text in texts]


# (language, the questions ticked as the patient reads them, the advice, words of the advice's title)
CASES = [
    ("en", [], None, None),
    ("en", ["A fever, or feeling very unwell, with a rash that is spreading"], "emergency", "call 112"),
    ("en", ["Blisters, or skin peeling off, over a large area"], "emergency", "call 112"),
    ("en", ["Sores in the mouth, eyes or genitals together with a rash"], "emergency", "call 112"),
    ("en", ["Swelling of the lips, tongue or face, or difficulty breathing or swallowing"], "emergency", "call 112"),
    ("en", ["Redness that spreads fast, with pain, heat or swelling"], "today", "see a doctor"),
    ("en", ["A mole or spot that bleeds, or has changed within a few weeks"], "today", "see a doctor"),
    (
        "en",
        ["A new rash since starting a new medicine, or while your immune system is weakened"],
        "today",
        "see a doctor",
    ),
    (
        "en",
        [
            "A mole or spot that bleeds, or has changed within a few weeks",
            "A fever, or feeling very unwell, with a rash that is spreading",
        ],
        "emergency",
        "call 112",
    ),
    ("lt", [], None, None),
    ("lt", ["Karščiuojate arba jaučiatės labai blogai, o bėrimas plinta"], "emergency", "skambinkite 112"),
    ("lt", ["Pūslės arba oda lupasi dideliame kūno plote"], "emergency", "skambinkite 112"),
    ("lt", ["Žaizdelės burnoje, akyse ar ant lytinių organų kartu su bėrimu"], "emergency", "skambinkite 112"),
    ("lt", ["Tinsta lūpos, liežuvis ar veidas, arba sunku kvėpuoti ar ryti"], "emergency", "skambinkite 112"),
    ("lt", ["Greitai plintantis paraudimas, kuris skauda, yra karštas ar tinsta"], "today", "dar šiandien"),
    ("lt", ["Apgamas ar dėmė kraujuoja arba pakito per kelias savaites"], "today", "dar šiandien"),
    (
        "lt",
        ["Naujas bėrimas, atsiradęs pradėjus vartoti naują vaistą arba esant nusilpusiam imunitetui"],
        "today",
        "dar šiandien",
    ),
    (
        "lt",
        [
            "Greitai plintantis paraudimas, kuris skauda, yra karštas ar tinsta",
            "Tinsta lūpos, liežuvis ar veidas, arba sunku kvėpuoti ar ryti",
        ],
        "emergency",
        "skambinkite 112",
    ),
]


@pytest.mark.parametrize(("language", "ticked", "level", "title_words"), CASES)
def test_the_advice_follows_the_most_severe_answer_in_each_language(language, ticked, level, title_words):
    assessment = triage.assess(keys_for(language, ticked), QUESTIONS)
    assert assessment.level == level
    assert assessment.urgent is (level is not None)
    assert [q.text(language) for q in assessment.reasons] == [
        text for _, text in QUESTIONS.choices(language) if text in ticked
    ]
    if level is not None:
        assert title_words in QUESTIONS.advice[level].title(language).lower()


@pytest.mark.parametrize(
    ("level", "seen", "may_store"),
    [
        (None, None, True),
        ("today", None, False),
        ("today", "today", True),
        ("today", "emergency", True),  # a more severe advice was seen
        ("emergency", "today", False),  # a milder one was not enough
        ("emergency", "emergency", True),
        ("emergency", "something else", False),
    ],
)
def test_a_request_is_stored_only_once_its_advice_was_seen(level, seen, may_store):
    reasons = tuple(q for q in QUESTIONS.questions if q.level == level)[:1]
    assert triage.confirmed(triage.Assessment(level, reasons), seen) is may_store


def test_none_of_these_and_unknown_answers_are_not_red_flags():
    assert triage.assess(["none", "not_a_question"], QUESTIONS) == triage.Assessment(None)


def test_the_file_is_reviewed_data_in_both_languages():
    raw = yaml.safe_load(TRIAGE_FILE.read_text(encoding="utf-8"))
    assert isinstance(raw["last_reviewed"], type(QUESTIONS.last_reviewed))
    assert len(QUESTIONS.questions) >= 6
    for question in QUESTIONS.questions:
        assert question.texts["en"] != question.texts["lt"]
    assert {q.level for q in QUESTIONS.questions} == set(triage.LEVELS)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["questions"][0].pop("lt"), "needs a text in each of en, lt"),
        (lambda d: d["questions"][0].update(advice="soon"), "needs advice: emergency or today"),
        (lambda d: d["questions"][1].update(key=d["questions"][0]["key"]), "two questions share a key"),
        (lambda d: d["advice"].pop("today"), "advice for 'today' is missing"),
        (lambda d: d.update(last_reviewed="last spring"), "must be a date"),
        (lambda d: d.update(questions=[]), "has no questions"),
    ],
)
def test_a_broken_file_is_refused_naming_the_problem(change, problem):
    data = yaml.safe_load(TRIAGE_FILE.read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(triage.TriageFileError, match=re.escape(problem)):
        triage.parse(data)


# --- The form: the advice page before sending ------------------------------------------------------


def count_requests() -> int:
    return db.session.execute(select(func.count(ConsultationRequest.id))).scalar_one()


@pytest.mark.parametrize(
    ("language", "flag", "title", "send_anyway"),
    [
        ("en", "changing_mole", "Please see a doctor in person today", "Send my request anyway"),
        ("lt", "fever_spreading_rash", "Nelaukite atsakymo internetu: skambinkite 112", "Vis tiek siųsti užklausą"),
    ],
)
def test_a_red_flag_answer_shows_the_advice_page_and_stores_nothing_yet(client, language, flag, title, send_anyway):
    client.get(f"/?lang={language}")
    _, key = open_consultation_form(client)
    response = submit_request(client, submission_key=key, red_flags=[flag])
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'<h1 id="advice-heading">{title}</h1>' in page
    assert QUESTIONS.get(flag).text(language) in page
    assert 'href="tel:112"' in page and send_anyway in page
    assert count_requests() == 0
    # The photo is kept on the server, ready to send with the same form.
    assert 'name="kept_photos"' in page and f'value="{key}"' in page


def test_sending_anyway_stores_an_urgent_request_with_its_own_target(client, app):
    derm = make_user("dermatologist", email="ona@clinic.example")
    make_user("dermatologist", email="away@clinic.example", active=False)
    with time_machine.travel(T0, tick=False):
        _, key = open_consultation_form(client)
        first = submit_request(client, submission_key=key, red_flags=["changing_mole", "mucosal_sores"])
        kept = re.findall(r'name="kept_photos" value="([0-9a-f]{32})"', first.get_data(as_text=True))
        response = submit_request(
            client,
            photos=[],
            submission_key=key,
            kept_photos=kept,
            red_flags=["changing_mole", "mucosal_sores"],
            triage_confirm="emergency",
        )
    assert response.status_code == 303
    stored = db.session.execute(select(ConsultationRequest)).scalar_one()
    assert stored.urgent and stored.triage_level == "emergency"
    assert stored.triage_flags == ["mucosal_sores", "changing_mole"]  # in the file's order
    assert stored.response_target_hours == 4 and stored.due_at == T0 + timedelta(hours=4)
    assert stored.clocks[0].urgent is True and len(stored.photos) == 1
    emails = db.session.execute(select(OutboundEmail)).scalars().all()
    alerts = sorted((e.recipient, e.template) for e in emails if e.template != "request_received")
    # One email each, the urgent one, to staff and every on-call (active) dermatologist; no routine alert.
    assert alerts == [("alerts@clinic.example", "urgent_request"), (derm.email, "urgent_request")]


def test_the_urgent_alert_is_queued_exactly_once_however_often_it_is_asked_for(app):
    make_user("dermatologist", email="ona@clinic.example")
    consultation, token = make_consultation(urgent=True, triage_level="today", response_target_hours=4)
    for _ in range(3):
        notify.request_submitted(consultation, token, policies().alerts)
        db.session.commit()
    urgent = db.session.execute(
        select(OutboundEmail.recipient).where(OutboundEmail.template == "urgent_request")
    ).scalars()
    assert sorted(urgent) == ["alerts@clinic.example", "ona@clinic.example"]


def test_a_confirmation_of_a_milder_advice_shows_the_more_severe_one(client):
    _, key = open_consultation_form(client)
    response = submit_request(client, submission_key=key, red_flags=["fever_spreading_rash"], triage_confirm="today")
    assert response.status_code == 200 and "Please do not wait for an online answer" in response.get_data(as_text=True)
    assert count_requests() == 0


def test_the_question_must_be_answered(client):
    response = submit_request(client, red_flags=None)
    assert response.status_code == 422
    assert "Tick what applies to you now, or “None of these”." in response.get_data(as_text=True)
    assert count_requests() == 0


def test_a_routine_request_is_not_urgent(client):
    assert submit_request(client).status_code == 303
    stored = db.session.execute(select(ConsultationRequest)).scalar_one()
    assert not stored.urgent and stored.response_target_hours is None and stored.triage_flags is None


# --- Urgent requests at work: warning, alerts, queue -------------------------------------------------


def test_an_urgent_request_is_at_risk_in_the_last_quarter_of_its_target(app):
    policy = policies().response
    due = T0 + timedelta(hours=4)
    assert clock_state(due, T0 + timedelta(hours=2, minutes=59), policy, 4) == ON_TRACK
    assert clock_state(due, T0 + timedelta(hours=3), policy, 4) == AT_RISK
    assert clock_state(due, due, policy, 4) == OVERDUE
    # Without its own target the clinic's warning applies: 4 hours before the due moment.
    assert clock_state(due, T0, policy) == AT_RISK


def test_the_at_risk_alert_for_an_urgent_request_comes_an_hour_before_it_is_due(app):
    make_user("dermatologist")  # at risk goes to the dermatologists on duty (no rota yet: every active one)
    consultation, _ = make_consultation(created_at=T0, urgent=True, triage_level="today", response_target_hours=4)
    assert check(policies(), T0 + timedelta(hours=2, minutes=30))["at_risk"] == 0
    assert check(policies(), T0 + timedelta(hours=3, minutes=5))["at_risk"] == 1
    assert consultation.due_at == T0 + timedelta(hours=4)


def test_urgent_requests_sort_first_in_the_queue_with_a_visible_mark(app, client):
    derm = make_user("dermatologist")
    older, _ = make_consultation(created_at=T0 - timedelta(hours=20))
    urgent, _ = make_consultation(
        created_at=T0,
        urgent=True,
        triage_level="emergency",
        triage_flags=["face_swelling_breathing"],
        response_target_hours=4,
    )
    for name in ("open", "unclaimed"):
        rows = queue_page(name, derm.id).rows
        assert [row.reference for row in rows] == [urgent.reference, older.reference]
        assert [row.urgent for row in rows] == [True, False]
    with time_machine.travel(T0, tick=False):
        login_as(client, derm)
        page = client.get("/queue/").get_data(as_text=True)
        detail = client.get(f"/queue/{urgent.reference}").get_data(as_text=True)
    first_row = page.split('<tr class="queue-row', 2)[1]
    assert urgent.reference in first_row and '<span class="badge badge-urgent">Urgent</span>' in first_row
    assert 'data-warning-hours="1.0"' in first_row
    assert "Red-flag answers" in detail and "call 112 or go to an emergency department" in detail
    assert "Swelling of the lips, tongue or face" in detail
