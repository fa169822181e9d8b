"""Where photo bytes live: a small storage interface, with a local folder (UPLOAD_DIR) by default.

Files sit outside static/ so that the web server can never hand them out directly: every photo is
served by a view that checks who is asking. Keys are random and carry no meaning (no names, no
references), and every write is atomic, so a reader never sees half a photo.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import current_app

# Random hex plus a fixed suffix; anything else (slashes, dots, "..") is refused before touching the disk.
KEY_PATTERN = re.compile(r"^[a-f0-9]{32}(?:\.thumb)?\.jpg$")


class StorageError(OSError):
    """A key that is not one of ours, or a file that is not there."""


class PhotoStorage(Protocol):
    """What the rest of the app needs from a place that keeps photo bytes."""

    def new_key(self, suffix: str = ".jpg") -> str: ...
    def save(self, key: str, data: bytes) -> None: ...
    def open(self, key: str) -> BinaryIO: ...
    def read(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


def new_key(suffix: str = ".jpg") -> str:
    """A fresh random key such as '3f9c…e1.jpg' (128 bits: guessing one is hopeless)."""
    if suffix not in (".jpg", ".thumb.jpg"):
        raise ValueError(f"unsupported suffix {suffix!r}")
    return secrets.token_hex(16) + suffix


class LocalStorage:
    """Photos as files in one folder on the local disk (or a shared mount when running several machines)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def new_key(self, suffix: str = ".jpg") -> str:
        return new_key(suffix)

    def path(self, key: str) -> Path:
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise StorageError(f"not a storage key: {key!r}")
        return self.root / key

    def save(self, key: str, data: bytes) -> None:
        """Write all of `data` under `key`, atomically: a temporary file in the same folder, then a rename."""
        target = self.path(key)
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".incoming-", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError as error:
            raise StorageError(f"no such photo: {key}") from error

    def read(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except StorageError:
            return False

    def delete(self, key: str) -> None:
        """Remove a file; a file that is already gone is not an error (deletes are retried after failures)."""
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def keys(self) -> list[str]:
        """Every stored key (for housekeeping: orphan checks, pending-area sweeps)."""
        if not self.root.is_dir():
            return []
        return sorted(entry.name for entry in os.scandir(self.root) if KEY_PATTERN.match(entry.name))


def photo_storage() -> LocalStorage:
    """The storage for the current app (UPLOAD_DIR)."""
    return LocalStorage(current_app.config["UPLOAD_DIR"])
