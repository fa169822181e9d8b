"""Helpers for tests that need their own condition articles: write a small valid article, and
build an app that reads articles from a folder of the test's choosing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from app.conditions.content import SECTIONS_BY_LANG
from app.extensions import db
from tests.catalogs import ROOT
from tests.conftest import build_app, empty_database, reset_database

CONTENT = ROOT / "content" / "conditions"


def write_article(folder: Path, slug: str, lang: str = "en", **front: Any) -> Path:
    """content/conditions/<slug>[.<lang>].md with every required field; `front` adds or replaces fields."""
    meta: dict[str, Any] = {
        "title": f"{slug.replace('-', ' ').capitalize()}{' (lt)' if lang != 'en' else ''}",
        "summary": f"What {slug} is.",
        "key_facts": ["One fact"],
        "related": ["acne"],
        "last_reviewed": date(2026, 11, 20),
        "sources": [{"title": "NHS: Example"}],
        "lang": lang,
    }
    meta.update(front)
    sections = "\n".join(f"## {heading}\n\nText about {slug}.\n" for heading in SECTIONS_BY_LANG[lang])
    path = folder / (f"{slug}.md" if lang == "en" else f"{slug}.{lang}.md")
    path.write_text(f"---\n{yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)}---\n\n{sections}", "utf-8")
    return path


def write_pair(folder: Path, slug: str, **front: Any) -> None:
    """The article in English and Lithuanian, sharing `front`."""
    write_article(folder, slug, "en", **front)
    write_article(folder, slug, "lt", **front)


def copy_of_the_library(destination: Path) -> Path:
    """A copy of content/conditions that a test may change."""
    shutil.copytree(CONTENT, destination)
    return destination


@contextmanager
def app_reading(tmp_path: Path, content_dir: Path) -> Iterator:
    """A testing app (fresh database, app context pushed) whose articles come from `content_dir`."""
    app = build_app(tmp_path, CONTENT_DIR=str(content_dir))
    reset_database(app)
    with app.app_context():
        yield app
        db.session.remove()
    empty_database(app)
