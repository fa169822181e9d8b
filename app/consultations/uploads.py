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
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import FileStorage

from app.consultations.pending import PendingPhotos
from app.consultations.photo_views import Slot
from app.models import Photo
from app.photos import (
    HEAVY_PIXELS,
    TOO_MANY_PIXELS_TOGETHER,
    CleanPhoto,
    PhotoLimits,
    PhotoRejected,
    clean_photo,
    decode_cost,
    release_memory,
)
from app.storage import PhotoStorage

log = logging.getLogger(__name__)

PHOTOS_NOT_KEPT = _l(
    "We could not keep your photos just now, so nothing has been sent yet. What you typed is still here: "
    "please check it, add your photos again and press “Send” in a moment."
)


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

    def keep_for_later(self, pending: PendingPhotos) -> bool:
        """The form goes back for corrections: keep the new photos that passed, so they need not be re-added.

        False when they could not be kept (the upload folder full or read-only): then none of this
        post's photos is kept, nothing half-written stays, and the patient is asked to add them again.
        """
        added: list[tuple[str, CleanPhoto]] = []
        try:
            for photo in self.new:
                added.append((pending.add(photo), photo))
        except OSError as error:
            for photo_id, _photo in added:
                pending.discard(photo_id)
            log.error("photos: could not keep a form's photos for its correction (%s)", type(error).__name__)
            self.new = []
            return False
        self.kept.extend(added)
        self.new = []
        return True


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
    """The post's photos: the ones kept from an earlier try, and the new uploads cleaned: `files`
    without a slot, `slotted` each in its guided slot.

    Decoding is the expensive part, so what the post may do is settled first, from the files'
    headers alone: no more files than may be kept (MAX_PHOTOS), each one decodable, and all of them
    together within MAX_PIXELS_PER_REQUEST. Only then is anything decoded, one file at a time.
    """
    batch = PhotoBatch()
    wanted = list(dict.fromkeys(kept_ids))  # the order shown, without repeats
    pending.keep_only(wanted)
    for photo_id in wanted:
        photo = pending.load(photo_id)
        if photo is not None:
            batch.kept.append((photo_id, photo))
    uploads: list[tuple[FileStorage, Slot | None]] = [(upload, slot) for upload, slot in slotted]
    uploads += [(upload, None) for upload in chosen_files(files)]
    if len(batch.kept) + len(uploads) > max_photos:
        batch.errors.append(_too_many(max_photos))
        return batch
    decodable, pixels = _measure(uploads, limits, batch)
    if pixels > limits.max_request_pixels:
        batch.errors.append(str(TOO_MANY_PIXELS_TOGETHER))
        return batch
    try:
        for number, upload, slot in decodable:
            try:
                photo = clean_photo(_read_limited(upload.stream, limits.max_bytes), limits)
            except PhotoRejected as refused:
                batch.errors.append(_named(upload, number, refused.reason))
                continue
            if slot is not None:
                photo = dataclasses.replace(photo, area=slot.area, view=slot.view)
            batch.new.append(photo)
    finally:
        if pixels >= HEAVY_PIXELS:
            release_memory()  # a worker keeps no memory from big decodes
    if not batch.photos and not batch.errors:
        batch.errors.append(gettext("Add at least one photo of the affected skin."))
    return batch


def _measure(
    uploads: list[tuple[FileStorage, Slot | None]], limits: PhotoLimits, batch: PhotoBatch
) -> tuple[list[tuple[int, FileStorage, Slot | None]], int]:
    """The uploads worth decoding (numbered as the patient chose them) and the pixels that will take;
    each one refused from its header alone gets its sentence in the batch's errors."""
    decodable: list[tuple[int, FileStorage, Slot | None]] = []
    pixels = 0
    for number, (upload, slot) in enumerate(uploads, start=1):
        try:
            pixels += decode_cost(_read_limited(upload.stream, limits.max_bytes), limits)
        except PhotoRejected as refused:
            batch.errors.append(_named(upload, number, refused.reason))
            continue
        decodable.append((number, upload, slot))
    return decodable, pixels


def _read_limited(stream: IO[bytes], max_bytes: int) -> bytes:
    """The upload's bytes, from its start (it is read twice: measured, then decoded).
    One byte over the limit is enough to know the file is too big; never read more."""
    stream.seek(0)
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
