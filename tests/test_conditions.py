"""The condition library: every article valid in both languages, front matter (sources, review,
status), pages, search in both languages, 404s, sitemap and robots.txt."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date
from xml.etree import ElementTree

import pytest

from app.conditions.content import (
    REQUIRED_SECTIONS,
    SECTIONS_BY_LANG,
    ContentError,
    Library,
    Reviewer,
    Source,
    add_months,
    fold,
    parse,
)
from tests.articles import CONTENT, app_reading, write_article, write_pair

ENGLISH_FILES = sorted(p for p in CONTENT.glob("*.md") if "." not in p.stem)
ALL_FILES = sorted(CONTENT.glob("*.md"))
REQUIRED_SLUGS = {
    "palmoplantar-pustulosis",
    "pityriasis-rosea",
    "peeling-skin-syndrome",
    "mycosis-fungoides",
    "acne",
    "atopic-dermatitis",
    "psoriasis",
    "rosacea",
    "seborrhoeic-dermatitis",
    "contact-dermatitis",
    "urticaria",
    "fungal-skin-infections",
    "warts",
    "vitiligo",
    "melasma",
    "moles-and-melanoma",
    "hair-loss",
    "nail-fungus",
    "scabies",
    "hand-eczema",
}


def test_library_has_the_promised_conditions():
    slugs = {p.stem for p in ENGLISH_FILES}
    assert len(slugs) >= 20
    assert slugs >= REQUIRED_SLUGS


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_every_article_is_valid(path):
    condition = parse(path)
    slugs = {p.stem for p in ENGLISH_FILES}
    assert [s.title for s in condition.sections] == list(SECTIONS_BY_LANG[condition.lang])
    assert len(condition.related) >= 3
    assert set(condition.related) <= slugs, f"unknown related slugs in {path.name}"
    assert condition.slug not in condition.related
    assert len(set(condition.related)) == len(condition.related), f"a related slug repeats in {path.name}"
    assert condition.sources and condition.key_facts
    assert all(source.title for source in condition.sources)
    assert all(source.url is None or source.url.startswith("https://") for source in condition.sources)
    assert "<script" not in condition.html
    words = len(re.sub("<[^>]+>", " ", condition.html).split())
    assert words >= 350, f"{path.name} is only {words} words"


@pytest.mark.parametrize("path", ENGLISH_FILES, ids=lambda p: p.stem)
def test_each_article_and_its_translation_share_their_review_and_links(path):
    """What is true of the article, not of its language: the related list, the review and the status."""
    english = parse(path)
    lithuanian_file = CONTENT / f"{english.slug}.lt.md"
    assert lithuanian_file.exists(), f"{path.name} has no Lithuanian version"
    lithuanian = parse(lithuanian_file)
    for name in ("related", "last_reviewed", "reviewed_by", "next_review", "status"):
        assert getattr(lithuanian, name) == getattr(english, name), f"{lithuanian_file.name}: {name} differs"


def test_every_translation_has_an_english_original():
    assert {p.name.removesuffix(".lt.md") for p in CONTENT.glob("*.lt.md")} == {p.stem for p in ENGLISH_FILES}


def test_parse_refuses_a_file_without_front_matter(tmp_path):
    bad = tmp_path / "broken.md"
    bad.write_text("## Causes and risk factors\nno front matter\n", encoding="utf-8")
    with pytest.raises(ContentError, match="front matter"):
        parse(bad)


def test_markdown_html_is_sanitised(tmp_path):
    sections = "\n".join(f"## {title}\ntext\n" for title in REQUIRED_SECTIONS)
    article = tmp_path / "demo.md"
    article.write_text(
        "---\ntitle: Demo\nsummary: s\nkey_facts: [a]\nrelated: [x]\nlast_reviewed: 2026-01-01\nsources: [b]\n---\n"
        + sections
        + "\n<script>alert(1)</script>\n[x](javascript:alert(1))\n",
        encoding="utf-8",
    )
    html = parse(article).html
    assert "<script" not in html and 'href="javascript' not in html


def test_sources_are_titles_with_an_optional_https_link_and_plain_strings_still_work(tmp_path):
    sources = [{"title": "NICE: Acne vulgaris (NG198)", "url": "https://www.nice.org.uk/guidance/ng198"}]
    sources += [{"title": "BAD: patient leaflet"}, "NHS: Acne"]
    article = parse(write_article(tmp_path, "demo", sources=sources))
    assert article.sources == (
        Source("NICE: Acne vulgaris (NG198)", "https://www.nice.org.uk/guidance/ng198"),
        Source("BAD: patient leaflet", None),
        Source("NHS: Acne", None),
    )


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ({"title": "NHS", "url": "http://www.nhs.uk/conditions/acne/"}, "https"),
        ({"title": "NHS", "url": "javascript:alert(1)"}, "https"),
        ({"title": "NHS", "url": "https://"}, "https"),
        ({"url": "https://www.nhs.uk/conditions/acne/"}, "no title"),
        ({"title": "NHS", "link": "https://www.nhs.uk/"}, "mapping of title and url"),
    ],
)
def test_a_source_without_a_title_or_with_a_link_that_is_not_https_is_refused(tmp_path, source, complaint):
    with pytest.raises(ContentError, match=complaint):
        parse(write_article(tmp_path, "demo", sources=[source]))


def test_review_fields_default_to_published_unreviewed_and_due_in_twelve_months(tmp_path):
    article = parse(write_article(tmp_path, "demo", last_reviewed=date(2026, 11, 20)))
    assert article.reviewed_by is None
    assert article.next_review == date(2027, 11, 20)
    assert article.status == "published" and not article.is_draft


def test_review_fields_are_read_from_front_matter(tmp_path):
    by_account = parse(
        write_article(
            tmp_path,
            "one",
            reviewed_by={"account": " Ona.Derm@Clinic.Example "},
            next_review=date(2027, 5, 1),
            status="draft",
        )
    )
    assert by_account.reviewed_by == Reviewer(account="ona.derm@clinic.example")
    assert by_account.next_review == date(2027, 5, 1) and by_account.is_draft
    by_name = parse(write_article(tmp_path, "two", reviewed_by={"name": "Dr Ona  Jonaitė"}))
    assert by_name.reviewed_by == Reviewer(name="Dr Ona Jonaitė")


@pytest.mark.parametrize(
    ("front", "complaint"),
    [
        ({"status": "live"}, "status"),
        ({"reviewed_by": "Dr Ona Jonaitė"}, "reviewed_by"),
        ({"reviewed_by": {"account": "a@b.example", "name": "Dr A"}}, "reviewed_by"),
        ({"reviewed_by": {"account": "not-an-email"}}, "email"),
        ({"reviewed_by": {"name": " "}}, "empty"),
        ({"next_review": "next year"}, "next_review"),
        ({"next_review": date(2026, 11, 20)}, "after last_reviewed"),
    ],
)
def test_review_fields_that_make_no_sense_are_refused(tmp_path, front, complaint):
    with pytest.raises(ContentError, match=complaint):
        parse(write_article(tmp_path, "demo", last_reviewed=date(2026, 11, 20), **front))


def test_twelve_months_after_the_29th_of_february_is_the_28th():
    assert add_months(date(2028, 2, 29), 12) == date(2029, 2, 28)
    assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert add_months(date(2026, 11, 20), 12) == date(2027, 11, 20)


@pytest.mark.parametrize("draft_language", ["en", "lt"])
def test_a_draft_in_either_language_is_left_out_unless_asked_for(tmp_path, draft_language):
    write_pair(tmp_path, "published-one")
    write_article(tmp_path, "drafted", "en", status="draft" if draft_language == "en" else "published")
    write_article(tmp_path, "drafted", "lt", status="draft" if draft_language == "lt" else "published")
    lib = Library(tmp_path)
    for lang in ("en", "lt"):
        assert [c.slug for c in lib.all(lang)] == ["published-one"]
        assert lib.get("drafted", lang) == (None, False)
        assert lib.search("drafted", lang) == []
        assert {c.slug for c in lib.all(lang, include_drafts=True)} == {"published-one", "drafted"}
        assert lib.get("drafted", lang, include_drafts=True)[0] is not None
        assert [c.slug for c in lib.search("drafted", lang, include_drafts=True)] == ["drafted"]
    assert len(lib.every_version()) == 4


def test_library_reloads_an_edited_file(tmp_path):
    sections = "\n".join(f"## {title}\ntext\n" for title in REQUIRED_SECTIONS)
    path = tmp_path / "demo.md"
    front = "---\ntitle: {}\nsummary: s\nkey_facts: [a]\nrelated: [x]\nlast_reviewed: 2026-01-01\nsources: [b]\n---\n"
    path.write_text(front.format("First") + sections, encoding="utf-8")
    lib = Library(tmp_path)
    assert lib.get("demo")[0].title == "First"
    path.write_text(front.format("Second title") + sections, encoding="utf-8")
    lib._checked_at = float("-inf")  # skip the once-a-second recheck window
    assert lib.get("demo")[0].title == "Second title"


def test_fold_ignores_case_and_accents():
    assert fold("ÉCZÉMA Žvynelinė") == "eczema zvyneline"


def strip_accents(text: str) -> str:
    """What someone types on a keyboard without Lithuanian letters: 'Niežai' becomes 'Niezai'."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def _names_to_search() -> list:
    cases = []
    for path in ALL_FILES:
        article = parse(path)
        for name in (article.title, *article.other_names):
            for typed in dict.fromkeys((name, strip_accents(name))):
                label = f"{path.name}:{typed}"
                cases.append(pytest.param(article.slug, article.lang, typed, id=label))
    return cases


