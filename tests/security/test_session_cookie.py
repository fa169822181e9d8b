"""The session cookie after sending a request: signed cookies can be read by anyone who holds one,
so the private link in it is encrypted, and nothing more than the confirmation needs is kept."""

from __future__ import annotations

import base64
import json
import re
import zlib
from datetime import timedelta

import time_machine

from app.timeutil import utcnow
from tests.factories import submit_request

LINK = re.compile(r'id="private-link" href="[^"]*/c/([A-Za-z0-9_-]+)"')


def cookie_contents(client) -> str:
    """What anyone holding the cookie can read: its payload, decoded without the secret key."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    payload = cookie.value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if cookie.value.startswith("."):
        raw = zlib.decompress(raw)
    return raw.decode("utf-8")


def test_the_private_link_cannot_be_read_from_the_session_cookie(app, client):
    """[F11] After submitting, the private-link token sat in the session cookie, signed but readable."""
    sent = submit_request(client)
    assert sent.status_code == 303
    page = client.get(sent.location).get_data(as_text=True)
    token = LINK.search(page).group(1)  # the confirmation page still shows the link, once made
    contents = cookie_contents(client)
    assert token not in contents
    kept = json.loads(contents)["intake_done"]
    assert set(kept) == {"reference", "link"} and token not in kept["link"]
    # A double click from the same browser still finds the first post's link.
    assert LINK.search(client.get("/consultation/received").get_data(as_text=True)).group(1) == token


def test_the_link_in_the_session_expires_after_an_hour(app, client):
    """[F11] The encrypted link is shown for an hour at most; after that only the email has it."""
    with time_machine.travel(utcnow(), tick=False) as traveller:
        sent = submit_request(client)
        assert LINK.search(client.get(sent.location).get_data(as_text=True))
        traveller.shift(timedelta(minutes=61))
        page = client.get("/consultation/received").get_data(as_text=True)
        assert not LINK.search(page) and "We have emailed the private link" in page
