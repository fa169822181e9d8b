"""English and Lithuanian: every interface string translated, the language chosen and remembered,
dates in the clinic's time zone and the reader's language, the patient's emails in their language,
and condition articles in Lithuanian with an English fallback."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import pytest
from flask import g, request_started
from flask_babel import force_locale, ngettext, refresh
from sqlalchemy import select

from app.conditions.content import SECTIONS_BY_LANG, Library, parse
from app.extensions import db
from app.models import ConsultationRequest, OutboundEmail
from app.outbox import render
from app.templating import when
from tests.articles import app_reading, copy_of_the_library
from tests.catalogs import LITHUANIAN_PO, ROOT, compile_catalogs, extract_messages, read_catalog
from tests.factories import submit_request, use_settings

CONTENT = ROOT / "content" / "conditions"
LITHUANIAN_ARTICLES = sorted(CONTENT.glob("*.lt.md"))
EMAIL_TEMPLATES = sorted(p.stem for p in (ROOT / "templates" / "emails").glob("*.txt") if p.stem != "base")


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogs():
    compile_catalogs()


def _forget_language(sender, **extra) -> None:
    """Tests keep one app context (one `g`) open across requests, and Flask-Babel caches the
    locale on `g`; in production each request starts afresh, so each test request does too."""
    g.pop("_flask_babel", None)


@pytest.fixture
def client(app):
    request_started.connect(_forget_language, app)
    yield app.test_client()
    request_started.disconnect(_forget_language, app)


def text_of(response) -> str:
    return response.get_data(as_text=True)


def page_language(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html).group(1)


# --- The catalogue ---------------------------------------------------------------------------------


def test_every_interface_string_has_a_lithuanian_translation(tmp_path):
    """Fails when someone adds a string and nobody translates it: run `make messages`, then
    translate the entries listed here in translations/lt/LC_MESSAGES/messages.po."""
    extracted = extract_messages(tmp_path / "messages.pot")
    lithuanian = read_catalog(LITHUANIAN_PO, locale="lt")
    untranslated = []
    for message in extracted:
        if not message.id:
            continue
        entry = lithuanian.get(message.id, message.context)
        forms = entry.string if entry is not None else None
        forms = forms if isinstance(forms, tuple | list) else (forms,)
        if entry is None or entry.fuzzy or not all(forms):
            where = ", ".join(f"{os.path.relpath(path, ROOT)}:{line}" for path, line in message.locations[:2])
            msgid = message.id[0] if isinstance(message.id, tuple) else message.id
            untranslated.append(f"  {msgid!r}  ({where})")
    assert not untranslated, (
        f"{len(untranslated)} interface string(s) have no Lithuanian translation. Run `make messages`, "
        "then translate them in translations/lt/LC_MESSAGES/messages.po:\n" + "\n".join(untranslated)
    )


def test_lithuanian_catalogue_has_three_plural_forms_and_matching_placeholders():
    lithuanian = read_catalog(LITHUANIAN_PO, locale="lt")
    assert lithuanian.num_plurals == 3
    assert "n%10==1 && n%100!=11" in lithuanian.plural_expr
    problems = []
    for message in lithuanian:
        if message.id and message.pluralizable and message.string and len(message.string) != 3:
            problems.append(f"{message.id[0]!r}: {len(message.string)} plural forms")
        # Babel's own checks: the same %(name)s placeholders in msgid and msgstr, and plural forms.
        problems += [f"{message.id!r}: {error}" for error in message.check(lithuanian)]
    assert problems == []


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "1 nuotrauka"),
        (2, "2 nuotraukos"),
        (9, "9 nuotraukos"),
        (10, "10 nuotraukų"),
        (11, "11 nuotraukų"),
        (21, "21 nuotrauka"),
        (22, "22 nuotraukos"),
    ],
)
def test_lithuanian_plurals_pick_the_right_form(app, count, expected):
    with app.test_request_context("/"), force_locale("lt"):
        assert ngettext("%(num)d photo", "%(num)d photos", count) == expected


# --- Choosing the language ------------------------------------------------------------------------


def test_lang_parameter_switches_and_the_session_remembers_it(client):
    home = text_of(client.get("/?lang=lt"))
    assert page_language(home) == "lt"
    assert "Klauskite dermatologo" in home
    later = text_of(client.get("/conditions/"))
    assert page_language(later) == "lt" and "Odos ligos nuo A iki Ž" in later
    back = text_of(client.get("/conditions/?lang=en"))
    assert page_language(back) == "en" and "Skin conditions A–Z" in back
    assert page_language(text_of(client.get("/"))) == "en"


def test_default_comes_from_the_browser_and_an_unknown_choice_is_ignored(client):
    lithuanian_browser = {"Accept-Language": "lt-LT,lt;q=0.9,en;q=0.5"}
    assert page_language(text_of(client.get("/", headers=lithuanian_browser))) == "lt"
    assert page_language(text_of(client.get("/", headers={"Accept-Language": "de-DE,de"}))) == "en"
    assert page_language(text_of(client.get("/?lang=xx", headers={"Accept-Language": "de"}))) == "en"


def test_the_language_switch_links_to_the_same_page_in_the_other_language(client):
    page = text_of(client.get("/conditions/acne?lang=lt"))
    switch = re.search(r'<nav class="lang-switch"[^>]*>(.*?)</nav>', page, re.S).group(1)
    assert 'href="/conditions/acne?lang=en"' in switch and 'hreflang="en"' in switch
    assert 'aria-current="true" lang="lt"' in switch


def test_a_form_sent_back_with_corrections_switches_language_on_the_same_form(client):
    client.get("/?lang=lt")
    page = text_of(submit_request(client, full_name=""))
    switch = re.search(r'<nav class="lang-switch"[^>]*>(.*?)</nav>', page, re.S).group(1)
    assert 'href="/consultation/new?lang=en"' in switch
    assert "Įveskite savo vardą ir pavardę." in page  # the error message, in Lithuanian


# --- Dates and times --------------------------------------------------------------------------------


def test_dates_are_shown_in_vilnius_time_in_the_readers_language(app):
    summer = datetime(2026, 7, 1, 9, 5, tzinfo=UTC)  # 12:05 in Vilnius (UTC+3)
    winter = datetime(2026, 1, 15, 9, 5, tzinfo=UTC)  # 11:05 in Vilnius (UTC+2)
    with app.test_request_context("/?lang=lt"):
        refresh()
        assert when(summer) == "2026-07-01 12:05"  # no seconds: they mean nothing to a reader
        assert when(winter) == "2026-01-15 11:05"
        assert "liepos" in when(summer, "long")
    with app.test_request_context("/?lang=en"):
        refresh()
        assert when(summer) == "Jul 1, 2026, 12:05\u202fPM"  # CLDR puts a narrow space before PM


def test_last_reviewed_date_is_written_out_in_lithuanian(client):
    page = text_of(client.get("/conditions/acne?lang=lt"))
    assert "2026 m. lapkričio 20 d." in page


# --- The patient's language travels with the request -------------------------------------------------


def test_a_lithuanian_patient_gets_lithuanian_emails(client):
    client.get("/?lang=lt")
    response = submit_request(client)
    assert response.status_code == 303
    consultation = db.session.execute(select(ConsultationRequest)).scalar_one()
    assert consultation.language == "lt"
    email = _email_to(consultation.patient_email, "request_received")
    assert email.language == "lt"
    subject, text, html = render(email)
    assert subject == f"Gavome jūsų užklausą {consultation.reference}"
    assert text.startswith("Sveiki,") and "Dermatologas atsakys per 24 val." in text
    assert "Hello" not in text and "dermatologist" not in text
    assert '<html lang="lt">' in html and "Atverti privatų puslapį" in html


def test_an_english_patient_gets_english_emails(client):
    client.get("/?lang=en")
    submit_request(client)
    consultation = db.session.execute(select(ConsultationRequest)).scalar_one()
    subject, text, _ = render(_email_to(consultation.patient_email, "request_received"))
    assert consultation.language == "en"
    assert subject == f"We have received your request {consultation.reference}" and text.startswith("Hello,")


def _email_to(recipient: str, template: str) -> OutboundEmail:
    return db.session.execute(
        select(OutboundEmail).where(OutboundEmail.recipient == recipient, OutboundEmail.template == template)
    ).scalar_one()


@pytest.mark.parametrize("template", EMAIL_TEMPLATES)
def test_every_email_reads_differently_in_lithuanian(app, template):
    """Each email template renders in both languages, and the Lithuanian one is really translated."""
    context = {
        "reference": "DRM-7K3Q9X",
        "link": "http://localhost/x",
        "links": [["DRM-7K3Q9X", "http://localhost/c/x"]],
        "lost_link": "http://localhost/consultation/link",
        "due_local": "2026-11-25 14:00",
        "is_question": False,
        "round": 1,
        # The escalation to the medical lead, a rota gap and the weekly summary.
        "hours": 4,
        "gap_from": "2026-12-05 14:00",
        "gap_to": "2026-12-07 08:00",
        "open_until": False,
        "open_requests": 1,
        "expected_requests": 2.0,
        "first_breach": "2026-12-06 15:30",
        "week": "2026-W48",
        "first_day": "2026-11-23",
        "last_day": "2026-11-29",
        "met": 12,
        "missed": 2,
        "share": 85.7,
        "first_responses": 11,
        "median_hours": 6.5,
        "p90_hours": 21.0,
        "dermatologists": [["Dr Rūta Jonaitė", 7, 1, 6, 5.5], ["", 0, 1, 0, None]],
        "late_reasons": [["workload", 1], ["none", 1]],
        "ratings": {"count": 3, "average": 4.7, "by_dermatologist": []},
        "weeks": 6,
    }
    rendered = {}
    for language in ("en", "lt"):
        email = OutboundEmail(recipient="a@example.com", template=template, language=language, context=context)
        rendered[language] = render(email)
    assert rendered["en"][0] != rendered["lt"][0], "the subject is not translated"
    assert rendered["en"][1] != rendered["lt"][1], "the text body is not translated"
    assert '<html lang="lt">' in rendered["lt"][2]


# --- Condition articles -------------------------------------------------------------------------------


def test_the_promised_articles_exist_in_lithuanian():
    slugs = {path.name.removesuffix(".lt.md") for path in LITHUANIAN_ARTICLES}
    assert {"palmoplantar-pustulosis", "pityriasis-rosea", "atopic-dermatitis", "acne"} <= slugs


@pytest.mark.parametrize("path", LITHUANIAN_ARTICLES, ids=lambda p: p.name)
def test_every_lithuanian_article_matches_its_english_original(path):
    article = parse(path)
    original = parse(CONTENT / f"{article.slug}.md")
    assert article.lang == "lt"
    assert [s.title for s in article.sections] == list(SECTIONS_BY_LANG["lt"])
    assert article.related == original.related and article.last_reviewed == original.last_reviewed
    assert article.title != original.title
    assert len(article.key_facts) == len(original.key_facts)
    words = len(re.sub("<[^>]+>", " ", article.html).split())
    assert words >= 350, f"{path.name} is only {words} words"


def test_a_translated_article_is_shown_in_lithuanian(client):
    page = text_of(client.get("/conditions/pityriasis-rosea?lang=lt"))
    assert "<h1>Rausvoji dedervinė</h1>" in page
    assert '<article class="article" lang="lt">' in page
    assert "Priežastys ir rizikos veiksniai" in page
    assert "nėra, todėl jis rodomas anglų kalba" not in page


@pytest.fixture
def scabies_untranslated(tmp_path):
    """Every article is translated now; a copy of the library without scabies.lt.md shows the fallback."""
    content = copy_of_the_library(tmp_path / "conditions")
    (content / "scabies.lt.md").unlink()
    with app_reading(tmp_path, content) as app:
        request_started.connect(_forget_language, app)
        yield app.test_client()
        request_started.disconnect(_forget_language, app)


def test_an_untranslated_article_falls_back_to_english_with_a_note(scabies_untranslated):
    page = text_of(scabies_untranslated.get("/conditions/scabies?lang=lt"))
    assert page_language(page) == "lt"
    assert '<article class="article" lang="en">' in page
    assert "Šio straipsnio lietuvių kalba dar nėra, todėl jis rodomas anglų kalba." in page
    assert "Causes and risk factors" in page and "Priežastys ir rizikos veiksniai" not in page
    translated = text_of(scabies_untranslated.get("/conditions/acne?lang=lt"))
    assert "Šio straipsnio lietuvių kalba dar nėra" not in translated


def test_index_and_home_show_lithuanian_titles_where_they_exist(scabies_untranslated):
    index = text_of(scabies_untranslated.get("/conditions/?lang=lt"))
    assert ">Atopinis dermatitas (egzema)</a>" in index and ">Atopic dermatitis (eczema)</a>" not in index
    assert '<li lang="en"><a href="/conditions/scabies">Scabies</a>' in index  # untranslated, marked English
    titles = re.findall(r'<a href="/conditions/[a-z-]+">([^<]+)</a>', index)
    assert titles.index("Spuogai (aknė)") > titles.index("Scabies")  # ordered by the title shown
    home = text_of(scabies_untranslated.get("/"))
    assert ">Delnų ir padų pustuliozė</a>" in home


def test_every_article_is_listed_in_lithuanian(client):
    index = text_of(client.get("/conditions/?lang=lt"))
    assert '<li lang="en">' not in index
    assert ">Niežai</a>" in index and ">Scabies</a>" not in index


def found_slugs(page: str) -> list[str]:
    return re.findall(r'<li(?: lang="[a-z]+")?><a href="/conditions/([a-z0-9-]+)">', page)


def test_search_finds_articles_by_lithuanian_or_english_words(app, client):
    client.get("/?lang=lt")
    found = text_of(client.get("/conditions/", query_string={"q": "egzema"}))
    slugs = found_slugs(found)
    # The eczemas, and the articles that name eczema among their other names or in their summary.
    assert {"atopic-dermatitis", "hand-eczema", "dyshidrotic-eczema", "contact-dermatitis"} <= set(slugs)
    assert len(slugs) == len(set(slugs)) > 1
    with app.test_request_context("/"), force_locale("lt"):
        count = ngettext("%(num)d article matches “%(q)s”.", "%(num)d articles match “%(q)s”.", len(slugs), q="egzema")
    assert str(count) in found
    by_english_name = text_of(client.get("/conditions/", query_string={"q": "pityriasis rosea"}))
    assert found_slugs(by_english_name) == ["pityriasis-rosea"] and "Rausvoji dedervinė" in by_english_name


@pytest.mark.parametrize(
    ("typed", "expected", "also_fine"),
    [
        ("spuogai", "acne", {"rosacea", "perioral-dermatitis"}),
        ("inkštirai", "acne", set()),
        ("pleiskanos", "seborrhoeic-dermatitis", set()),
        ("dedervinė", "fungal-skin-infections", {"pityriasis-rosea", "pityriasis-versicolor"}),
        ("dedervine", "fungal-skin-infections", {"pityriasis-rosea", "pityriasis-versicolor"}),
        ("niezai", "scabies", set()),
        ("NIEŽAI", "scabies", set()),
        ("saltlige", "cold-sores", set()),
    ],
)
def test_search_understands_lay_words_with_or_without_lithuanian_letters(client, typed, expected, also_fine):
    client.get("/?lang=lt")
    slugs = set(found_slugs(text_of(client.get("/conditions/", query_string={"q": typed}))))
    assert expected in slugs and slugs <= {expected} | also_fine


def test_search_with_no_match_offers_a_consultation_in_lithuanian(client):
    client.get("/?lang=lt")
    page = text_of(client.get("/conditions/", query_string={"q": "zzzz"}))
    assert found_slugs(page) == [] and 'href="/consultation/new"' in page
    assert "Tokio straipsnio kol kas neturime." in page


def test_library_lists_every_article_once_in_each_language():
    articles = Library(CONTENT)
    english, lithuanian = articles.all("en"), articles.all("lt")
    assert len(english) == len({c.slug for c in english}) == len(lithuanian) == len(LITHUANIAN_ARTICLES)
    assert {c.slug for c in english} == {c.slug for c in lithuanian}
    assert all(c.lang == "en" for c in english)
    assert all(c.lang == "lt" for c in lithuanian)


def test_staff_alerts_follow_the_language_each_person_uses(client, app):
    from tests.factories import login_as, make_user

    derm = make_user("dermatologist", email="derm.lt@clinic.example")
    other = make_user("dermatologist", email="derm.en@clinic.example")
    client.get("/login?lang=lt")
    login_as(client, derm)
    assert db.session.get(type(derm), derm.id).language == "lt"
    assert db.session.get(type(other), other.id).language == "en"

    patient = app.test_client()
    submit_request(patient)
    consultation = db.session.execute(select(ConsultationRequest)).scalar_one()
    to_lt = _email_to("derm.lt@clinic.example", "staff_new_request")
    to_en = _email_to("derm.en@clinic.example", "staff_new_request")
    to_desk = _email_to("alerts@clinic.example", "staff_new_request")
    assert (to_lt.language, to_en.language, to_desk.language) == ("lt", "en", "en")
    assert render(to_lt)[0] != render(to_en)[0]
    assert consultation.reference in render(to_lt)[0]


def test_the_alert_desk_can_have_its_emails_in_lithuanian(client, app, monkeypatch):
    use_settings(app, monkeypatch, STAFF_ALERT_LANGUAGE="lt")
    submit_request(app.test_client())
    assert _email_to("alerts@clinic.example", "staff_new_request").language == "lt"
