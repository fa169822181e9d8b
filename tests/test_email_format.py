"""The bytes the worker sends for each email (app.outbox.mime_message): read back as a mail client would."""

from __future__ import annotations

import email
from email.header import decode_header, make_header

import pytest

from app.outbox import mime_message

SENDER = "Skin Clinic <no-reply@clinic.example>"


def parts(message) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_payload(decode=True).decode(part.get_content_charset())
        for part in message.walk()
        if not part.is_multipart()
    }


def test_text_and_html_alternatives_in_utf8_with_every_header():
    sent = mime_message("ona@example.com", "Jūsų atsakymas paruoštas", "Sveiki, Ona\n", "<p>Sveiki, Ona</p>", SENDER)
    message = email.message_from_bytes(sent.data)
    assert sent.sender == "no-reply@clinic.example"
    assert str(make_header(decode_header(message["Subject"]))) == "Jūsų atsakymas paruoštas"
    assert message["From"] == SENDER and message["To"] == "ona@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] and message["Message-ID"].endswith("@clinic.example>")
    assert message.get_content_type() == "multipart/alternative"
    assert parts(message) == {"text/plain": "Sveiki, Ona\n", "text/html": "<p>Sveiki, Ona</p>"}


def test_every_line_ends_in_crlf_and_fits_smtp():
    long_subject = "Jūsų užklausa DRM-7K3Q9X gauta — dermatologas atsakys per 24 valandas nuo pateikimo " * 2
    sent = mime_message("ona@example.com", long_subject, "ž" * 5000, "<p>" + "ž" * 5000 + "</p>", SENDER)
    lines = sent.data.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 998
    subject = email.message_from_bytes(sent.data)["Subject"]
    assert str(make_header(decode_header(subject))) == long_subject


def test_a_display_name_outside_ascii_is_encoded():
    sent = mime_message("a@example.com", "Hi", "t", "<p>h</p>", "Odos klinika Žalgiris <no-reply@clinic.example>")
    sender = email.message_from_bytes(sent.data)["From"]
    assert str(make_header(decode_header(sender))) == "Odos klinika Žalgiris <no-reply@clinic.example>"


@pytest.mark.parametrize(
    "recipient, subject",
    [("a@example.com\r\nBcc: everyone@example.com", "Hi"), ("a@example.com", "Hi\nBcc: everyone@example.com")],
)
def test_a_line_break_in_a_header_is_refused(recipient, subject):
    with pytest.raises(ValueError, match="line break"):
        mime_message(recipient, subject, "t", "<p>h</p>", SENDER)
