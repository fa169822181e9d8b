"""Loading condition articles: Markdown files with YAML front matter under content/conditions/.

Each file is parsed and rendered once and cached until the file changes (by mtime and size),
so serving a condition page costs a dictionary look-up.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import nh3
import yaml
from markdown_it import MarkdownIt

REQUIRED_SECTIONS = (
    "Causes and risk factors",
    "Signs and symptoms",
    "Diagnosis",
    "Treatment",
    "Prevention and self-care",
    "When to seek urgent care",
)
REQUIRED_FIELDS = ("title", "summary", "key_facts", "related", "last_reviewed", "sources")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ALLOWED_TAGS = {"h2", "h3", "p", "ul", "ol", "li", "strong", "em", "a", "br", "blockquote"}

_markdown = MarkdownIt("commonmark", {"html": False, "typographer": True})


class ContentError(ValueError):
    """A condition file that cannot be published as it is."""


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str


@dataclass(frozen=True)
class Condition:
    slug: str
    lang: str
    title: str
    other_names: tuple[str, ...]
    summary: str
    key_facts: tuple[str, ...]
    related: tuple[str, ...]
    last_reviewed: date
    sources: tuple[str, ...]
    html: str
    sections: tuple[Section, ...] = field(default_factory=tuple)
    search_text: str = ""


def fold(text: str) -> str:
    """Lower-case and strip accents so that 'ECZEMA', 'eczéma' and 'eczema' match; ž, š, ė too."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def anchor_for(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(title)).strip("-")


def parse(path: Path) -> Condition:
    """Parse one article file; raises ContentError naming the file and what is wrong."""
    raw = path.read_text(encoding="utf-8")
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n(.*)$", raw, re.S)
    if not match:
        raise ContentError(f"{path.name}: missing YAML front matter")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        raise ContentError(f"{path.name}: front matter is not valid YAML: {error}") from error
    missing = [name for name in REQUIRED_FIELDS if not meta.get(name)]
    if missing:
        raise ContentError(f"{path.name}: missing {', '.join(missing)}")
    slug, _, lang = path.stem.partition(".")
    lang = lang or meta.get("lang", "en")
    if not SLUG_PATTERN.match(slug):
        raise ContentError(f"{path.name}: file name is not a valid slug")
    reviewed = meta["last_reviewed"]
    if not isinstance(reviewed, date):
        raise ContentError(f"{path.name}: last_reviewed must be a date (YYYY-MM-DD)")
    body = match.group(2)
    headings = tuple(re.findall(r"^## +(.+?)\s*$", body, re.M))
    if lang == "en" and headings != REQUIRED_SECTIONS:
        raise ContentError(f"{path.name}: sections must be exactly {REQUIRED_SECTIONS}, found {headings}")
    other_names = tuple(str(name) for name in meta.get("other_names") or ())
    summary = " ".join(str(meta["summary"]).split())
    return Condition(
        slug=slug,
        lang=lang,
        title=str(meta["title"]),
        other_names=other_names,
        summary=summary,
        key_facts=tuple(str(fact) for fact in meta["key_facts"]),
        related=tuple(str(item) for item in meta["related"]),
        last_reviewed=reviewed,
        sources=tuple(str(source) for source in meta["sources"]),
        html=render_markdown(body),
        sections=tuple(Section(anchor_for(title), title) for title in headings),
        search_text=fold(" ".join((str(meta["title"]), *other_names, summary))),
    )


def render_markdown(body: str) -> str:
    """Markdown to HTML, sanitised, with an id on each h2 so the page can link to sections."""
    html = _markdown.render(body)
    html = re.sub(
        r"<h2>(.+?)</h2>",
        lambda m: f'<h2 id="{anchor_for(re.sub("<[^>]+>", "", m.group(1)))}">{m.group(1)}</h2>',
        html,
    )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"h2": {"id"}, "a": {"href"}},
        url_schemes={"https", "mailto"},
    )


class Library:
    """All articles in one folder, reloaded file by file when a file changes."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[float, int], Condition]] = {}
        self._listing_stamp: tuple | None = None
        self._by_key: dict[tuple[str, str], Condition] = {}
        self._checked_at = float("-inf")

    # Look at the folder at most this often: an edited article shows within a second,
    # and a busy page does not stat two dozen files on every request.
    RECHECK_SECONDS = 1.0

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self.RECHECK_SECONDS:
            return
        self._checked_at = now
        paths = sorted(self.folder.glob("*.md"))
        stamps = tuple((path, path.stat().st_mtime_ns, path.stat().st_size) for path in paths)
        if stamps == self._listing_stamp:
            return
        with self._lock:
            by_key: dict[tuple[str, str], Condition] = {}
            for path, mtime, size in stamps:
                cached = self._cache.get(path)
                if cached is None or cached[0] != (mtime, size):
                    cached = ((mtime, size), parse(path))
                    self._cache[path] = cached
                condition = cached[1]
                by_key[(condition.slug, condition.lang)] = condition
            self._by_key = by_key
            self._listing_stamp = stamps

    def all(self, lang: str = "en") -> list[Condition]:
        """Every article in English (the canonical list), A-Z by title."""
        self._refresh()
        return sorted(
            (c for (slug, code), c in self._by_key.items() if code == "en"),
            key=lambda c: fold(c.title),
        )

    def get(self, slug: str, lang: str = "en") -> tuple[Condition | None, bool]:
        """The article in `lang` if written, else English; the flag says whether it fell back."""
        self._refresh()
        translated = self._by_key.get((slug, lang))
        if translated is not None:
            return translated, False
        return self._by_key.get((slug, "en")), lang != "en"

    def search(self, query: str) -> list[Condition]:
        """Articles whose name, other names or summary contain every word of the query."""
        words = fold(query).split()
        return [c for c in self.all() if all(word in c.search_text for word in words)]


_libraries: dict[str, Library] = {}


def library(folder: str) -> Library:
    """One shared Library per content folder in this process."""
    if folder not in _libraries:
        _libraries[folder] = Library(folder)
    return _libraries[folder]
