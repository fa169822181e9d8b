"""`flask photos orphans [--delete]`: photo files and photo rows that have lost each other.

- Files in UPLOAD_DIR that no Photo row names (a crash between writing a file and committing,
  or a file an erasure could not remove), plus leftover partial writes. Only files older than an
  hour count: a request being submitted right now writes its files before its row commits.
- Photo rows whose file (or thumbnail) is missing: a dermatologist would see a broken photo.
  These are reported, never deleted; someone should look at why.

`--delete` removes the orphan files. Nothing is logged but counts and keys (random, no meaning).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.extensions import db
from app.models import Photo
from app.storage import LocalStorage, photo_storage

MIN_AGE_SECONDS = 3600
PARTIAL_WRITE_PREFIX = ".incoming-"


@dataclass(frozen=True)
class OrphanReport:
    files: list[str]  # names in the upload folder with no row (and old enough)
    rows_missing_files: list[int]  # Photo ids


def _age_seconds(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0  # gone meanwhile: not ours to count


def find_orphans(storage: LocalStorage, now: float | None = None, min_age: float = MIN_AGE_SECONDS) -> OrphanReport:
    """Compare the upload folder with the Photo rows."""
    now = time.time() if now is None else now
    rows = db.session.execute(select(Photo.id, Photo.storage_key, Photo.thumbnail_key)).all()
    known = {key for _, photo_key, thumb_key in rows for key in (photo_key, thumb_key)}
    partial = []
    if storage.root.is_dir():
        partial = [entry.name for entry in os.scandir(storage.root) if entry.name.startswith(PARTIAL_WRITE_PREFIX)]
    stored_keys = storage.keys()
    unclaimed = [key for key in stored_keys if key not in known] + partial
    files = sorted(name for name in unclaimed if _age_seconds(storage.root / name, now) > min_age)
    missing = [
        photo_id
        for photo_id, photo_key, thumb_key in rows
        if not (storage.exists(photo_key) and storage.exists(thumb_key))
    ]
    return OrphanReport(files=files, rows_missing_files=sorted(missing))


def delete_files(storage: LocalStorage, names: list[str]) -> int:
    removed = 0
    for name in names:
        try:
            (storage.root / name).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


@click.group("photos", help="Housekeeping for stored photos.")
def commands() -> None:
    pass


@commands.command("orphans")
@click.option("--delete", "delete", is_flag=True, help="Remove the files that no photo row names.")
@with_appcontext
def orphans(delete: bool) -> None:
    """Report photo files without a row (older than an hour) and rows whose file is missing."""
    storage = photo_storage()
    if not isinstance(storage, LocalStorage):
        # The check reads the folder itself (file ages, partial writes); see docs/operations.md.
        raise click.ClickException(
            "`flask photos orphans` works only with the local folder storage (STORAGE_BACKEND=local)."
        )
    report = find_orphans(storage)
    db.session.rollback()
    click.echo(f"Files without a photo row (older than an hour): {len(report.files)}")
    click.echo(f"Photo rows whose file is missing: {len(report.rows_missing_files)}")
    if report.rows_missing_files:
        click.echo("  photo ids: " + ", ".join(str(photo_id) for photo_id in report.rows_missing_files))
    if delete and report.files:
        click.echo(f"Removed {delete_files(storage, report.files)} file(s).")
    elif report.files:
        click.echo("Run with --delete to remove them.")
