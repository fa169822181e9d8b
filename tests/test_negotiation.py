"""The language a reader without a chosen one gets (app/negotiation.py): the app's page cache, its
locale and the shipped nginx site's published pages all follow this one rule."""

from __future__ import annotations

import pytest

from app.negotiation import preferred_language


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("en-GB,lt;q=0.9", "en"),  # prefers English: a regional tag counts for its language
        ("lt-LT,lt;q=0.9,en-US;q=0.8,en;q=0.7", "lt"),  # Chrome in Lithuanian
        ("lt,en-US;q=0.7,en;q=0.3", "lt"),  # Firefox
        ("de-DE,de;q=0.9,lt;q=0.8,en;q=0.5", "lt"),  # the first language offered, by preference
        ("en;q=0.5, lt;q=0.9", "lt"),  # preference, not order
        ("lt, en", "lt"),  # equal: the order the browser gives
        ("lt;q=0, en;q=0.1", "en"),  # q=0: not wanted at all
        ("fr, de", None),
        ("", None),
    ],
)
def test_a_reader_gets_their_most_preferred_language_the_clinic_offers(header, language):
    assert preferred_language(header, ["en", "lt"]) == language


def test_a_british_reader_who_also_reads_lithuanian_gets_english_pages(client):
    page = client.get("/conditions/acne", headers={"Accept-Language": "en-GB,lt;q=0.9"})
    assert '<html lang="en">' in page.get_data(as_text=True)
    page = client.get("/conditions/acne", headers={"Accept-Language": "de-DE,lt;q=0.8,en;q=0.5"})
    assert '<html lang="lt">' in page.get_data(as_text=True)
