"""The condition library: every article valid, pages, search, 404s, sitemap and robots.txt."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from app.conditions.content import REQUIRED_SECTIONS, ContentError, Library, fold, parse

CONTENT = Path(__file__).resolve().parent.parent / "content" / "conditions"
ENGLISH_FILES = sorted(p for p in CONTENT.glob("*.md") if "." not in p.stem)
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


@pytest.mark.parametrize("path", ENGLISH_FILES, ids=lambda p: p.stem)
def test_every_article_is_valid(path):
    condition = parse(path)
    slugs = {p.stem for p in ENGLISH_FILES}
    assert [s.title for s in condition.sections] == list(REQUIRED_SECTIONS)
    assert len(condition.related) >= 3
    assert set(condition.related) <= slugs, f"unknown related slugs in {path.name}"
    assert condition.slug not in condition.related
    assert condition.sources and condition.key_facts
    assert "<script" not in condition.html
    words = len(re.sub("<[^>]+>", " ", condition.html).split())
    assert words >= 350, f"{path.name} is only {words} words"


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


def test_search_with_no_match_offers_a_consultation(client):
    page = client.get("/conditions/", query_string={"q": "zzzz-nothing"}).get_data(as_text=True)
    assert "We have no article matching" in page
    assert "/conditions/acne" not in page


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
