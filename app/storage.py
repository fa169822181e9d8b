"""Where photo bytes live: a small storage interface, with a local folder (UPLOAD_DIR) by default.

Files sit outside static/ so that the web server can never hand them out directly: every photo is
served by a view that checks who is asking (and audits it). Keys are random and carry no meaning
(no names, no references), and every write is atomic, so a reader never sees half a photo.

Choosing the storage (STORAGE_BACKEND):

- "local" (the default): files in UPLOAD_DIR. On one machine that is a local folder; with several
  machines, UPLOAD_DIR must be the same shared folder on all of them (an NFS mount, say).
- "package.module:factory": anything else, for example object storage. `factory(config)` gets the
  app's settings and returns an object with the methods of `PhotoStorage` below. It is built once
  per app and shared by its threads, so it must be thread-safe (boto3 clients are).

Photos kept while a patient corrects the form (app.consultations.pending) always live under UPLOAD_DIR,
whatever STORAGE_BACKEND says: with several machines UPLOAD_DIR is shared (or the load balancer
keeps a browser on one machine). docs/operations.md says what an object-storage backend must do.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from flask import current_app

# Random hex plus a fixed suffix; anything else (slashes, dots, "..") is refused before touching the disk.
KEY_PATTERN = re.compile(r"^[a-f0-9]{32}(?:\.thumb)?\.jpg$")


class StorageError(OSError):
    """A key that is not one of ours, or a file that is not there."""


class PhotoStorage(Protocol):
    """What the rest of the app needs from a place that keeps photo bytes.

    Keys come from new_key() (validated: KEY_PATTERN); a key is written once and never overwritten.
    """

    def new_key(self, suffix: str = ".jpg") -> str:
        """A fresh random key ('<32 hex>.jpg' or '<32 hex>.thumb.jpg')."""
        ...

    def save(self, key: str, data: bytes) -> None:
        """Store all of `data` under `key`, atomically (all or nothing), durably before returning."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A readable binary stream; StorageError if there is no such photo."""
        ...

    def read(self, key: str) -> bytes:
        """All the bytes; StorageError if there is no such photo."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove a photo; a key that is already gone is not an error (deletes are retried)."""
        ...

    def keys(self) -> list[str]:
        """Every stored key, sorted (housekeeping: orphan checks, backup counts)."""
        ...


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
            # Stamp the file and its folder with this process's clock: housekeeping measures ages
            # against that clock, which a drill may have moved (libfaketime), not the kernel's.
            os.utime(target)
            os.utime(self.root)
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


LOCAL = "local"


def photo_storage() -> PhotoStorage:
    """The photo storage for the current app, as STORAGE_BACKEND and UPLOAD_DIR say."""
    backend = current_app.config.get("STORAGE_BACKEND") or LOCAL
    if backend == LOCAL:
        return LocalStorage(current_app.config["UPLOAD_DIR"])  # cheap: a path, no connection
    built = current_app.extensions.setdefault("photo_storage", {})
    if backend not in built:
        built[backend] = _factory(backend)(current_app.config)
    return built[backend]


def _factory(backend: str) -> Callable[[Mapping[str, Any]], PhotoStorage]:
    """Import 'package.module:factory' (an operator's setting, so a clear error when it is wrong)."""
    module_name, _, attribute = backend.partition(":")
    if not module_name or not attribute:
        raise RuntimeError(f"STORAGE_BACKEND must be 'local' or 'package.module:factory', not {backend!r}")
    return getattr(importlib.import_module(module_name), attribute)
