"""Public pages written out as files, so nginx can send them without asking the app (PUBLIC_PAGES_DIR).

A reader without a cookie gets the same home page, A-Z and condition pages as every other reader of
their language. With PUBLIC_PAGES_DIR set, the app writes each of them there and the shipped nginx
site sends the file itself, as it sends a stylesheet (deploy/nginx-skin-clinic.conf); anything else
(a cookie, a query string, a form, a language nginx cannot tell for sure) still goes to the app.

Layout: <folder>/<language>/<URL path>.html, with a gzip copy beside each (<…>.html.gz, for nginx's
gzip_static), in every language the clinic offers, and <folder>/default/ for a browser that names no
language. The file is the URL path with ".html" appended: /conditions/acne is conditions/acne.html,
the A-Z (/conditions/) is conditions/.html and the home page .html, so one try_files rule finds
every page and no other URL reaches a folder's page.

Written by gunicorn's master before it forks (app/prefork.py), by `flask worker` whenever the
articles on disk change, and by `flask pages publish`. A file is written only when its bytes
change (so its date, and nginx's ETag, stay put), always beside the old one and then renamed over
it, so nginx never sends half a page. Pages that are gone (an article removed or made a draft, a
language no longer offered) are deleted. A page is published only if the app lets any cache share
it (200, Cache-Control: public, no cookie set). A missing file is always safe: nginx asks the app.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from app.conditions.library import articles

DEFAULT = "default"  # the folder for readers whose browser names no language
SUFFIXES = (".html", ".html.gz")
STATE_KEY = "skin_clinic.published_version"


@dataclass(frozen=True)
class Published:
    written: int  # files created or changed
    unchanged: int
    removed: int

    def as_counts(self) -> dict[str, int]:
        return {"pages written": self.written, "pages removed": self.removed}


def public_paths(app: Flask) -> list[str]:
    """The public pages every reader may ask for, whatever their language."""
    with app.app_context():
        slugs = [condition.slug for condition in articles(app).all()]
    return ["/", "/conditions/", *(f"/conditions/{slug}" for slug in slugs)]


def file_for(folder: Path, language: str, path: str) -> Path:
    """Where the page at URL `path` is published for `language` (or DEFAULT)."""
    return folder / language / (path.lstrip("/") + ".html")


def pages(app: Flask) -> dict[Path, bytes | None]:
    """Every public page as the app sends it to a reader without a cookie, by its file under the folder;
    None for one the app did not answer with a page any cache may share (left as it was)."""
    client = app.test_client(use_cookies=False)
    found: dict[Path, bytes | None] = {}
    asked: list[tuple[str, dict[str, str]]] = [(lang, {"Accept-Language": lang}) for lang in app.config["LANGUAGES"]]
    for language, headers in [*asked, (DEFAULT, {})]:
        for path in public_paths(app):
            # The public address, so pages that name themselves (JSON-LD) carry the real host.
            response = client.get(path, base_url=app.config["PUBLIC_BASE_URL"], headers=headers)
            shareable = response.status_code == 200 and response.cache_control.public
            shareable = shareable and "Set-Cookie" not in response.headers
            found[file_for(Path(), language, path)] = response.get_data() if shareable else None
    return found


def publish(app: Flask, folder: Path) -> Published:
    """Write every public page and its gzip copy under `folder`; delete the files of pages that are gone.

    A page the app failed to render this time keeps its file; one that is no longer public (an
    article removed or made a draft, a language no longer offered) loses it.
    """
    version = articles(app).current_version()  # before rendering: a change made meanwhile publishes again
    wanted: dict[Path, bytes | None] = {}
    for name, body in pages(app).items():
        wanted[folder / name] = body
        wanted[folder / (str(name) + ".gz")] = None if body is None else gzip.compress(body, 9, mtime=0)
    written = unchanged = 0
    for path, content in wanted.items():
        if content is not None and _write_if_changed(path, content):
            written += 1
        else:
            unchanged += 1
    removed = 0
    for path in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else ():
        if path.is_file() and path.name.endswith(SUFFIXES) and path not in wanted:
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    app.extensions[STATE_KEY] = version
    return Published(written, unchanged, removed)


def publish_if_changed(app: Flask, folder: Path) -> Published | None:
    """Publish again if the articles changed on disk since this process last published (or never did)."""
    if app.extensions.get(STATE_KEY) == articles(app).current_version():
        return None
    return publish(app, folder)


def _write_if_changed(path: Path, body: bytes) -> bool:
    try:
        if path.read_bytes() == body:
            return False
    except FileNotFoundError:
        pass
    _make_folders(path.parent)
    # Readable by nginx's user whatever the service's umask: these are public pages.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".publishing-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(body)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def _make_folders(path: Path) -> None:
    for missing in reversed([folder for folder in (path, *path.parents) if not folder.is_dir()]):
        missing.mkdir()
        missing.chmod(0o755)
