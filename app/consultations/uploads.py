"""Collecting the photos of one form post (the ones kept from an earlier try plus the new uploads),
and writing them to storage for a request or a reply.

Every new file goes through app.photos.clean_photo; each refusal becomes a sentence naming the
file, so the patient knows which photo to replace. Nothing here touches the database.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from flask_babel import gettext, ngettext
from werkzeug.datastructures import FileStorage

from app.consultations.pending import PendingPhotos
from app.consultations.photo_views import Slot
from app.models import Photo
from app.photos import CleanPhoto, PhotoLimits, PhotoRejected, clean_photo
from app.storage import PhotoStorage

log = logging.getLogger(__name__)

# Decoding is the expensive part: never decode more than this many files from one post.
PROCESS_AT_MOST = 2


@dataclass
class PhotoBatch:
    kept: list[tuple[str, CleanPhoto]] = field(default_factory=list)  # (pending id, photo)
    new: list[CleanPhoto] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def photos(self) -> list[CleanPhoto]:
        return [photo for _, photo in self.kept] + self.new

    def areas(self) -> set[int]:
        """The guided areas that have at least one photo."""
        return {photo.area for photo in self.photos if photo.area is not None}

    def place(self, sites: Mapping[int, str]) -> None:
        """Give every photo sent in an area's slot that area's body site (chosen once per area)."""

        def placed(photo: CleanPhoto) -> CleanPhoto:
            if photo.area is None:
                return photo
            return dataclasses.replace(photo, body_site=sites.get(photo.area))

        self.kept = [(photo_id, placed(photo)) for photo_id, photo in self.kept]
        self.new = [placed(photo) for photo in self.new]

    def keep_for_later(self, pending: PendingPhotos) -> None:
        """The form goes back for corrections: keep the new photos that passed, so they need not be re-added."""
        for photo in self.new:
            self.kept.append((pending.add(photo), photo))
        self.new = []


def chosen_files(files: Iterable[FileStorage]) -> list[FileStorage]:
    """The file parts that carry a file (an untouched file input sends an empty part with no name)."""
    return [f for f in files if f is not None and (f.filename or "").strip()]


def collect(
    files: Iterable[FileStorage],
    kept_ids: Iterable[str],
    pending: PendingPhotos,
    limits: PhotoLimits,
    max_photos: int,
    slotted: Sequence[tuple[FileStorage, Slot]] = (),
) -> PhotoBatch:
    """Kept photos plus new uploads: `files` without a slot, `slotted` each in its guided slot."""
    batch = PhotoBatch()
    wanted = list(dict.fromkeys(kept_ids))  # the order shown, without repeats
    pending.keep_only(wanted)
    for photo_id in wanted:
        photo = pending.load(photo_id)
        if photo is not None:
            batch.kept.append((photo_id, photo))
    uploads: list[tuple[FileStorage, Slot | None]] = [(upload, slot) for upload, slot in slotted]
    uploads += [(upload, None) for upload in chosen_files(files)]
    if len(batch.kept) + len(uploads) > PROCESS_AT_MOST * max_photos:
        batch.errors.append(_too_many(max_photos))
        return batch
    for number, (upload, slot) in enumerate(uploads, start=1):
        try:
            photo = clean_photo(_read_limited(upload.stream, limits.max_bytes), limits)
        except PhotoRejected as refused:
            batch.errors.append(_named(upload, number, refused.reason))
            continue
        if slot is not None:
            photo = dataclasses.replace(photo, area=slot.area, view=slot.view)
        batch.new.append(photo)
    if not batch.photos and not batch.errors:
        batch.errors.append(gettext("Add at least one photo of the affected skin."))
    elif len(batch.photos) > max_photos:
        batch.errors.append(_too_many(max_photos))
    return batch


def _read_limited(stream: IO[bytes], max_bytes: int) -> bytes:
    # One byte over the limit is enough to know the file is too big; never read more.
    return stream.read(max_bytes + 1)


def _named(upload: FileStorage, number: int, reason: str) -> str:
    name = (upload.filename or "").strip().replace("\\", "/").rsplit("/", 1)[-1][:80]
    label = f"“{name}”" if name else gettext("Photo %(number)d", number=number)
    return f"{label}: {reason}"


def _too_many(max_photos: int) -> str:
    return ngettext(
        "You can send up to %(num)d photo. Please remove some.",
        "You can send up to %(num)d photos. Please remove some.",
        max_photos,
    )


def write_photos(
    photos: Sequence[CleanPhoto], storage: PhotoStorage, written: list[str]
) -> list[tuple[CleanPhoto, str, str]]:
    """Write each photo and its thumbnail under new random keys; returns (photo, key, thumbnail key).

    `written` lists every key as soon as its file exists, so that a failure anywhere before the
    commit can remove them all with remove_files().
    """
    stored = []
    for photo in photos:
        key, thumbnail_key = storage.new_key(".jpg"), storage.new_key(".thumb.jpg")
        written.append(key)
        storage.save(key, photo.jpeg)
        written.append(thumbnail_key)
        storage.save(thumbnail_key, photo.thumbnail)
        stored.append((photo, key, thumbnail_key))
    return stored


def photo_rows(
    stored: Sequence[tuple[CleanPhoto, str, str]], now: datetime, message_id: int | None = None
) -> list[Photo]:
    """The Photo rows for files write_photos() stored (with a patient's reply: its message id)."""
    return [
        Photo(
            message_id=message_id,
            storage_key=key,
            thumbnail_key=thumbnail_key,
            width=photo.width,
            height=photo.height,
            bytes=photo.size,
            sha256=photo.sha256,
            created_at=now,
            area=photo.area,
            body_site=photo.body_site,
            view=photo.view,
        )
        for photo, key, thumbnail_key in stored
    ]


def remove_files(storage: PhotoStorage, keys: Sequence[str]) -> None:
    """Remove files written for something that was not saved after all."""
    for key in keys:
        try:
            storage.delete(key)
        except OSError:  # keep removing the others; a file without a row is found by `flask photos orphans`
            log.warning("intake: could not remove a photo file after a failed save")
