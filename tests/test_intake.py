"""Patient intake over HTTP: the form, photos, one transaction, double submits, emails, rate limits."""

from __future__ import annotations

import io
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from PIL import Image
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.consultations.submission import PatientDetails
from app.consultations.submission import submit_request as store_request
from app.extensions import db
from app.links import resolve
from app.models import ConsultationRequest, OutboundEmail, Photo, ResponseClock, find_by_token
from app.outbox import render, unseal
from app.photos import PhotoLimits, clean_photo
from app.storage import LocalStorage
from tests.conftest import build_app, empty_database, reset_database
from tests.factories import (
    intake_answers,
    make_user,
    open_consultation_form,
    phone_jpeg_with_gps,
    photo_bytes,
    stored_files,
    submit_request,
)


def upload_dir(app) -> Path:
    return Path(app.config["UPLOAD_DIR"])


def request_count() -> int:
    return db.session.execute(select(func.count(ConsultationRequest.id))).scalar_one()


def only_request() -> ConsultationRequest:
    db.session.expire_all()
    return db.session.execute(select(ConsultationRequest)).scalar_one()


def page_text(response) -> str:
    return response.get_data(as_text=True)


# --- The form ------------------------------------------------------------------------------------


def test_form_asks_everything_with_labels_and_photo_guidance(client):
    page, key = open_consultation_form(client)
    for label in (
        "Full name",
        "Email",
        "Date of birth",
        "Where on the body is it?",
        "How long have you had it?",
        "What do you feel or notice?",
        "Describe the problem in your own words",
        "Allergies (optional)",
        "Psoriasis in my family",
        "I smoke",
        "I am pregnant or breastfeeding",
    ):
        assert label in page
    assert 'for="full_name"' in page and 'enctype="multipart/form-data"' in page
    assert 'accept="image/jpeg,image/png,image/webp,image/heic,image/heif"' in page
    # Guided photos: three labelled slots per area, each with its drawing and hint, and a site per area.
    for view in ("far", "medium", "close"):
        assert f'name="photo-1-{view}"' in page and f"img/views/{view}.svg" in page
    assert 'name="area-1-site"' in page and "Add another area" in page
    assert "One close-up" in page and "One from a distance" in page and "Good light" in page
    assert len(key) >= 43
    assert "<script>" not in page and 'style="' not in page  # CSP: no inline script or style
    assert "js/intake.js" in page and "css/intake.css" in page


def test_condition_from_the_article_is_preselected_and_named(client):
    page, _ = open_consultation_form(client, condition="palmoplantar-pustulosis")
    assert "You are asking about:" in page and "<strong>Palmoplantar pustulosis</strong>" in page
    assert '<option selected value="palmoplantar-pustulosis">' in page


def test_unknown_condition_is_ignored(client):
    response = client.get("/consultation/new", query_string={"condition": "../../etc/passwd"})
    assert response.status_code == 200
    assert "You are asking about" not in page_text(response)


def test_each_visit_gets_a_new_submission_key(client):
    _, first = open_consultation_form(client)
    _, second = open_consultation_form(client)
    assert first != second


# --- A full submit -------------------------------------------------------------------------------


