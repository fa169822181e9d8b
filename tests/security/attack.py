"""What every attack test checks: a clean refusal (a 4xx or a form error, never a traceback) and
nothing stored (no request rows, no new files in the upload folder). Plus hostile files made with
Pillow and by hand, and apps with CSRF or rate limits switched on."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select

from app.extensions import db
from app.models import ConsultationRequest, Message, OutboundEmail, Photo
from tests.conftest import app_with  # noqa: F401  (the attack tests' way to a second app)
from tests.factories import photo_bytes, stored_files

# What a stack trace or the Werkzeug debugger would put in a page.
TRACEBACK_MARKERS = ("Traceback", 'File "', "Werkzeug Debugger", "__debugger__", "werkzeug/debug", "EVALEX")
SCRIPT = "<script>alert(document.cookie)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(document.cookie)&lt;/script&gt;"


def body(response) -> str:
    return response.get_data(as_text=True)


def assert_refused(response, *statuses: int) -> str:
    """The response is one of `statuses` and shows no trace of an exception; returns its text."""
    assert response.status_code in statuses, f"{response.status_code} not in {statuses}"
    text = body(response)
    for marker in TRACEBACK_MARKERS:
        assert marker not in text, f"{marker!r} in the response"
    return text


def field_error(text: str, field_id: str) -> str:
    """The error message shown next to a form field (macros/forms.html)."""
    match = re.search(rf'id="{re.escape(field_id)}-error">(.*?)</(?:p|div)>', text, re.S)
    assert match, f"no error shown next to {field_id}"
    return match.group(1)


def row_counts() -> dict[str, int]:
    db.session.expire_all()
    return {
        model.__name__: db.session.execute(select(func.count()).select_from(model)).scalar_one()
        for model in (ConsultationRequest, Photo, Message, OutboundEmail)
    }


@contextmanager
def nothing_stored(app) -> Iterator[None]:
    """Assert that the block adds no request, photo, message or email row and no file under UPLOAD_DIR."""
    upload_dir = Path(app.config["UPLOAD_DIR"])
    rows, files = row_counts(), set(stored_files(upload_dir))
    yield
    assert row_counts() == rows
    assert set(stored_files(upload_dir)) - files == set(), "files were left in the upload folder"


# --- Hostile files -------------------------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def zip_file() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("rash.jpg", photo_bytes(size=(20, 20)))
    return buffer.getvalue()


def pillow_file(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), (200, 90, 80)).save(buffer, fmt)
    return buffer.getvalue()


def cut(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b'<script>alert(document.domain)</script><rect width="100" height="100" fill="red"/></svg>'
)
HTML_PAGE = b"<!doctype html><html><body><script>fetch('/queue/').then(r=>r.text())</script></body></html>"
PHP_TAIL = b"<?php system($_GET['c']); ?>"
