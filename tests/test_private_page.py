"""The patient's private page /c/<token>, its photos, and 'lost your link?'."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import func, select

from app.consultations.submission import send_requested_links
from app.extensions import db
from app.links import resolve
from app.models import AuditEvent, Message, OutboundEmail, hash_token
from app.outbox import render, unseal
from tests.conftest import build_app, empty_database, reset_database
from tests.factories import make_consultation, make_photo, make_user, submit_request


def page_text(response) -> str:
    return response.get_data(as_text=True)


def audit_actions(consultation) -> list[tuple[str, str, str | None]]:
    rows = db.session.execute(
        select(AuditEvent).where(AuditEvent.request_id == consultation.id).order_by(AuditEvent.id)
    ).scalars()
    return [(row.action, row.actor_kind, row.detail) for row in rows]


def test_private_page_shows_status_due_time_and_photos(client):
    created = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
    consultation, token = make_consultation(created_at=created)
    photo = make_photo(consultation)
    with time_machine.travel(created + timedelta(hours=1), tick=False):
        response = client.get(f"/c/{token}")
    assert response.status_code == 200
    text = page_text(response)
    assert consultation.reference in text
    assert 'id="status">Received</span>' in text
    assert 'datetime="2026-11-04T07:00:00Z"' in text  # due 24 hours after sending
    assert "taking longer than we promised" not in text
    assert f'src="/c/{token}/photos/{photo.storage_key}/thumb"' in text
    assert f'href="/c/{token}/photos/{photo.storage_key}"' in text
    assert response.headers["Cache-Control"].startswith("no-store")
    assert "noindex" in response.headers["X-Robots-Tag"]
    assert audit_actions(consultation) == [("viewed", "patient", None)]


def test_private_page_says_sorry_when_the_answer_is_late(client):
    _consultation, token = make_consultation(created_at=datetime(2026, 11, 3, 7, 0, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 11, 4, 8, 0, tzinfo=UTC), tick=False):
        text = page_text(client.get(f"/c/{token}"))
    assert "taking longer than we promised" in text


def test_private_page_shows_the_answer_but_never_internal_notes(client):
    derm = make_user("dermatologist")
    consultation, token = make_consultation(status="answered")
    db.session.add_all(
        [
            Message(request_id=consultation.id, kind="internal_note", author_id=derm.id, body="Check with Dr B."),
            Message(
                request_id=consultation.id,
                kind="answer",
                author_id=derm.id,
                assessment="Looks like hand eczema.",
                treatment="Emollient twice a day.",
            ),
        ]
    )
    db.session.commit()
    text = page_text(client.get(f"/c/{token}"))
    assert 'id="status">Answered</span>' in text
    assert "Looks like hand eczema." in text and "Emollient twice a day." in text
    assert "Check with Dr B." not in text


def test_photos_are_served_only_through_the_authorised_route(client):
    consultation, token = make_consultation()
    photo = make_photo(consultation, size=(64, 48))
    full = client.get(f"/c/{token}/photos/{photo.storage_key}")
    thumbnail = client.get(f"/c/{token}/photos/{photo.storage_key}/thumb")
    for response in (full, thumbnail):
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
        assert response.headers["Cache-Control"].startswith("no-store")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert full.data != thumbnail.data
    assert ("photo_viewed", "patient", f"photo {photo.id}") in audit_actions(consultation)
    assert ("photo_viewed", "patient", f"photo {photo.id} thumbnail") in audit_actions(consultation)
    # Nothing under /static or any other path hands out the upload folder.
    assert client.get(f"/static/{photo.storage_key}").status_code == 404
    assert client.get(f"/uploads/{photo.storage_key}").status_code == 404


def test_unknown_token_is_a_plain_404(client):
    consultation, _ = make_consultation()
    photo = make_photo(consultation)
    for path in ("/c/not-a-real-token", "/c/" + "x" * 500, f"/c/wrong/photos/{photo.storage_key}"):
        response = client.get(path)
        assert response.status_code == 404
        assert consultation.reference not in page_text(response)


def test_another_token_cannot_see_this_requests_photos(client):
    mine, _ = make_consultation(email="me@example.com")
    my_photo = make_photo(mine)
    _, their_token = make_consultation(email="them@example.com")
    assert client.get(f"/c/{their_token}/photos/{my_photo.storage_key}").status_code == 404
    assert client.get(f"/c/{their_token}/photos/{my_photo.storage_key}/thumb").status_code == 404
    assert client.get(f"/c/{their_token}/photos/..%2f..%2fetc%2fpasswd").status_code == 404


def test_private_link_from_the_confirmation_opens_the_request_with_its_photos(client):
    submit_request(client)
    confirmation = page_text(client.get("/consultation/received"))
    link = re.search(r'id="private-link" href="http://localhost(/c/[^"]+)"', confirmation).group(1)
    page = page_text(client.get(link))
    thumbnail = re.search(r'src="(/c/[^"]+/thumb)"', page).group(1)
    assert client.get(thumbnail).mimetype == "image/jpeg"


# --- Lost your link? -----------------------------------------------------------------------------


def test_resend_gives_each_request_a_new_link_and_the_old_one_stops_working(client):
    first, old_token = make_consultation(email="ona@example.com")
    second, _ = make_consultation(email="ona@example.com")
    _other, other_token = make_consultation(email="someone@example.com")

    response = client.post("/consultation/link", data={"email": "  ONA@example.com "})
    assert response.status_code == 303
    send_requested_links()  # the worker's part
    assert "If we have a request from that address" in page_text(client.get(response.headers["Location"]))

    email = db.session.execute(select(OutboundEmail).where(OutboundEmail.template == "link_resent")).scalar_one()
    assert email.recipient == "ona@example.com"
    links = dict(resolve(unseal(email.sealed_context))["links"])
    assert set(links) == {first.reference, second.reference}
    new_token = links[first.reference].rsplit("/c/", 1)[1]
    assert client.get(f"/c/{new_token}").status_code == 200
    assert client.get(f"/c/{old_token}").status_code == 404
    assert client.get(f"/c/{other_token}").status_code == 200  # someone else's link is untouched
    db.session.refresh(first)
    assert [link.token_hash for link in first.links] == [hash_token(new_token)]
    assert ("link_resent", "anonymous", None) in audit_actions(first)

    _subject, text, html = render(email)
    assert links[first.reference] in text and f'href="{links[first.reference]}"' in html
    assert "Itchy" not in text + html and "Test Patient" not in text + html


def test_resend_does_not_reveal_whether_an_address_is_known(client):
    make_consultation(email="known@example.com")
    known = client.post("/consultation/link", data={"email": "known@example.com"}, follow_redirects=True)
    unknown = client.post("/consultation/link", data={"email": "nobody@example.com"}, follow_redirects=True)
    assert known.status_code == unknown.status_code == 200
    send_requested_links()

    def message(response):
        return re.search(r'<div class="flashes".*?</div>', page_text(response), re.S).group(0)

    assert message(known) == message(unknown)
    recipients = db.session.execute(select(OutboundEmail.recipient)).scalars().all()
    assert recipients == ["known@example.com"]


def test_resend_form_explains_a_bad_address_next_to_the_field(client):
    response = client.post("/consultation/link", data={"email": "nope"})
    assert response.status_code == 422
    assert 'id="email-error"' in page_text(response)
    assert db.session.execute(select(func.count(OutboundEmail.id))).scalar_one() == 0


def test_resend_is_rate_limited(tmp_path):
    app = build_app(tmp_path, RATELIMIT_ENABLED=True, RESEND_RATE_LIMIT="2 per hour")
    reset_database(app)
    try:
        with app.app_context():
            client = app.test_client()
            for address in ("a@example.com", "b@example.com"):
                assert client.post("/consultation/link", data={"email": address}).status_code == 303
            assert client.post("/consultation/link", data={"email": "c@example.com"}).status_code == 429
            assert client.get("/consultation/link").status_code == 200

            # One address cannot be flooded from many places either.
            codes = [
                client.post(
                    "/consultation/link",
                    data={"email": "Victim@example.com"},
                    environ_base={"REMOTE_ADDR": f"198.51.100.{n}"},
                ).status_code
                for n in range(3)
            ]
            assert codes == [303, 303, 429]
    finally:
        empty_database(app)


def test_private_link_lookups_are_rate_limited(tmp_path):
    app = build_app(tmp_path, RATELIMIT_ENABLED=True, PRIVATE_LINK_RATE_LIMIT="3 per minute")
    reset_database(app)
    try:
        with app.app_context():
            client = app.test_client()
            codes = [client.get(f"/c/guess-{n}").status_code for n in range(4)]
            assert codes == [404, 404, 404, 429]
    finally:
        empty_database(app)


def test_confirmation_stops_showing_a_link_that_was_replaced(client):
    submit_request(client)
    client.post("/consultation/link", data={"email": "ona.patient@example.com"})
    send_requested_links()
    text = page_text(client.get("/consultation/received"))
    assert 'id="private-link"' not in text and "We have emailed the private link" in text