@pytest.fixture(scope="module")
def real_library():
    return Library(CONTENT)


@pytest.mark.parametrize(("slug", "lang", "typed"), _names_to_search())
def test_search_finds_every_article_by_its_title_and_other_names(real_library, slug, lang, typed):
    """In the article's own language, as written and as typed without Lithuanian letters."""
    found = [c.slug for c in real_library.search(typed, lang)]
    assert slug in found, f"searching {typed!r} in {lang} finds {found}"


def test_home_explains_three_steps(client):
    page = client.get("/").get_data(as_text=True)
    assert "How it works" in page
    assert page.count("<li><h3>") >= 3
    assert "/consultation/new" in page


def test_condition_page_has_everything_a_reader_needs(client):
    response = client.get("/conditions/palmoplantar-pustulosis")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'aria-label="breadcrumb"' in page
    for title in REQUIRED_SECTIONS:
        assert f">{title}</h2>" in page
    assert "/consultation/new?condition=palmoplantar-pustulosis" in page
    assert "A dermatologist answers within 24 hours" in page
    assert "Last reviewed" in page
    assert page.count('class="card"') >= 3
    ld = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S).group(1)
    data = json.loads(ld)
    assert data["about"]["@type"] == "MedicalCondition"
    assert data["about"]["name"] == "Palmoplantar pustulosis"


