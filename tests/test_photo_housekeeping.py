"""`flask photos orphans [--delete]`: files without a photo row, and rows without their file."""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.extensions import db
from app.storage import photo_storage
from tests.factories import make_consultation, make_photo, stored_files

TWO_HOURS_AGO = time.time() - 2 * 3600


def left_behind(app, key: str, *, age_from: float | None = TWO_HOURS_AGO) -> Path:
    """A file in the upload folder that no photo row names, last written at `age_from`."""
    path = Path(app.config["UPLOAD_DIR"]) / key
    path.write_bytes(b"\xff\xd8 a photo nobody can reach \xff\xd9")
    # Stamped by this process's clock (which CI's pass a year ahead moves), as the app stamps its files.
    os.utime(path, None if age_from is None else (age_from, age_from))
    return path


def orphans(runner, *args: str) -> str:
    result = runner.invoke(args=["photos", "orphans", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_old_files_without_a_row_are_reported_and_removed_with_delete(app, runner):
    consultation, _ = make_consultation()
    photo = make_photo(consultation)
    storage = photo_storage()
    stale = left_behind(app, storage.new_key(".jpg"))
    stale_thumb = left_behind(app, storage.new_key(".thumb.jpg"))
    crashed_write = left_behind(app, ".incoming-abc123.part")
    in_flight = left_behind(app, storage.new_key(".jpg"), age_from=None)  # a submit happening right now

    output = orphans(runner)
    assert "Files without a photo row (older than an hour): 3" in output
    assert "Photo rows whose file is missing: 0" in output
    assert stale.exists()  # reporting alone removes nothing

    output = orphans(runner, "--delete")
    assert "Removed 3 file(s)." in output
    assert not stale.exists() and not stale_thumb.exists() and not crashed_write.exists()
    assert in_flight.exists()
    assert sorted(stored_files(app.config["UPLOAD_DIR"])) == sorted(
        [photo.storage_key, photo.thumbnail_key, in_flight.name]
    )


def test_rows_whose_file_is_missing_are_reported_never_deleted(app, runner):
    consultation, _ = make_consultation()
    intact = make_photo(consultation)
    broken = make_photo(consultation)
    (Path(app.config["UPLOAD_DIR"]) / broken.thumbnail_key).unlink()

    output = orphans(runner, "--delete")
    assert "Photo rows whose file is missing: 1" in output
    assert f"photo ids: {broken.id}" in output
    assert "Files without a photo row (older than an hour): 0" in output
    db.session.expire_all()
    assert {p.id for p in consultation.photos} == {intact.id, broken.id}
