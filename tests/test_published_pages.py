"""Public pages written as files for nginx to send (PUBLIC_PAGES_DIR, app/published.py)."""

from __future__ import annotations

import gzip
import stat
from pathlib import Path

import pytest
from flask import abort

import config
from app.conditions.library import articles
from app.published import DEFAULT, file_for, public_paths, publish
from tests.articles import app_reading, copy_of_the_library, write_pair


@pytest.fixture
def library(tmp_path) -> Path:
    return copy_of_the_library(tmp_path / "content")


def _as_a_reader_gets_it(app, path: str, language: str | None) -> bytes:
    client = app.test_client(use_cookies=False)
    headers = {"Accept-Language": language} if language else {}
    response = client.get(path, base_url=app.config["PUBLIC_BASE_URL"], headers=headers)
    assert response.status_code == 200 and response.cache_control.public
    return response.get_data()


def test_every_public_page_is_written_in_every_language_with_a_gzip_copy(tmp_path, library):
    folder = tmp_path / "pages"
    with app_reading(tmp_path, library) as app:
        published = publish(app, folder)
        paths = public_paths(app)
        assert {"/", "/conditions/", "/conditions/acne", "/conditions/palmoplantar-pustulosis"} <= set(paths)
        for path in paths:
            for language, header in (("en", "en"), ("lt", "lt"), (DEFAULT, None)):
                page = file_for(folder, language, path)
                assert page.read_bytes() == _as_a_reader_gets_it(app, path, header), (language, path)
                assert gzip.decompress(Path(f"{page}.gz").read_bytes()) == page.read_bytes()
                assert stat.S_IMODE(page.stat().st_mode) == 0o644  # nginx's user reads them
    assert published.written == len(paths) * 3 * 2 and published.removed == 0
    assert file_for(folder, "en", "/conditions/") == folder / "en" / "conditions" / ".html"
    assert b'<html lang="lt">' in file_for(folder, "lt", "/conditions/acne").read_bytes()
    assert b'<html lang="en">' in file_for(folder, DEFAULT, "/conditions/acne").read_bytes()


def test_publishing_again_leaves_unchanged_files_alone(tmp_path, library):
    folder = tmp_path / "pages"
    with app_reading(tmp_path, library) as app:
        first = publish(app, folder)
        page = file_for(folder, "en", "/conditions/acne")
        written_at = page.stat().st_mtime_ns
        again = publish(app, folder)
    assert again.written == 0 and again.unchanged == first.written and again.removed == 0
    assert page.stat().st_mtime_ns == written_at  # so nginx's ETag stays the same


def test_a_removed_or_drafted_article_is_no_longer_published(tmp_path, library):
    folder = tmp_path / "pages"
    write_pair(library, "test-rash")
    with app_reading(tmp_path, library) as app:
        publish(app, folder)
        assert file_for(folder, "lt", "/conditions/test-rash").exists()
        for article in library.glob("test-rash*.md"):
            article.unlink()
        write_pair(library, "acne-draft-only", status="draft")
        articles(app)._checked_at = float("-inf")  # look at the folder now rather than within a second
        published = publish(app, folder)
    assert published.removed == 3 * 2
    assert not list(folder.rglob("test-rash*")) and not list(folder.rglob("acne-draft-only*"))
    assert file_for(folder, "lt", "/conditions/acne").exists()


def test_the_worker_publishes_again_once_an_article_changes(tmp_path, library):
    folder = tmp_path / "pages"
    with app_reading(tmp_path, library) as app:
        app.config["PUBLIC_PAGES_DIR"] = str(folder)
        runner = app.test_cli_runner()
        assert runner.invoke(args=["worker", "--once"]).exit_code == 0
        page = file_for(folder, "en", "/conditions/acne")
        assert b"One more sentence from the editor." not in page.read_bytes()
        with (library / "acne.md").open("a", encoding="utf-8") as article:
            article.write("\nOne more sentence from the editor.\n")
        articles(app)._checked_at = float("-inf")
        assert runner.invoke(args=["worker", "--once"]).exit_code == 0
    assert b"One more sentence from the editor." in page.read_bytes()
    assert b"One more sentence from the editor." in gzip.decompress(Path(f"{page}.gz").read_bytes())


def test_the_command_publishes_to_a_folder_or_asks_for_one(tmp_path, library):
    with app_reading(tmp_path, library) as app:
        runner = app.test_cli_runner()
        refused = runner.invoke(args=["pages", "publish"])
        assert refused.exit_code == 2 and "set PUBLIC_PAGES_DIR" in refused.output
        done = runner.invoke(args=["pages", "publish", str(tmp_path / "out")])
    assert done.exit_code == 0 and "files written" in done.output
    assert file_for(tmp_path / "out", DEFAULT, "/").exists()


def test_the_folder_must_be_an_absolute_path():
    with pytest.raises(config.ConfigError, match="PUBLIC_PAGES_DIR='pages' is not allowed"):
        config.load("testing", {"PUBLIC_PAGES_DIR": "pages"})


def test_a_page_the_app_fails_to_render_keeps_its_file(tmp_path, library):
    folder = tmp_path / "pages"
    with app_reading(tmp_path, library) as app:
        publish(app, folder)
    page = file_for(folder, "lt", "/conditions/acne")
    before = page.read_bytes()
    with app_reading(tmp_path / "later", library) as app:
        app.view_functions["conditions.condition"] = lambda **_: abort(503)
        published = publish(app, folder)
    assert published.written == 0 and published.removed == 0
    assert page.read_bytes() == before