def test_full_submit_stores_request_photos_clock_and_confirmation(app, client):
    make_user("dermatologist")
    moment = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    photos = [
        ("IMG_0001.jpg", phone_jpeg_with_gps()),
        ("IMG_0002.HEIC", photo_bytes("HEIF", size=(320, 240))),
        ("close-up.png", photo_bytes("PNG", size=(300, 300))),
    ]
    with time_machine.travel(moment, tick=False):
        response = submit_request(client, photos=photos)
        confirmation = client.get("/consultation/received")
    assert response.status_code == 303 and response.headers["Location"].endswith("/consultation/received")

    consultation = only_request()
    assert consultation.status == "submitted" and consultation.reference.startswith("DRM-")
    assert consultation.patient_email == "ona.patient@example.com"  # kept lower-case for 'lost your link?'
    assert consultation.condition_slug == "palmoplantar-pustulosis"
    assert consultation.body_sites == ["hands", "feet"] and consultation.symptoms == ["itching", "blisters"]
    assert consultation.history == ["family_psoriasis", "smoking"] and consultation.duration == "months"
    assert consultation.date_of_birth.isoformat() == "1986-04-12"
    assert consultation.consent_health_data_at == moment == consultation.consent_terms_at
    assert consultation.consent_version == app.config["CONSENT_VERSION"]
    assert consultation.due_at == moment + timedelta(hours=24)
    clock = db.session.execute(select(ResponseClock)).scalar_one()
    assert clock.request_id == consultation.id and clock.due_at == consultation.due_at

    assert len(consultation.photos) == 3
    files = set(stored_files(upload_dir(app)))
    for photo in consultation.photos:
        assert {photo.storage_key, photo.thumbnail_key} <= files
    assert len(files) == 6  # a clean re-encode and a thumbnail each; no original, nothing pending

    upright = Image.open(upload_dir(app) / consultation.photos[0].storage_key)
    assert upright.format == "JPEG" and upright.size == (200, 400)  # the sideways phone photo, turned upright
    assert dict(upright.getexif()) == {} and "exif" not in upright.info
    raw = (upload_dir(app) / consultation.photos[0].storage_key).read_bytes()
    assert b"PhoneMaker" not in raw and b"Exif" not in raw
    assert Image.open(upload_dir(app) / consultation.photos[1].storage_key).format == "JPEG"  # the HEIC

    text = page_text(confirmation)
    assert consultation.reference in text and "A dermatologist will answer by" in text
    assert 'datetime="2026-11-04T09:30:00Z"' in text
    assert confirmation.headers["Cache-Control"].startswith("no-store")
    link = re.search(r'id="private-link" href="http://localhost/c/([A-Za-z0-9_-]+)"', text).group(1)
    assert find_by_token(link) is consultation


def test_pregnancy_is_not_recorded_for_a_man(client):
    submit_request(client, sex="male", history=["pregnant", "smoking"])
    assert only_request().history == ["smoking"]


def test_submit_queues_confirmation_and_team_alerts_without_health_data(app, client):
    make_user("dermatologist", email="derm@clinic.example")
    make_user("dermatologist", email="retired@clinic.example", active=False)
    submit_request(client)
    consultation = only_request()
    emails = db.session.execute(select(OutboundEmail).order_by(OutboundEmail.id)).scalars().all()
    assert {(e.recipient, e.template) for e in emails} == {
        ("ona.patient@example.com", "request_received"),
        ("alerts@clinic.example", "staff_new_request"),
        ("derm@clinic.example", "staff_new_request"),
    }
    assert all(e.request_id == consultation.id for e in emails)

    patient_email = next(e for e in emails if e.template == "request_received")
    assert "/c/" not in json.dumps(patient_email.context)  # the link is sealed, never in clear
    token = resolve(unseal(patient_email.sealed_context))["link"].rsplit("/c/", 1)[1]
    assert client.get(f"/c/{token}").status_code == 200

    health_words = [
        "Ona",
        "Petraitien",
        "pustule",
        "palms",
        "Penicillin",
        "Hydrocortisone",
        "smoking",
        "Palmoplantar",
        "palmoplantar",
        "1986",
        "+370",
        "hands",
    ]
    for email in emails:
        subject, text, html = render(email)
        assert consultation.reference in subject
        for word in health_words:
            assert word not in subject + text + html, f"{word!r} leaked into {email.template}"
            assert word not in json.dumps(email.context)
    subject, text, html = render(patient_email)
    assert f"http://localhost/c/{token}" in text and f'href="http://localhost/c/{token}"' in html


# --- Bad files -----------------------------------------------------------------------------------


def hand_made_png(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 512))
        + chunk(b"IEND", b"")
    )


def half_a_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((500, 400), 60).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


