"""The upload folder full or read-only while a form goes back for corrections: the photos cannot be
kept, and the answer is the one a failed submit gets (503, a clear message, nothing half-saved,
what the patient typed still on the form), never a 500.

Tests run as root here, so a chmod would not stop a write: the folder for kept photos is made
impossible instead (a regular file stands where the `pending` folder should be), and a disk that
fills up half-way through is a save that fails with ENOSPC on its second file.
"""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest

from app.consultations.pending import PENDING_FOLDER, PendingPhotos
from app.photos import PhotoLimits, clean_photo
from app.storage import LocalStorage
from tests.factories import intake_answers, make_consultation, open_consultation_form, photo_bytes, stored_files
from tests.security.attack import app_with, nothing_stored

NOT_KEPT = "We could not keep your photos just now, so nothing has been sent yet."


def block_the_pending_folder(app) -> Path:
    """A regular file where the folder for kept photos goes: every write under it fails with an OSError."""
    upload_dir = Path(app.config["UPLOAD_DIR"])
    upload_dir.mkdir(parents=True, exist_ok=True)
    blocker = upload_dir / PENDING_FOLDER
    blocker.write_bytes(b"not a folder")
    return blocker


def files(app) -> list[str]:
    return stored_files(app.config["UPLOAD_DIR"])


def test_a_consultation_form_with_an_error_and_no_room_for_its_photos(tmp_path):
    """[F10] Intake with a validation error: the photos could not be kept, and the page answered 500."""
    with app_with(tmp_path, PROPAGATE_EXCEPTIONS=False) as app:
        block_the_pending_folder(app)
        client = app.test_client()
        _, key = open_consultation_form(client)
        data = intake_answers(description="", medications="Zinc ointment, twice a day")
        data.update(submission_key=key, photos=[(io.BytesIO(photo_bytes()), "rash.jpg")])
        with nothing_stored(app):
            response = client.post("/consultation/new", data=data, content_type="multipart/form-data")
        assert response.status_code == 503
        text = response.get_data(as_text=True)
        assert NOT_KEPT in text and 'id="photos-lost"' in text
        assert "Zinc ointment, twice a day" in text and "Ona Petraitien" in text  # what was typed
        assert files(app) == ["pending"]


def reply_with_a_photo(client, token: str, body: str):
    data = {"body": body, "photos": [(io.BytesIO(photo_bytes()), "rash.jpg")]}
    return client.post(f"/c/{token}/reply", data=data, content_type="multipart/form-data")


def test_a_reply_with_a_form_error_and_no_room_for_its_photos(tmp_path):
    """[F10] A reply with a form error: the photos could not be kept, and the page answered 500."""
    with app_with(tmp_path, PROPAGATE_EXCEPTIONS=False) as app:
        _, token = make_consultation(status="awaiting_patient")
        block_the_pending_folder(app)
        too_long = "It itches at night. " * 300  # over the 5000 characters a reply may have
        with nothing_stored(app):
            response = reply_with_a_photo(app.test_client(), token, too_long)
        assert response.status_code == 503
        text = response.get_data(as_text=True)
        assert NOT_KEPT in text and "It itches at night." in text
        assert files(app) == ["pending"]


def test_a_refused_reply_and_no_room_for_its_photos(tmp_path):
    """[F10] A reply the request no longer takes: keeping its photos failed, and the page answered 500.
    Now the refusal comes before any photo is decoded or kept (F1): a plain 409, the text still there."""
    with app_with(tmp_path, PROPAGATE_EXCEPTIONS=False) as app:
        consultation, token = make_consultation(status="answered")  # no answer date: no follow-up either
        block_the_pending_folder(app)
        with nothing_stored(app):
            response = reply_with_a_photo(app.test_client(), token, "One more thing about the cream.")
        assert response.status_code == 409
        text = response.get_data(as_text=True)
        assert "not waiting for a message from you" in text and "One more thing about the cream." in text
        assert files(app) == ["pending"]
        assert consultation.status == "answered"


class FillsUpOnTheSecondFile(LocalStorage):
    """A disk that fills up after one file: the second save fails with ENOSPC, as a full disk does."""

    saves = 0

    def save(self, key: str, data: bytes) -> None:
        FillsUpOnTheSecondFile.saves += 1
        if FillsUpOnTheSecondFile.saves >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().save(key, data)


def test_a_photo_half_written_when_the_disk_fills_up_is_removed(tmp_path, monkeypatch):
    """[F10] The thumbnail was written, the photo was not, and the half-written entry stayed."""
    with app_with(tmp_path) as app:
        pending = PendingPhotos(app.config["UPLOAD_DIR"], "k" * 43)
        pending.store = FillsUpOnTheSecondFile(pending.folder)
        photo = clean_photo(photo_bytes(), PhotoLimits.from_config(app.config))
        with pytest.raises(OSError, match="No space left"):
            pending.add(photo)
        assert not any(pending.folder.iterdir())
        assert pending.ids() == []
