"""Translation catalogues for tests: compile the committed .po files, and extract the current msgids.

`make test` compiles the catalogues before pytest starts (`make translations`); a bare `pytest`
run may find no .mo, or a stale one, so the tests that need Lithuanian call compile_catalogs()
first. It writes what `pybabel compile` would (the .mo files are build output, never committed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
LITHUANIAN_PO = TRANSLATIONS / "lt" / "LC_MESSAGES" / "messages.po"


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def compile_catalogs() -> None:
    """Compile each translations/<lang>/LC_MESSAGES/messages.po whose .mo is missing or older."""
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime_ns >= po.stat().st_mtime_ns:
            continue
        catalog = read_catalog(po, locale=po.parent.parent.name)
        # Write beside it and rename, so a parallel run never reads half a file.
        handle, temporary = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
        with os.fdopen(handle, "wb") as out:
            write_mo(out, catalog)  # fuzzy entries are left out, as `pybabel compile` does
        os.chmod(temporary, 0o644)  # readable like any build output (mkstemp makes it private)
        os.replace(temporary, mo)


def extract_messages(destination: Path) -> Catalog:
    """Extract every msgid from app/ and templates/ exactly as `make messages` does."""
    CommandLineInterface().run(
        [
            "pybabel",
            "-q",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(destination),
            str(ROOT),
        ]
    )
    return read_catalog(destination)
