"""The articles are the clinic's own words: no article shares a run of 10 or more words with a text
its writers consulted (tests/consulted/<slug>.txt, each passage under a `# title url` line).

Every article, in both languages, is compared against every consulted text, not only its own:
passages on one condition often reappear on the pages about another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.articles import CONTENT

CONSULTED = Path(__file__).resolve().parent / "consulted"
RUN = 10  # words in a row that make a copied passage
WORD = re.compile(r"[^\W_]+")
ARTICLES = sorted(CONTENT.glob("*.md"))


def words(text: str) -> list[str]:
    return WORD.findall(text.casefold())


def runs(text: str, length: int = RUN) -> set[tuple[str, ...]]:
    """Every run of `length` consecutive words in the text."""
    found = words(text)
    return {tuple(found[i : i + length]) for i in range(len(found) - length + 1)}


def article_body(path: Path) -> str:
    """The Markdown after the front matter, without link targets (a URL is not prose)."""
    text = path.read_text(encoding="utf-8")
    body = re.match(r"^---\s*\n.*?\n---\s*\n(.*)$", text, re.S).group(1)
    body = re.sub(r"\]\([^)]*\)", "]", body)  # [text](url) keeps its text
    return re.sub(r"<[a-z]+:[^>\s]*>", " ", body)  # <https://…> autolinks


def consulted_text(path: Path) -> str:
    """The passages, without the `# title url` lines that say where each came from."""
    return "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))


def shared_runs(article: str, sources: Iterable[tuple[str, set[tuple[str, ...]]]]) -> list[str]:
    mine = runs(article)
    return [f"{name}: “{' '.join(run)}”" for name, theirs in sources for run in sorted(mine & theirs)]


@pytest.fixture(scope="module")
def consulted_runs() -> list[tuple[str, set[tuple[str, ...]]]]:
    return [(path.name, runs(consulted_text(path))) for path in sorted(CONSULTED.glob("*.txt"))]


def test_every_article_has_its_consulted_texts_file():
    assert {path.stem for path in CONSULTED.glob("*.txt")} == {
        path.stem for path in CONTENT.glob("*.md") if "." not in path.stem
    }


@pytest.mark.parametrize("path", ARTICLES, ids=lambda path: path.name)
def test_no_article_copies_ten_words_in_a_row_from_a_consulted_text(path, consulted_runs):
    copied = shared_runs(article_body(path), consulted_runs)
    assert not copied, f"{path.name} repeats passages word for word; reword them:\n" + "\n".join(copied[:20])


def test_the_check_finds_a_copied_passage_across_line_breaks_case_and_punctuation(tmp_path):
    consulted = tmp_path / "demo.txt"
    consulted.write_text(
        "# NHS: Demo https://www.nhs.uk/conditions/demo/\n"
        "Cold sores are common and usually clear up on their own within 10 days.\n",
        encoding="utf-8",
    )
    article = tmp_path / "demo.md"
    article.write_text(
        "---\ntitle: Demo\n---\n## Causes\n\nThey are COMMON, and usually clear up\non their own — within 10 days!\n",
        encoding="utf-8",
    )
    sources = [("demo.txt", runs(consulted_text(consulted)))]
    assert shared_runs(article_body(article), sources) == [
        "demo.txt: “and usually clear up on their own within 10 days”",
        "demo.txt: “are common and usually clear up on their own within”",
        "demo.txt: “common and usually clear up on their own within 10”",
    ]
    nine_words = "are common and usually clear up on their own"  # one word short of a run
    assert shared_runs(nine_words, sources) == []


def test_link_targets_and_source_lines_are_not_compared(tmp_path):
    url_words = "https://www.nhs.uk/conditions/cold-sores/what-to-do-if-they-do-not-go-away"
    article = tmp_path / "demo.md"
    article.write_text(f"---\ntitle: Demo\n---\nSee [the NHS page]({url_words}) or <{url_words}>.\n", "utf-8")
    consulted = tmp_path / "demo.txt"
    consulted.write_text(f"# {url_words}\nwww nhs uk conditions cold sores what to do if they\n", "utf-8")
    assert "nhs uk conditions" not in " ".join(words(article_body(article)))
    assert " ".join(words(consulted_text(consulted))) == "www nhs uk conditions cold sores what to do if they"
