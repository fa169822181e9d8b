"""Photos kept for a form that is being corrected.

Browsers cannot re-fill a file input, so when the consultation form comes back with an error the
photos that were already checked would be lost, and a patient on a phone would have to find them
again. Instead, their cleaned re-encodes wait here, in a folder named after the form's one-time
submission key, and the form shows them as thumbnails. The folder goes when the request is sent,
or is swept once it is older than the form itself can be (the CSRF time limit).

Only cleaned JPEGs are kept (never an original upload), outside static/, under random names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from app.photos import CleanPhoto, from_stored
from app.storage import LocalStorage, StorageError, new_key

PENDING_FOLDER = "pending"
SUBMISSION_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
PHOTO_ID_PATTERN = re.compile(r"^[a-f0-9]{32}$")


def valid_submission_key(key: str | None) -> bool:
    return bool(key and SUBMISSION_KEY_PATTERN.match(key))


class PendingPhotos:
    """The photos kept for one submission key, in the order they were added."""

    def __init__(self, upload_dir: str | os.PathLike[str], submission_key: str) -> None:
        if not valid_submission_key(submission_key):
            raise ValueError("not a submission key")
        # The folder name is a hash, so the form's key never appears on disk or in a listing.
        folder = hashlib.sha256(submission_key.encode("ascii")).hexdigest()[:32]
        self.folder = Path(upload_dir) / PENDING_FOLDER / folder
        self.store = LocalStorage(self.folder)

    def add(self, photo: CleanPhoto) -> str:
        """Keep a checked photo (and the slot it was sent in); returns its id for the form.

        All or nothing: when the disk is full or read-only (OSError), nothing of it stays behind.
        """
        photo_id = new_key().removesuffix(".jpg")
        try:
            self.store.save(f"{photo_id}.thumb.jpg", photo.thumbnail)
            if photo.area is not None:
                slot = {"area": photo.area, "view": photo.view}
                # A small note beside the photo (the store holds photos only); the folder exists by now.
                (self.folder / f"{photo_id}.slot.json").write_text(json.dumps(slot), encoding="ascii")
            self.store.save(f"{photo_id}.jpg", photo.jpeg)  # written last: its presence means "complete"
        except OSError:
            self.discard(photo_id)
            raise
        return photo_id

    def discard(self, photo_id: str) -> None:
        """Remove one kept photo, as far as the disk allows (a failure here is not worth another)."""
        for name in (f"{photo_id}.jpg", f"{photo_id}.thumb.jpg"):
            with contextlib.suppress(OSError):
                self.store.delete(name)
        with contextlib.suppress(OSError):
            (self.folder / f"{photo_id}.slot.json").unlink(missing_ok=True)

    def slot(self, photo_id: str) -> tuple[int | None, str | None]:
        """(area, view) of a kept photo sent in a guided slot, or (None, None)."""
        if not PHOTO_ID_PATTERN.match(photo_id or ""):
            return None, None
        try:
            slot = json.loads((self.folder / f"{photo_id}.slot.json").read_text(encoding="ascii"))
            return int(slot["area"]), str(slot["view"])
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    def ids(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        entries = [
            (entry.stat().st_mtime_ns, entry.name.removesuffix(".jpg"))
            for entry in os.scandir(self.folder)
            if entry.name.endswith(".jpg") and not entry.name.endswith(".thumb.jpg")
        ]
        return [photo_id for _, photo_id in sorted(entries) if PHOTO_ID_PATTERN.match(photo_id)]

    def load(self, photo_id: str) -> CleanPhoto | None:
        if not PHOTO_ID_PATTERN.match(photo_id or ""):
            return None
        try:
            photo = from_stored(self.store.read(f"{photo_id}.jpg"), self.store.read(f"{photo_id}.thumb.jpg"))
        except (StorageError, OSError):
            return None
        area, view = self.slot(photo_id)
        return dataclasses.replace(photo, area=area, view=view) if area is not None else photo

    def thumbnail(self, photo_id: str) -> bytes | None:
        if not PHOTO_ID_PATTERN.match(photo_id or ""):
            return None
        try:
            return self.store.read(f"{photo_id}.thumb.jpg")
        except (StorageError, OSError):
            return None

    def keep_only(self, photo_ids: Iterable[str]) -> None:
        """Drop the photos the patient removed from the form."""
        wanted = set(photo_ids)
        for photo_id in self.ids():
            if photo_id not in wanted:
                self.store.delete(f"{photo_id}.jpg")
                self.store.delete(f"{photo_id}.thumb.jpg")
                (self.folder / f"{photo_id}.slot.json").unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def sweep(upload_dir: str | os.PathLike[str], max_age_seconds: float, now: float | None = None) -> int:
    """Remove pending folders untouched for longer than `max_age_seconds`; returns how many went."""
    root = Path(upload_dir) / PENDING_FOLDER
    if not root.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - max_age_seconds
    removed = 0
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed
