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
# The same six sections, in the same order, in each translation (`<slug>.<lang>.md`).
SECTIONS_BY_LANG = {
    "en": REQUIRED_SECTIONS,
    "lt": (
        "Priežastys ir rizikos veiksniai",
        "Požymiai ir simptomai",
        "Diagnostika",
        "Gydymas",
        "Profilaktika ir savipriežiūra",
        "Kada skubiai kreiptis pagalbos",
    ),
}
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


# Lithuanian alphabetical order: č, š and ž are letters of their own (after c, s and z), while
# ą, ę, ė, į, ų, ū sort with their base letters and y with i.
_OWN_LETTERS = {"č": "c~", "š": "s~", "ž": "z~"}


def sort_key(title: str, lang: str = "en") -> str:
    """A key that orders titles as a reader of `lang` expects (accents ignored in English)."""
    if lang != "lt":
        return fold(title)
    lowered = "".join(_OWN_LETTERS.get(ch, ch) for ch in title.casefold())
    return fold(lowered).replace("y", "i")


def index_letter(title: str) -> str:
    """The A-Z heading a title goes under: Č, Š and Ž have their own, Ą goes under A, and so on."""
    first = title[:1].casefold()
    return (first if first in _OWN_LETTERS else fold(first)).upper()


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
    expected = SECTIONS_BY_LANG.get(lang)
    if expected is None:
        raise ContentError(f"{path.name}: unknown language {lang!r}; add its sections to SECTIONS_BY_LANG")
    if headings != expected:
        raise ContentError(f"{path.name}: sections must be exactly {expected}, found {headings}")
    if meta.get("lang", lang) != lang:
        raise ContentError(f"{path.name}: front matter says lang {meta['lang']!r}, the file name says {lang!r}")
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
        self.version = 0  # bumped on every reload, so caches of rendered pages know when to drop

    # Look at the folder at most this often: an edited article shows within a second,
    # and a busy page does not stat two dozen files on every request.
    RECHECK_SECONDS = 1.0

    def _refresh(self) -> None:
        if time.monotonic() - self._checked_at < self.RECHECK_SECONDS:
            return
        # One thread reloads while the others wait for it: a request must never see the
        # library half-loaded (a fresh worker would answer 404 for articles that exist).
        with self._lock:
            if time.monotonic() - self._checked_at < self.RECHECK_SECONDS:
                return  # another thread refreshed while this one waited
            paths = sorted(self.folder.glob("*.md"))
            stamps = tuple((path, path.stat().st_mtime_ns, path.stat().st_size) for path in paths)
            if stamps != self._listing_stamp:
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
                self.version += 1
            self._checked_at = time.monotonic()

    def current_version(self) -> int:
        """The version of the articles as they are on disk now (a reload bumps it)."""
        self._refresh()
        return self.version

    def all(self, lang: str = "en") -> list[Condition]:
        """Every article (the English files are the canonical list), each in `lang` where it has
        been translated and in English otherwise, A-Z by the title the reader sees."""
        self._refresh()
        return sorted(
            (self._by_key.get((slug, lang), c) for (slug, code), c in self._by_key.items() if code == "en"),
            key=lambda c: sort_key(c.title, lang),
        )

    def get(self, slug: str, lang: str = "en") -> tuple[Condition | None, bool]:
        """The article in `lang` if written, else English; the flag says whether it fell back."""
        self._refresh()
        translated = self._by_key.get((slug, lang))
        if translated is not None:
            return translated, False
        return self._by_key.get((slug, "en")), lang != "en"

    def search(self, query: str, lang: str = "en") -> list[Condition]:
        """Articles whose name, other names or summary contain every word of the query, in `lang`
        or in English (people often know a condition by its English or Latin name), shown in `lang`."""
        words = fold(query).split()
        self._refresh()
        found = []
        for article in self.all(lang):
            versions = {self._by_key.get((article.slug, "en")), article}
            if any(all(word in v.search_text for word in words) for v in versions if v is not None):
                found.append(article)
        return found


_libraries: dict[str, Library] = {}


def library(folder: str) -> Library:
    """One shared Library per content folder in this process."""
    if folder not in _libraries:
        _libraries[folder] = Library(folder)
    return _libraries[folder]
