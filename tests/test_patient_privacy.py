"""Data rights on the private page: "Download my data" (a zip with data.json and the photos) and
"Erase my data" (everything about the request goes, but one audit event without health data)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.consultations import privacy
from app.consultations import staff_actions as actions
from app.consultations.audit import Actor
from app.consultations.conversation import reply_draft_key
from app.consultations.pending import PendingPhotos
from app.consultations.submission import send_requested_links
from app.extensions import db
from app.models import AuditAction, AuditEvent, ConsultationRequest, Message, OutboundEmail, Photo, ResponseClock
from app.outbox import render
from app.runtime import policies
from app.storage import photo_storage
from tests.factories import make_consultation, make_photo, make_user, photo_bytes, stored_files

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NOTE = "Internal: possibly melanoma, discuss at Friday meeting."


@pytest.fixture
def derm(app):
    return make_user("dermatologist", name="Dr Rūta Kazlauskienė", email="ruta@clinic.example")


def a_whole_conversation(derm, client) -> tuple[ConsultationRequest, str]:
    """A request with a photo, a question, the patient's reply with a photo, a note and an answer."""
    consultation, token = make_consultation(created_at=T0, patient_name="Ona Petraitienė")
    make_photo(consultation)
    actions.claim(consultation, derm, T0)
    actions.add_note(consultation, derm, NOTE, T0)
    actions.ask(consultation, derm, "Is it itchy at night?", T0 + timedelta(hours=1))
    db.session.commit()
    response = client.post(
        f"/c/{token}/reply",
        data={"body": "Yes, mostly at night.", "photos": [(io.BytesIO(photo_bytes()), "night.jpg")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    answer = actions.Answer(assessment="Likely nummular eczema.", treatment="A steroid cream for two weeks.")
    actions.answer(db.session.get(ConsultationRequest, consultation.id), derm, answer, T0 + timedelta(hours=3))
    db.session.commit()
    return consultation, token


def download(client, token):
    return client.post(f"/c/{token}/export")


def rows(model, **where) -> list:
    query = select(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return list(db.session.execute(query).scalars())


# --- Download my data --------------------------------------------------------------------------------


def test_download_gives_a_zip_with_the_data_and_the_photos_but_never_internal_notes(client, derm):
    consultation, token = a_whole_conversation(derm, client)
    response = download(client, token)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == f"attachment; filename=skin-clinic-{consultation.reference}.zip"
    assert response.headers["Cache-Control"].startswith("no-store")
    assert "Expires" not in response.headers and "ETag" not in response.headers
    assert b"possibly melanoma" not in response.data and b"Friday meeting" not in response.data

    bundle = zipfile.ZipFile(io.BytesIO(response.data))
    assert sorted(bundle.namelist()) == ["data.json", "photos/photo-01.jpg", "photos/photo-02.jpg"]
    data = json.loads(bundle.read("data.json"))
    request = data["request"]
    assert request["reference"] == consultation.reference and request["patient_name"] == "Ona Petraitienė"
    assert request["description"] == "Itchy spots on both palms for three weeks."
    assert request["created_at"] == "2026-11-24T09:00:00Z" and request["status"] == "answered"
    assert "links" not in request and "token_hash" not in str(data) and "submission_key" not in request
    kinds = [(m["number"], m["kind"]) for m in data["messages"]]
    assert kinds == [(1, "question"), (2, "patient_reply"), (3, "answer")]
    assert data["messages"][0]["dermatologist"] == "Dr Rūta Kazlauskienė"
    assert data["messages"][1]["body"] == "Yes, mostly at night." and "dermatologist" not in data["messages"][1]
    assert data["messages"][2]["assessment"] == "Likely nummular eczema."
    assert [(p["file"], p["sent_with"]) for p in data["photos"]] == [
        ("photos/photo-01.jpg", "request"),
        ("photos/photo-02.jpg", "message 2"),
    ]
    stored = rows(Photo, request_id=consultation.id)
    for entry, photo in zip(data["photos"], stored, strict=True):
        content = bundle.read(entry["file"])
        assert content == photo_storage().read(photo.storage_key)
        assert entry["sha256"] == photo.sha256 and content[:2] == b"\xff\xd8"
    exported = rows(AuditEvent, request_id=consultation.id, action="exported")
    assert [(e.actor_kind, e.detail) for e in exported] == [("patient", None)]


def test_a_missing_photo_file_is_marked_rather_than_failing_the_download(client, derm):
    consultation, token = make_consultation()
    photo = make_photo(consultation)
    photo_storage().delete(photo.storage_key)
    data = json.loads(zipfile.ZipFile(io.BytesIO(download(client, token).data)).read("data.json"))
    assert data["photos"][0]["missing"] is True


def test_download_is_a_post_only(client):
    _consultation, token = make_consultation()
    assert client.get(f"/c/{token}/export").status_code == 405
    page = client.get(f"/c/{token}").get_data(as_text=True)
    assert f'action="/c/{token}/export"' in page and "Download my data" in page


# --- Erase my data -----------------------------------------------------------------------------------


def test_erase_asks_for_confirmation_first(client, derm):
    consultation, token = make_consultation()
    page = client.get(f"/c/{token}/erase")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Erase everything for good" in text and "Download my data first" in text
    refused = client.post(f"/c/{token}/erase", data={})
    assert refused.status_code == 422
    assert 'id="confirm-error">Tick the box to confirm' in refused.get_data(as_text=True)
    assert db.session.get(ConsultationRequest, consultation.id) is not None


def test_erase_removes_the_request_its_photos_and_messages_and_keeps_a_trace_without_health_data(client, derm, app):
    consultation, token = a_whole_conversation(derm, client)
    other, other_token = make_consultation(email="someone.else@example.com")
    other_photo = make_photo(other)
    reference, request_id = consultation.reference, consultation.id
    photo_keys = [photo.storage_key for photo in rows(Photo, request_id=request_id)]
    staff_alerts = [e.id for e in rows(OutboundEmail, request_id=request_id) if e.recipient != "patient@example.com"]
    for email in rows(OutboundEmail, request_id=request_id):
        if email.template in ("patient_replied", "patient_reply_ready"):
            email.status = "sent"  # delivered: the dermatologist's email stays (detached), the patient's goes
    db.session.commit()
    assert len(photo_keys) == 2 and staff_alerts

    response = client.post(f"/c/{token}/erase", data={"confirm": "y"})
    assert response.status_code == 303 and response.headers["Location"] == "/consultation/erased"
    done = client.get("/consultation/erased").get_data(as_text=True)
    assert f"Request {reference}, its photos and its messages have been deleted." in done

    db.session.expire_all()
    assert db.session.get(ConsultationRequest, request_id) is None
    for model in (Photo, Message, ResponseClock, AuditEvent, OutboundEmail):
        assert rows(model, request_id=request_id) == []
    remaining = db.session.execute(select(OutboundEmail)).scalars().all()
    assert not [e for e in remaining if e.recipient == "patient@example.com"]
    kept = sorted((e.template, e.status) for e in remaining if e.request_id is None)
    assert kept == [("patient_replied", "sent")]
    traces = db.session.execute(select(AuditEvent).where(AuditEvent.detail.like(f"%{reference}%"))).scalars().all()
    assert [(t.action, t.actor_kind, t.request_id, t.detail) for t in traces] == [
        ("erased", "patient", None, f"erased {reference}")
    ]
    # The files are gone; the other patient's request is untouched.
    assert stored_files(app.config["UPLOAD_DIR"]) == sorted([other_photo.storage_key, other_photo.thumbnail_key])
    assert db.session.get(ConsultationRequest, other.id) is not None
    assert client.get(f"/c/{other_token}").status_code == 200

    # The link is now a plain 404, like any made-up link, and so is everything under it.
    gone = client.get(f"/c/{token}")
    assert gone.status_code == 404 and reference not in gone.get_data(as_text=True)
    for path in (f"/photos/{photo_keys[0]}", "/erase", "/withdraw"):
        assert client.get(f"/c/{token}{path}").status_code == 404
    assert client.post(f"/c/{token}/export").status_code == 404


def test_erase_also_removes_photos_kept_for_an_unsent_reply(client, derm, app):
    consultation, token = make_consultation()
    actions.claim(consultation, derm, T0)
    actions.ask(consultation, derm, "A closer photo, please?", T0)
    db.session.commit()
    client.post(
        f"/c/{token}/reply",
        data={"body": "x" * 6000, "photos": [(io.BytesIO(photo_bytes()), "close.jpg")]},
        content_type="multipart/form-data",
    )
    draft = PendingPhotos(app.config["UPLOAD_DIR"], reply_draft_key(consultation.id, consultation.reference))
    assert len(draft.ids()) == 1
    client.post(f"/c/{token}/erase", data={"confirm": "y"})
    assert stored_files(app.config["UPLOAD_DIR"]) == []


def test_erase_consultation_is_reusable_without_a_browser(app, derm):
    """What `flask retention purge` will call: the same deletion, with its own audit action."""
    consultation, _token = make_consultation(status="closed")
    photo_key = make_photo(consultation).storage_key
    reference = consultation.reference
    erased = privacy.erase_consultation(
        consultation, photo_storage(), policies().upload_dir, actor=Actor.system(), action=AuditAction.PURGED
    )
    assert (erased.reference, erased.files_removed, erased.files_left) == (reference, 2, 0)
    assert not photo_storage().exists(photo_key)
    assert db.session.execute(select(func.count(ConsultationRequest.id))).scalar_one() == 0
    [trace] = db.session.execute(select(AuditEvent)).scalars().all()
    assert (trace.action, trace.actor_kind, trace.request_id, trace.detail) == (
        "purged",
        "system",
        None,
        f"purged {reference}",
    )


def test_a_failed_erasure_changes_nothing(app, derm):
    consultation, _token = make_consultation()
    photo = make_photo(consultation)

    def database_goes_away(session):
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    event.listen(Session, "before_commit", database_goes_away, once=True)
    with pytest.raises(OperationalError):
        privacy.erase_consultation(consultation, photo_storage(), policies().upload_dir, actor=Actor.patient())
    db.session.expire_all()
    assert db.session.get(ConsultationRequest, consultation.id) is not None
    assert rows(Photo, request_id=consultation.id) and photo_storage().exists(photo.storage_key)
    assert rows(AuditEvent, action="erased") == []


def test_the_replied_email_has_no_health_data_and_leads_back_to_the_page(client, derm):
    """The queue's "your dermatologist has replied" email carries a private link of its own and no
    health data; without the link (wiped after a failure) it points to "lost your link?"."""
    a_whole_conversation(derm, client)
    emails = rows(OutboundEmail, template="patient_reply_ready")
    assert len(emails) == 2  # the question, then the answer
    for email in emails:
        subject, text, html = render(email)
        for words in ("nummular", "steroid", "itchy", "Ona", "night"):
            assert words not in subject + text + html
    _subject, text, _html = render(emails[-1])
    link = re.search(r"http://localhost(/c/[\w-]+)", text).group(1)
    assert "Likely nummular eczema." in client.get(link).get_data(as_text=True)

    emails[-1].sealed_context = None
    _subject, text, _html = render(emails[-1])
    assert "http://localhost/consultation/link" in text and "/c/" not in text
    response = client.post("/consultation/link", data={"email": "patient@example.com"})
    assert response.status_code == 303
    send_requested_links()  # the worker's part
    [resent] = rows(OutboundEmail, template="link_resent")
    _subject, text, _html = render(resent)
    new_link = re.search(r"http://localhost(/c/[\w-]+)", text).group(1)
    assert "Likely nummular eczema." in client.get(new_link).get_data(as_text=True)
    assert client.get(link).status_code == 404  # "lost your link?" replaces every earlier link