def test_unknown_condition_is_a_friendly_404(client):
    response = client.get("/conditions/no-such-thing")
    assert response.status_code == 404
    assert "We could not find that page" in response.get_data(as_text=True)


def test_index_lists_every_condition_a_to_z(client):
    page = client.get("/conditions/").get_data(as_text=True)
    for path in ENGLISH_FILES:
        assert f'href="/conditions/{path.stem}"' in page
    assert page.index("/conditions/acne") < page.index("/conditions/warts")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("PSORIASIS", "psoriasis"),
        ("pityríasis", "pityriasis-rosea"),
        ("hives", "urticaria"),
        ("PPP", "palmoplantar-pustulosis"),
    ],
)
def test_search_forgives_case_and_accents_and_finds_other_names(client, query, expected):
    page = client.get("/conditions/", query_string={"q": query}).get_data(as_text=True)
    assert f'href="/conditions/{expected}"' in page


@pytest.mark.parametrize("query", ["zzzz-nothing", "–", "!!!"])
def test_search_with_no_match_offers_a_consultation(client, query):
    page = client.get("/conditions/", query_string={"q": query}).get_data(as_text=True)
    assert "We have no article matching" in page
    assert 'href="/consultation/new"' in page
    assert "/conditions/acne" not in page


def test_sources_are_listed_and_linked_where_they_have_a_link(tmp_path):
    content = tmp_path / "conditions"
    content.mkdir()
    sources = [
        {"title": "NICE: Acne vulgaris (NG198)", "url": "https://www.nice.org.uk/guidance/ng198"},
        {"title": "British Association of Dermatologists: acne leaflet"},
        "NHS: Acne",
    ]
    write_pair(content, "acne", sources=sources)
    with app_reading(tmp_path, content) as app:
        page = app.test_client().get("/conditions/acne").get_data(as_text=True)
    listed = re.search(r'<ul class="sources"[^>]*>(.*?)</ul>', page, re.S).group(1)
    assert re.findall(r"<li>(.*?)</li>", listed) == [
        '<a href="https://www.nice.org.uk/guidance/ng198" rel="noopener">NICE: Acne vulgaris (NG198)</a>',
        "British Association of Dermatologists: acne leaflet",
        "NHS: Acne",
    ]
    # A link, never something the browser fetches from that host as the page loads.
    assert page.count("nice.org.uk") == 1
    assert not re.search(r'(src|srcset|action)="https?://', page)
    assert not re.search(r'<link[^>]+href="https?://', page)


def test_sitemap_lists_every_page(client):
    response = client.get("/sitemap.xml")
    assert response.mimetype == "application/xml"
    tree = ElementTree.fromstring(response.data)
    locs = {el.text for el in tree.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")}
    for path in ENGLISH_FILES:
        assert f"http://localhost/conditions/{path.stem}" in locs
    assert "http://localhost/" in locs


def test_robots_keeps_private_pages_out_of_search_engines(client):
    body = client.get("/robots.txt").get_data(as_text=True)
    assert "Disallow: /c/" in body and "Sitemap: http://localhost/sitemap.xml" in body


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["database"] == "ok"


def test_a_fresh_library_never_answers_half_loaded_to_concurrent_readers():
    """Threads that ask while the first load runs wait for it instead of finding nothing."""
    import threading

    lib = Library(CONTENT)
    barrier = threading.Barrier(8)
    found: list[bool] = []

    def read():
        barrier.wait()
        found.append(lib.get("acne")[0] is not None)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [True] * 8