BAD_UPLOADS = {
    "svg": (
        "drawing.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "not a photo we can open",
    ),
    "pdf": ("scan.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "not a photo we can open"),
    "script renamed .jpg": ("holiday.jpg", b"<?php system($_GET['c']); ?>", "not a photo we can open"),
    "truncated jpeg": ("cut.jpg", half_a_jpeg(), "damaged or incomplete"),
    "empty file": ("empty.jpg", b"", "empty"),
    "decompression bomb png": ("bomb.png", hand_made_png(50_000, 50_000), "too large in pixels"),
}


@pytest.mark.parametrize("kind", list(BAD_UPLOADS))
def test_bad_file_is_refused_on_the_form_and_nothing_is_stored(app, client, kind):
    name, content, reason = BAD_UPLOADS[kind]
    response = submit_request(client, photos=[(name, content)])
    assert response.status_code == 422
    text = page_text(response)
    error = re.search(r'<div class="error" id="photos-error">(.*?)</div>', text, re.S).group(1)
    assert f"“{name}”" in error and reason in error
    assert 'data-photo-area="1" aria-describedby="photos-help photos-error"' in text
    assert request_count() == 0
    assert stored_files(upload_dir(app)) == []
    assert db.session.execute(select(func.count(OutboundEmail.id))).scalar_one() == 0


def test_a_good_photo_next_to_a_bad_one_is_kept_for_the_corrected_form(app, client):
    _, key = open_consultation_form(client)
    response = submit_request(
        client, photos=[("good.jpg", photo_bytes()), ("bad.pdf", b"%PDF-1.4")], submission_key=key
    )
    assert response.status_code == 422 and request_count() == 0
    text = page_text(response)
    assert "Photos we already have" in text
    kept = re.findall(r'name="kept_photos" value="([a-f0-9]{32})" checked', text)
    assert len(kept) == 1
    thumbnail = client.get(f"/consultation/new/photos/{kept[0]}")
    assert thumbnail.status_code == 200 and thumbnail.mimetype == "image/jpeg"
    assert thumbnail.headers["Cache-Control"].startswith("no-store")
    assert app.test_client().get(f"/consultation/new/photos/{kept[0]}").status_code == 404  # another browser
    assert not any(name.endswith(".pdf") for name in stored_files(upload_dir(app)))

    done = submit_request(client, photos=[], submission_key=key, kept_photos=kept)
    assert done.status_code == 303
    consultation = only_request()
    assert len(consultation.photos) == 1
    assert sorted(stored_files(upload_dir(app))) == sorted(
        [consultation.photos[0].storage_key, consultation.photos[0].thumbnail_key]
    )  # the pending copy is gone


def test_unticked_kept_photo_is_dropped(app, client):
    _, key = open_consultation_form(client)
    first = submit_request(client, photos=[("a.jpg", photo_bytes())], submission_key=key, consent_terms=None)
    assert re.findall(r'name="kept_photos" value="([a-f0-9]{32})"', page_text(first))
    again = submit_request(client, photos=[], submission_key=key, kept_photos=[])
    assert "Add at least one photo" in page_text(again)
    assert stored_files(upload_dir(app)) == []


def test_no_photo_at_all_is_an_error_next_to_the_field(client):
    response = submit_request(client, photos=[])
    assert response.status_code == 422
    assert "Add at least one photo of the affected skin." in page_text(response)
    assert request_count() == 0


def test_more_than_six_photos_are_refused(app, client):
    photos = [(f"p{n}.jpg", photo_bytes(size=(40, 30))) for n in range(7)]
    response = submit_request(client, photos=photos)
    assert response.status_code == 422
    assert "You can send up to 6 photos. Please remove some." in page_text(response)
    assert request_count() == 0


def test_oversize_body_gets_the_413_page_and_nothing_is_stored(tmp_path):
    app = build_app(tmp_path, MAX_CONTENT_LENGTH=300_000)
    reset_database(app)
    try:
        with app.app_context():
            client = app.test_client()
            big = photo_bytes("PNG", size=(600, 600), colour=(1, 2, 3))
            noisy = io.BytesIO()
            Image.effect_noise((700, 700), 80).convert("RGB").save(noisy, "PNG")
            response = submit_request(client, photos=[("big.png", big), ("noisy.png", noisy.getvalue())])
            assert response.status_code == 413
            assert "Those files are too large" in page_text(response)
            assert request_count() == 0 and stored_files(upload_dir(app)) == []
    finally:
        empty_database(app)


def test_one_photo_over_the_per_file_limit_is_named(tmp_path):
    app = build_app(tmp_path, MAX_PHOTO_BYTES=1024 * 1024)
    reset_database(app)
    try:
        with app.app_context():
            noisy = io.BytesIO()
            Image.effect_noise((1200, 1200), 90).convert("RGB").save(noisy, "PNG")
            assert len(noisy.getvalue()) > 1024 * 1024
            response = submit_request(app.test_client(), photos=[("huge.png", noisy.getvalue())])
            assert response.status_code == 422
            assert "“huge.png”: The file is larger than 1 MB" in page_text(response)
            assert request_count() == 0
    finally:
        empty_database(app)


# --- Errors keep what was typed --------------------------------------------------------------------


def test_form_errors_keep_every_answer(client):
    response = submit_request(client, consent_health_data=None, email="not-an-email", photos=[])
    assert response.status_code == 422
    text = page_text(response)
    assert 'id="error-summary"' in text
    assert "Enter an email address like name@example.com." in text
    assert "We need your permission to use your health information to answer you." in text
    assert 'value="Ona Petraitienė"' in text and 'value="not-an-email"' in text
    assert "Yellow-brown spots with small pustules on both palms" in text
    assert "Penicillin" in text and "Stopped smoking last year." in text
    assert re.search(r'<input checked id="body_sites-\d+" name="body_sites" type="checkbox" value="hands">', text)
    assert re.search(r'<input checked id="sex-\d" name="sex" required type="radio" value="female">', text)
    assert re.search(r'<option selected value="palmoplantar-pustulosis">', text)
    assert 'aria-describedby="email-help email-error"' in text and 'id="email-error"' in text


def test_expired_form_keeps_the_typed_text_and_asks_for_photos_again(tmp_path):
    app = build_app(tmp_path, WTF_CSRF_ENABLED=True)
    reset_database(app)
    try:
        with app.app_context():
            client = app.test_client()
            _, key = open_consultation_form(client)
            data = intake_answers(csrf_token="expired-or-forged", submission_key=key)
            data["photos"] = [(io.BytesIO(photo_bytes()), "rash.jpg")]
            response = client.post("/consultation/new", data=data, content_type="multipart/form-data")
            assert response.status_code == 400
            text = page_text(response)
            assert "has expired, so nothing has been sent yet" in text
            assert "please add your photos again" in text
            assert "Yellow-brown spots with small pustules on both palms" in text and 'value="Ona Petraitienė"' in text
            assert f'value="{key}"' in text  # the same one-time key, so a resend cannot make two requests
            assert request_count() == 0 and stored_files(upload_dir(app)) == []

            fresh_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text).group(1)
            data = intake_answers(csrf_token=fresh_token, submission_key=key)
            data["photos"] = [(io.BytesIO(photo_bytes()), "rash.jpg")]
            again = client.post("/consultation/new", data=data, content_type="multipart/form-data")
            assert again.status_code == 303 and request_count() == 1
    finally:
        empty_database(app)


