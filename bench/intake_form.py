"""Filling in the consultation form as a patient's browser does: open it, then post it with photos."""

from __future__ import annotations

import contextlib
import io

from bench.common import NotRun, form_value

# The answers the tests use (tests/factories.py), so the benchmark follows the form when it changes.
try:
    from tests.factories import intake_answers
except ImportError:  # a checkout without the tests: the same answers, written out
    intake_answers = None

FALLBACK_ANSWERS = {
    "full_name": "Ona Petraitienė",
    "email": "ona.patient@example.com",
    "phone": "+370 600 12345",
    "date_of_birth": "1986-04-12",
    "sex": "female",
    "condition": "palmoplantar-pustulosis",
    "body_sites": ["hands", "feet"],
    "duration": "months",
    "symptoms": ["itching", "blisters"],
    "description": "Yellow-brown spots with small pustules on both palms, worse after washing.",
    "consent_health_data": "y",
    "consent_terms": "y",
}


def open_form(client) -> dict:
    """GET /consultation/new; returns the hidden fields a browser would send back (CSRF token, submission key)."""
    page = client.get("/consultation/new")
    if page.status_code == 404:
        raise NotRun("the consultation form is not built yet (GET /consultation/new answered 404)")
    html = page.get_data(as_text=True)
    hidden = {"submission_key": form_value(html, "submission_key")}
    with contextlib.suppress(LookupError):  # no token when CSRF is switched off (testing settings)
        hidden["csrf_token"] = form_value(html, "csrf_token")
    return hidden


def post_form(client, hidden: dict, photos: list[tuple[str, bytes]]):
    """POST the filled-in form with `photos` as (file name, bytes); returns the response."""
    data = dict(intake_answers() if intake_answers else FALLBACK_ANSWERS)
    data.update(hidden)
    data["photos"] = [(io.BytesIO(content), name) for name, content in photos]
    return client.post("/consultation/new", data=data, content_type="multipart/form-data")


def check_stored(response) -> None:
    """A stored request redirects to the confirmation; anything else means the form refused it."""
    location = response.headers.get("Location", "")
    if response.status_code not in (302, 303) or "/consultation/new" in location:
        raise RuntimeError(f"the consultation form did not store the request (status {response.status_code})")
