"""Medical review as data: the review line on each page, drafts kept from patients (and from every
cache), and the staff list of articles due for review, with the clock pinned."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from xml.etree import ElementTree

import pytest
import time_machine

from app.conditions.content import Library
from app.conditions.library import articles
from app.conditions.review import ReviewState, review_rows
from tests.articles import CONTENT, app_reading, write_article, write_pair
from tests.factories import login_as, make_user

DRAFT = "pityriasis-rosea"  # one of the articles the home page features
BANNER = "Draft — not visible to patients"
# 1 December 2026, 11:00 in Vilnius.
PINNED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def content(tmp_path):
    folder = tmp_path / "conditions"
    folder.mkdir()
    write_pair(folder, "acne", related=[DRAFT, "psoriasis"])
    write_pair(folder, "psoriasis", related=["acne"])
    write_pair(folder, DRAFT, related=["acne"], status="draft")
    return folder


@pytest.fixture
def app(tmp_path, content):
    with app_reading(tmp_path, content) as app:
        yield app


def text_of(response) -> str:
    return response.get_data(as_text=True)


def links_to(page: str, slug: str) -> bool:
    return f'href="/conditions/{slug}"' in page


def sitemap_locations(client) -> set[str]:
    tree = ElementTree.fromstring(client.get("/sitemap.xml").data)
    return {el.text or "" for el in tree.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")}


# --- Drafts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "lt"])
def test_patients_never_see_a_draft_anywhere(app, lang):
    reader = app.test_client()
    reader.get(f"/?lang={lang}")
    assert reader.get(f"/conditions/{DRAFT}").status_code == 404
    assert not links_to(text_of(reader.get("/conditions/")), DRAFT)
    assert not links_to(text_of(reader.get("/")), DRAFT)
    acne = text_of(reader.get("/conditions/acne"))
    assert links_to(acne, "psoriasis") and not links_to(acne, DRAFT)  # related links
    found = text_of(reader.get("/conditions/", query_string={"q": "pityriasis"}))
    assert not links_to(found, DRAFT) and 'href="/consultation/new"' in found
    assert f"http://localhost/conditions/{DRAFT}" not in sitemap_locations(reader)


@pytest.mark.parametrize("role", ["dermatologist", "staff", "admin"])
def test_signed_in_staff_of_any_role_see_drafts_marked_as_drafts(app, client, role):
    login_as(client, make_user(role))
    page = client.get(f"/conditions/{DRAFT}")
    assert page.status_code == 200 and BANNER in text_of(page)
    assert "no-store" in page.headers["Cache-Control"]
    index = text_of(client.get("/conditions/"))
    assert links_to(index, DRAFT) and ">Draft</span>" in index
    assert links_to(text_of(client.get("/conditions/", query_string={"q": "pityriasis"})), DRAFT)
    assert links_to(text_of(client.get("/conditions/acne")), DRAFT)
    assert links_to(text_of(client.get("/")), DRAFT)
    assert BANNER not in text_of(client.get("/conditions/acne"))
    # Search engines are told only of what patients can read, whoever asks.
    assert f"http://localhost/conditions/{DRAFT}" not in sitemap_locations(client)


def test_no_cache_hands_a_staff_view_to_the_public_or_the_public_view_to_staff(app):
    staff = app.test_client()
    login_as(staff, make_user("staff"))
    cookieless = app.test_client(use_cookies=False)
    with_cookie = app.test_client()
    with_cookie.get("/?lang=en")  # an anonymous session cookie: the in-app page cache serves this one
    pages = ("/", "/conditions/", "/conditions/acne", "/conditions/?q=pityriasis")
    for path in pages:  # staff first, so a staff view would be the first thing any cache kept
        assert links_to(text_of(staff.get(path)), DRAFT)
    for path in pages * 2:  # twice: the second answer comes from the caches
        for reader in (cookieless, with_cookie):
            assert not links_to(text_of(reader.get(path)), DRAFT), path
            assert "Sign out" not in text_of(reader.get(path))
        assert cookieless.get(f"/conditions/{DRAFT}").status_code == 404
    for path in pages:  # and the public copies now cached are not what staff get
        assert links_to(text_of(staff.get(path)), DRAFT)
    assert staff.get(f"/conditions/{DRAFT}").status_code == 200


def test_an_article_turned_into_a_draft_leaves_every_cached_page_at_once(app, content):
    reader = app.test_client(use_cookies=False)
    assert links_to(text_of(reader.get("/conditions/")), "psoriasis")
    assert reader.get("/conditions/psoriasis").status_code == 200
    write_pair(content, "psoriasis", related=["acne"], status="draft")
    articles()._checked_at = float("-inf")  # skip the once-a-second recheck window
    assert not links_to(text_of(reader.get("/conditions/")), "psoriasis")
    assert reader.get("/conditions/psoriasis").status_code == 404


# --- The review line on each page ----------------------------------------------------------------------


def review_line(page: str) -> str:
    line = re.search(r'<p class="reviewed"[^>]*>(.*?)</p>', page, re.S).group(1)
    return re.sub(r"<[^>]+>", "", line)


def test_an_unreviewed_article_says_it_awaits_a_dermatologist(client):
    assert review_line(text_of(client.get("/conditions/acne"))) == (
        "Last reviewed on November 20, 2026; awaiting review by a dermatologist"
    )
    lithuanian = review_line(text_of(client.get("/conditions/acne?lang=lt")))
    assert lithuanian == "Paskutinį kartą peržiūrėta 2026 m. lapkričio 20 d.; laukiama dermatologo peržiūros"


def test_a_named_reviewer_is_shown_with_the_date(client, content):
    write_pair(content, "psoriasis", related=["acne"], reviewed_by={"name": "Dr Ona Jonaitė"})
    page = text_of(client.get("/conditions/psoriasis"))
    assert review_line(page) == "Medically reviewed by Dr Ona Jonaitė on November 20, 2026"
    data = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S).group(1))
    assert data["reviewedBy"] == {"@type": "Person", "name": "Dr Ona Jonaitė"}
    lithuanian = review_line(text_of(client.get("/conditions/psoriasis?lang=lt")))
    assert lithuanian == "Medicininį turinį peržiūrėjo Dr Ona Jonaitė 2026 m. lapkričio 20 d."


def test_an_account_reviewer_is_shown_by_the_accounts_name(client, content):
    make_user("dermatologist", email="ruta.derm@clinic.example", name="Dr Rūta Petraitė")
    write_pair(content, "psoriasis", related=["acne"], reviewed_by={"account": "Ruta.Derm@clinic.example"})
    page = text_of(client.get("/conditions/psoriasis"))
    assert review_line(page) == "Medically reviewed by Dr Rūta Petraitė on November 20, 2026"


@pytest.mark.parametrize("account", ["nobody@clinic.example", "desk@clinic.example"])
def test_an_unknown_or_non_dermatologist_account_counts_as_no_review(client, content, account):
    make_user("staff", email="desk@clinic.example", name="Front Desk")
    write_pair(content, "psoriasis", related=["acne"], reviewed_by={"account": account})
    page = text_of(client.get("/conditions/psoriasis"))
    assert review_line(page).endswith("awaiting review by a dermatologist")
    assert "Front Desk" not in page and "reviewedBy" not in page


# --- The staff list of articles due for review ------------------------------------------------------


def write_review_cases(folder) -> None:
    write_pair(folder, "overdue", last_reviewed=date(2025, 10, 1), reviewed_by={"name": "Dr Ona Jonaitė"})
    write_pair(folder, "due-soon", last_reviewed=date(2025, 12, 20), reviewed_by={"account": "ruta@clinic.example"})
    write_pair(folder, "due-in-30-days", last_reviewed=date(2026, 6, 1), next_review=date(2026, 12, 31))
    write_pair(folder, "fresh", last_reviewed=date(2026, 11, 20))
    write_pair(folder, "unknown-reviewer", reviewed_by={"account": "left@clinic.example"})
    write_pair(folder, "a-draft", status="draft")


EXPECTED_ORDER = ["overdue", "due-soon", "due-in-30-days", "a-draft", "fresh", "unknown-reviewer"]
EXPECTED_STATES = {
    "overdue": {ReviewState.OVERDUE},
    "due-soon": {ReviewState.DUE_SOON},
    "due-in-30-days": {ReviewState.DUE_SOON, ReviewState.AWAITING_FIRST_REVIEW},
    "fresh": {ReviewState.AWAITING_FIRST_REVIEW},
    "unknown-reviewer": {ReviewState.UNKNOWN_REVIEWER, ReviewState.AWAITING_FIRST_REVIEW},
    "a-draft": {ReviewState.DRAFT, ReviewState.AWAITING_FIRST_REVIEW},
}


def test_review_rows_put_overdue_first_then_due_soon(tmp_path):
    write_review_cases(tmp_path)
    versions = Library(tmp_path).every_version()
    rows = review_rows(versions, {"ruta@clinic.example": "Dr Rūta Petraitė"}, today=date(2026, 12, 1))
    assert [(row.article.slug, row.article.lang) for row in rows] == [
        (slug, lang) for slug in EXPECTED_ORDER for lang in ("en", "lt")
    ]
    assert {row.article.slug: set(row.states) for row in rows} == EXPECTED_STATES
    reviewers = {row.article.slug: row.review.reviewer for row in rows}
    assert reviewers["overdue"] == "Dr Ona Jonaitė" and reviewers["due-soon"] == "Dr Rūta Petraitė"
    assert reviewers["unknown-reviewer"] is None


def test_an_article_is_due_on_its_review_date_and_overdue_the_day_after(tmp_path):
    write_article(tmp_path, "one", last_reviewed=date(2026, 1, 10), reviewed_by={"name": "Dr A"})
    (article,) = Library(tmp_path).every_version()
    assert article.next_review == date(2027, 1, 10)
    states = {day: review_rows([article], {}, today=day)[0].states for day in (date(2026, 12, 10), date(2026, 12, 11))}
    assert states == {date(2026, 12, 10): (), date(2026, 12, 11): (ReviewState.DUE_SOON,)}
    assert review_rows([article], {}, today=date(2027, 1, 10))[0].states == (ReviewState.DUE_SOON,)
    assert review_rows([article], {}, today=date(2027, 1, 11))[0].states == (ReviewState.OVERDUE,)


def table_rows(page: str) -> list[tuple[str, list[str]]]:
    """(article link, states) for each row of the review table."""
    rows = re.findall(r"<tr>\s*<td><a href=\"([^\"]+)\".*?</tr>", page, re.S)
    bodies = re.findall(r"<tr>\s*<td><a href=.*?</tr>", page, re.S)
    return [(link, re.findall(r'data-state="([a-z_]+)"', body)) for link, body in zip(rows, bodies, strict=True)]


def test_the_review_list_is_for_signed_in_staff_only(client):
    response = client.get("/staff/articles")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["dermatologist", "staff", "admin"])
def test_staff_see_every_article_in_each_language_overdue_first(client, content, role):
    for path in content.iterdir():
        path.unlink()
    write_review_cases(content)
    make_user("dermatologist", email="ruta@clinic.example", name="Dr Rūta Petraitė")
    user = make_user(role)
    with time_machine.travel(PINNED, tick=False):  # signing in too: a session idle for a day has ended
        login_as(client, user)
        response = client.get("/staff/articles")
    assert response.status_code == 200 and "no-store" in response.headers["Cache-Control"]
    page = text_of(response)
    rows = table_rows(page)
    assert [link for link, _ in rows] == [
        f"/conditions/{slug}?lang={lang}" for slug in EXPECTED_ORDER for lang in ("en", "lt")
    ]
    assert {link.split("?")[0].rsplit("/", 1)[1]: set(states) for link, states in rows} == EXPECTED_STATES
    assert "Dr Rūta Petraitė" in page and "Dr Ona Jonaitė" in page and "left@clinic.example" in page
    for label in ("Overdue", "Due within 30 days", "Awaiting first medical review", "Draft"):
        assert f">{label}</span>" in page
    assert 'href="/staff/articles"' in page  # the navigation links to it
    # The red-flag questions are reviewed like the articles, and listed with them.
    assert "red-flag questions on the consultation form (content/triage.yaml) were last reviewed on" in page


def test_the_review_list_counts_days_in_the_clinics_time_zone(client, content):
    write_pair(content, "due-in-30-days", last_reviewed=date(2026, 6, 1), next_review=date(2026, 12, 31))
    user = make_user("staff")
    # 22:30 UTC on 31 December is already 1 January in Vilnius: the review is a day overdue there.
    with time_machine.travel(datetime(2026, 12, 31, 22, 30, tzinfo=UTC), tick=False):
        login_as(client, user)
        rows = dict(table_rows(text_of(client.get("/staff/articles"))))
    assert rows["/conditions/due-in-30-days?lang=en"][0] == "overdue"


def test_the_real_library_lists_every_article_in_both_languages(tmp_path):
    with app_reading(tmp_path, CONTENT) as app:
        client, user = app.test_client(), make_user("staff")
        with time_machine.travel(PINNED, tick=False):
            login_as(client, user)
            links = [link for link, _ in table_rows(text_of(client.get("/staff/articles")))]
    files = [
        path.name.split(".")[0] + ("?lang=lt" if path.name.endswith(".lt.md") else "?lang=en")
        for path in CONTENT.glob("*.md")
    ]
    assert sorted(links) == sorted(f"/conditions/{name}" for name in files)
