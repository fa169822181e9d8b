"""Which of the clinic's languages a reader without a chosen language gets, from Accept-Language.

The reader's most preferred language that the clinic offers, where a regional tag counts for its
language (en-GB and en-US for English, lt-LT for Lithuanian); among equally preferred ones, the one
the browser lists first. Werkzeug's best_match looks for exact tags first, so "en-GB,lt;q=0.9"
(a reader who prefers English) would get Lithuanian there.

The shipped nginx site answers published pages (app/published.py) with the same rule for
the headers browsers send, where the first language listed is the only one without a q below 1
(deploy/nginx-skin-clinic.conf, map $skin_clinic_page_language); tests/test_nginx_cache.py holds
the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from werkzeug.http import parse_accept_header


def preferred_language(header: str | None, offered: Sequence[str]) -> str | None:
    """The offered language the reader prefers most, or None if they accept none of them."""
    wanted = [(tag, quality) for tag, quality in parse_accept_header(header or "") if quality > 0]
    # parse_accept_header sorts by quality and keeps the browser's order among equals.
    for tag, _quality in wanted:
        language = tag.split("-", 1)[0].split("_", 1)[0].lower()
        if language in offered:
            return language
    return None