# --- All or nothing ------------------------------------------------------------------------------


@pytest.fixture
def database_refuses_photos():
    """The database itself refuses the photo rows: a NOT NULL column arrives empty (a real constraint failure)."""

    def blank_checksum(_mapper, _connection, photo):
        photo.sha256 = None

    event.listen(Photo, "before_insert", blank_checksum)
    yield
    event.remove(Photo, "before_insert", blank_checksum)


def test_database_failure_mid_transaction_keeps_no_request_and_no_files(app, client, database_refuses_photos):
    response = submit_request(client, photos=[("a.jpg", photo_bytes()), ("b.jpg", phone_jpeg_with_gps())])
    assert response.status_code == 503
    text = page_text(response)
    assert "We could not save your request just now" in text
    assert "Yellow-brown spots with small pustules" in text  # nothing typed is lost
    db.session.rollback()
    assert request_count() == 0
    assert db.session.execute(select(func.count(Photo.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(OutboundEmail.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(ResponseClock.id))).scalar_one() == 0
    assert stored_files(upload_dir(app)) == []


def test_unexpected_error_while_queueing_emails_keeps_nothing(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken_outbox(_session, _context, _instances):
        if any(isinstance(row, OutboundEmail) for row in _session.new):
            raise RuntimeError("outbox bug")

    event.listen(Session, "before_flush", broken_outbox)
    try:
        response = submit_request(client)
    finally:
        event.remove(Session, "before_flush", broken_outbox)
    assert response.status_code == 500
    assert "Nothing you sent has been half-saved" in page_text(response)
    db.session.rollback()
    assert request_count() == 0 and stored_files(upload_dir(app)) == []


# --- Double submits --------------------------------------------------------------------------------


def test_double_click_makes_one_request_and_shows_the_same_confirmation(app, client):
    _, key = open_consultation_form(client)
    first = submit_request(client, submission_key=key)
    second = submit_request(client, submission_key=key)
    assert first.status_code == second.status_code == 303
    assert request_count() == 1
    consultation = only_request()
    assert len(consultation.photos) == 1 and len(stored_files(upload_dir(app))) == 2
    text = page_text(client.get("/consultation/received"))
    assert consultation.reference in text and 'id="private-link"' in text  # the first post's link still shows
    assert db.session.execute(select(func.count(OutboundEmail.id))).scalar_one() == 2  # patient + alert, once


def test_resent_form_from_another_browser_says_the_link_was_emailed(app, client):
    _, key = open_consultation_form(client)
    submit_request(client, submission_key=key)
    other = app.test_client()
    response = submit_request(other, submission_key=key)
    assert response.status_code == 303 and request_count() == 1
    text = page_text(other.get("/consultation/received"))
    assert only_request().reference in text
    assert "We have emailed the private link" in text and 'id="private-link"' not in text


def test_refresh_of_the_confirmation_still_shows_the_link(client):
    submit_request(client)
    first, second = page_text(client.get("/consultation/received")), page_text(client.get("/consultation/received"))
    assert 'id="private-link"' in first and 'id="private-link"' in second


def test_confirmation_without_a_submission_points_to_the_resend_form(client):
    text = page_text(client.get("/consultation/received"))
    assert "We cannot show a confirmation here" in text and "/consultation/link" in text


@pytest.fixture
def shared_database_app(tmp_path):
    """An app whose database real threads can share (a SQLite file, or PostgreSQL when configured)."""
    from tests.conftest import ON_POSTGRES

    overrides = {} if ON_POSTGRES else {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'race.sqlite'}"}
    app = build_app(tmp_path, **overrides)
    reset_database(app)
    yield app
    empty_database(app)


def test_two_identical_posts_at_the_same_moment_make_one_request(shared_database_app):
    app = shared_database_app
    with app.test_request_context():
        photo = clean_photo(photo_bytes(), PhotoLimits.from_config(app.config))
    details = PatientDetails(
        name="Ona", email="ona@example.com", date_of_birth=None, sex="female", description="Itchy palms for weeks."
    )
    key = "k" * 43
    both_checked = threading.Barrier(2, timeout=10)
    results, errors = [], []

    def wait_for_the_other(session, _context, _instances):
        # Both posts have looked for an earlier request and found none; now both insert.
        if any(isinstance(row, ConsultationRequest) for row in session.new):
            both_checked.wait()

    def post():
        try:
            with app.app_context():
                result = store_request(
                    details,
                    [photo],
                    submission_key=key,
                    language="en",
                    consent_version="t",
                    now=datetime.now(UTC),
                    storage=LocalStorage(app.config["UPLOAD_DIR"]),
                    policies=app.extensions["clinic_policies"],
                )
                results.append((result.consultation.reference, result.duplicate))
        except Exception as error:  # reported below; a thread cannot fail the test itself
            errors.append(error)

    event.listen(Session, "before_flush", wait_for_the_other)
    try:
        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        event.remove(Session, "before_flush", wait_for_the_other)

    assert errors == []
    assert sorted(duplicate for _, duplicate in results) == [False, True]
    assert results[0][0] == results[1][0]  # both answered with the same request
    with app.app_context():
        consultation = db.session.execute(select(ConsultationRequest)).scalar_one()
        assert len(consultation.photos) == 1
        kept = {consultation.photos[0].storage_key, consultation.photos[0].thumbnail_key}
    assert set(stored_files(upload_dir(app))) == kept  # the loser's files were removed


# --- Rate limit ----------------------------------------------------------------------------------


def test_submits_are_rate_limited(tmp_path):
    app = build_app(tmp_path, RATELIMIT_ENABLED=True, SUBMIT_RATE_LIMIT="2 per hour")
    reset_database(app)
    try:
        with app.app_context():
            client = app.test_client()
            assert submit_request(client).status_code == 303
            assert submit_request(client).status_code == 303
            third = submit_request(client)
            assert third.status_code == 429 and "Too many attempts" in page_text(third)
            assert client.get("/consultation/new").status_code == 200  # reading the form is not limited
            assert request_count() == 2
    finally:
        empty_database(app)


# --- Kept photos do not linger ---------------------------------------------------------------------


def test_kept_photos_of_abandoned_forms_are_swept_after_the_form_expires(app, client):
    import os
    import time

    from app.consultations.pending import PendingPhotos, sweep

    with app.test_request_context():
        photo = clean_photo(photo_bytes(), PhotoLimits.from_config(app.config))
    abandoned = PendingPhotos(app.config["UPLOAD_DIR"], "a" * 43)
    abandoned.add(photo)
    recent = PendingPhotos(app.config["UPLOAD_DIR"], "b" * 43)
    recent.add(photo)
    long_ago = time.time() - app.config["WTF_CSRF_TIME_LIMIT"] - 60
    os.utime(abandoned.folder, (long_ago, long_ago))

    assert sweep(app.config["UPLOAD_DIR"], app.config["WTF_CSRF_TIME_LIMIT"]) == 1
    assert not abandoned.folder.exists() and recent.ids()

    os.utime(recent.folder, (long_ago, long_ago))
    submit_request(client, photos=[])  # any form post sweeps on the way
    assert not recent.folder.exists()
