"""A case at a glance on the request page: coded answers in the reader's words (English and
Lithuanian), age and a child's mark, the condition's name, earlier requests from the same address,
and the neighbours that j/k and the page's links move to."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from flask_babel import force_locale

from app.consultations import staff_actions as actions
from app.queue.case import age_in_years, label, labels
from app.queue.listing import neighbours, next_unclaimed
from tests.factories import login_as, make_consultation, make_user

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pinned_clock():
    with time_machine.travel(NOW, tick=False):
        yield


# --- Labels and age: unit tests ---------------------------------------------------------------------


def test_labels_come_from_the_intake_form_in_the_readers_language(app):
    with force_locale("en"):
        assert label("sex", "other") == "Another answer, or I prefer not to say"
        assert labels("body_sites", ["arms", "hands"]) == ["Arms or armpits", "Hands or palms"]
        assert label("duration", "recurring") == "It comes and goes"
        assert labels("history", ["family_psoriasis", "smoking"]) == ["Psoriasis in my family", "I smoke"]
    with force_locale("lt"):
        assert label("body_sites", "arms") != "arms"
        assert label("body_sites", "arms") != "Arms or armpits"
        assert label("duration", "recurring") != "It comes and goes"
        assert "smoking" not in labels("history", ["smoking"])


def test_an_answer_retired_from_the_form_is_shown_as_stored(app):
    assert label("symptoms", "glowing") == "glowing"
    assert labels("symptoms", None) == []


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2008, 12, 1), date(2026, 11, 30), 17),  # the day before the 18th birthday
        (date(2008, 11, 30), date(2026, 11, 30), 18),  # on it
        (date(2012, 2, 29), date(2026, 2, 28), 13),  # a leap-day birthday in an ordinary year
        (date(2012, 2, 29), date(2026, 3, 1), 14),
    ],
)
def test_age_in_whole_years(born, on, age):
    assert age_in_years(born, on) == age


# --- The request page -------------------------------------------------------------------------------


def request_page(client, consultation, lang="en") -> str:
    response = client.get(f"/queue/{consultation.reference}?lang={lang}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_request_page_shows_labels_not_codes_in_both_languages(app, client):
    login_as(client, make_user("dermatologist"))
    consultation, _ = make_consultation(
        sex="other",
        body_sites=["arms"],
        duration="recurring",
        symptoms=["itching", "scaling"],
        history=["family_psoriasis", "smoking"],
        date_of_birth=date(1980, 5, 1),
        condition_slug="psoriasis",
    )
    page = request_page(client, consultation, "en")
    assert "Arms or armpits" in page and "It comes and goes" in page
    assert "Psoriasis in my family; I smoke" in page
    assert "Another answer, or I prefer not to say" in page
    assert "46 years old" in page
    assert "data-child" not in page

    page = request_page(client, consultation, "lt")
    facts = page.split('class="facts"')[1].split("</dl>")[0]
    for code in ("arms", "recurring", "family_psoriasis", "smoking", ">other<", "scaling"):
        assert code not in facts, f"{code} shown as a code on the Lithuanian page"
    with force_locale("lt"):
        assert label("body_sites", "arms") in facts
        assert label("duration", "recurring") in facts
    assert "Žvynelinė" in page  # the condition's Lithuanian name


def test_a_child_is_marked_clearly(app, client):
    login_as(client, make_user("dermatologist"))
    child, _ = make_consultation(date_of_birth=date(2017, 1, 15))
    page = request_page(client, child)
    assert "data-child" in page and "Child: 9 years old" in page
    assert "A parent or guardian may have written this request." in page


def test_earlier_requests_from_the_same_address_are_linked(app, client):
    login_as(client, make_user("dermatologist"))
    first, _ = make_consultation(email="ona@example.com", created_at=NOW - timedelta(days=60))
    other_patient, _ = make_consultation(email="jonas@example.com", created_at=NOW - timedelta(days=30))
    current, _ = make_consultation(email="ona@example.com")
    earlier = request_page(client, current).split("Earlier requests from this email address")[1].split("</ul>")[0]
    assert f'href="/queue/{first.reference}"' in earlier
    assert other_patient.reference not in earlier
    page = request_page(client, other_patient)
    assert "None: this is their first request." in page


def test_next_and_previous_follow_the_queue_order(app, client):
    derm = make_user("dermatologist")
    login_as(client, derm)
    oldest, _ = make_consultation(created_at=NOW - timedelta(hours=20))
    middle, _ = make_consultation(created_at=NOW - timedelta(hours=10))
    newest, _ = make_consultation(created_at=NOW - timedelta(hours=1))
    assert neighbours(middle.id).previous == oldest.reference
    assert neighbours(middle.id).next == newest.reference
    assert neighbours(oldest.id).previous is None
    page = request_page(client, middle)
    assert re.search(rf'rel="prev"[^>]*href="/queue/{oldest.reference}"', page)
    assert re.search(rf'rel="next"[^>]*href="/queue/{newest.reference}"', page)

    actions.claim(oldest, derm, NOW)
    assert next_unclaimed() == middle.reference
    assert next_unclaimed(excluding_id=middle.id) == newest.reference
