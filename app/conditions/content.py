"""Loading condition articles: Markdown files with YAML front matter under content/conditions/.

Each file is parsed once and cached until the file changes (by mtime and size), so serving a
condition page costs a dictionary look-up; an article's HTML is rendered the first time it is shown.
This module knows nothing of Flask: app/conditions/library.py keeps one Library per app.
"""

from __future__ import annotations

import calendar
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nh3
import yaml
from markdown_it import MarkdownIt

try:  # libyaml's parser where PyYAML was built with it: ten times faster
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader  # type: ignore[assignment]

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
# A word, for search and for comparing texts: letters and digits of any script, no underscore.
WORD = re.compile(r"[^\W_]+")
PUBLISHED, DRAFT = "published", "draft"
STATUSES = (PUBLISHED, DRAFT)
# An article is due for medical review this long after the last one, unless it says `next_review`.
REVIEW_INTERVAL_MONTHS = 12

_markdown = MarkdownIt("commonmark", {"html": False, "typographer": True})


class ContentError(ValueError):
    """A condition file that cannot be published as it is."""


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str


@dataclass(frozen=True)
class Source:
    """A named publication or guideline the article draws on, with its https link where it has one."""

    title: str
    url: str | None = None


@dataclass(frozen=True)
class Reviewer:
    """Who medically reviewed an article: a dermatologist's staff account (by email) or a named person."""

    account: str | None = None
    name: str | None = None


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
    next_review: date
    sources: tuple[Source, ...]
    body: str = field(repr=False)
    sections: tuple[Section, ...] = field(default_factory=tuple)
    search_text: str = ""
    reviewed_by: Reviewer | None = None
    status: str = PUBLISHED

    @property
    def is_draft(self) -> bool:
        return self.status == DRAFT

    @cached_property
    def html(self) -> str:
        """The body as sanitised HTML, rendered when first shown (listing and search never need it)."""
        return render_markdown(self.body)


def fold(text: str) -> str:
    """Lower-case and strip accents so that 'ECZEMA', 'eczéma' and 'eczema' match; ž, š, ė too."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_words(text: str) -> list[str]:
    """The folded words of a text or a query: 'Niežai (scabies)' gives ['niezai', 'scabies']."""
    return WORD.findall(fold(text))


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


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the 29th-31st become the month's last day where it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def parse(path: Path) -> Condition:
    """Parse one article file; raises ContentError naming the file and what is wrong."""
    meta, body = _front_matter(path)
    name = path.name
    missing = [field_name for field_name in REQUIRED_FIELDS if not meta.get(field_name)]
    if missing:
        raise ContentError(f"{name}: missing {', '.join(missing)}")
    slug, lang = _slug_and_lang(path, meta)
    reviewed = meta["last_reviewed"]
    if not isinstance(reviewed, date):
        raise ContentError(f"{name}: last_reviewed must be a date (YYYY-MM-DD)")
    headings = _sections(name, body, lang)
    status = meta.get("status", PUBLISHED)
    if status not in STATUSES:
        raise ContentError(f"{name}: status must be one of {', '.join(STATUSES)}, not {status!r}")
    title = str(meta["title"])
    other_names = tuple(str(other) for other in meta.get("other_names") or ())
    summary = " ".join(str(meta["summary"]).split())
    return Condition(
        slug=slug,
        lang=lang,
        title=title,
        other_names=other_names,
        summary=summary,
        key_facts=tuple(str(fact) for fact in meta["key_facts"]),
        related=tuple(str(item) for item in meta["related"]),
        last_reviewed=reviewed,
        next_review=_next_review(name, meta.get("next_review"), reviewed),
        sources=_sources(name, meta["sources"]),
        body=body,
        sections=tuple(Section(anchor_for(heading), heading) for heading in headings),
        search_text=" ".join(search_words(" ".join((title, *other_names, summary)))),
        reviewed_by=_reviewer(name, meta.get("reviewed_by")),
        status=status,
    )


def _front_matter(path: Path) -> tuple[dict[str, Any], str]:
    raw = path.read_text(encoding="utf-8")
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n(.*)$", raw, re.S)
    if not match:
        raise ContentError(f"{path.name}: missing YAML front matter")
    try:
        meta = yaml.load(match.group(1), Loader=SafeLoader) or {}
    except yaml.YAMLError as error:
        raise ContentError(f"{path.name}: front matter is not valid YAML: {error}") from error
    if not isinstance(meta, dict):
        raise ContentError(f"{path.name}: front matter must be fields (name: value)")
    return meta, match.group(2)


def _slug_and_lang(path: Path, meta: dict[str, Any]) -> tuple[str, str]:
    slug, _, lang = path.stem.partition(".")
    lang = lang or meta.get("lang", "en")
    if not SLUG_PATTERN.match(slug):
        raise ContentError(f"{path.name}: file name is not a valid slug")
    if meta.get("lang", lang) != lang:
        raise ContentError(f"{path.name}: front matter says lang {meta['lang']!r}, the file name says {lang!r}")
    return slug, lang


def _sections(name: str, body: str, lang: str) -> tuple[str, ...]:
    headings = tuple(re.findall(r"^## +(.+?)\s*$", body, re.M))
    expected = SECTIONS_BY_LANG.get(lang)
    if expected is None:
        raise ContentError(f"{name}: unknown language {lang!r}; add its sections to SECTIONS_BY_LANG")
    if headings != expected:
        raise ContentError(f"{name}: sections must be exactly {expected}, found {headings}")
    return headings


def _sources(name: str, raw: Any) -> tuple[Source, ...]:
    if not isinstance(raw, list):
        raise ContentError(f"{name}: sources must be a list")
    return tuple(_source(name, item) for item in raw)


def _source(name: str, item: Any) -> Source:
    title: Any
    url: Any
    if isinstance(item, str):  # the older form: a source named in one line, with no link
        title, url = item, None
    elif isinstance(item, dict) and set(item) <= {"title", "url"}:
        title, url = item.get("title"), item.get("url")
    else:
        raise ContentError(f"{name}: each source is a title, or a mapping of title and url; found {item!r}")
    if not isinstance(title, str) or not title.strip():
        raise ContentError(f"{name}: a source has no title: {item!r}")
    if url is not None and not _is_https_link(url):
        raise ContentError(f"{name}: a source's url must be a full https:// link, not {url!r}")
    return Source(" ".join(title.split()), url)


def _is_https_link(url: Any) -> bool:
    if not isinstance(url, str) or any(ch.isspace() for ch in url):
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def _reviewer(name: str, raw: Any) -> Reviewer | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != 1 or not set(raw) <= {"account", "name"}:
        raise ContentError(f"{name}: reviewed_by must be {{account: <staff email>}} or {{name: <reviewer>}}")
    ((kind, value),) = raw.items()
    if not isinstance(value, str) or not value.strip():
        raise ContentError(f"{name}: reviewed_by {kind} is empty")
    if kind == "account":
        email = value.strip().lower()
        if "@" not in email:
            raise ContentError(f"{name}: reviewed_by account must be a staff account's email, not {value!r}")
        return Reviewer(account=email)
    return Reviewer(name=" ".join(value.split()))


def _next_review(name: str, raw: Any, last_reviewed: date) -> date:
    if raw is None:
        return add_months(last_reviewed, REVIEW_INTERVAL_MONTHS)
    if not isinstance(raw, date):
        raise ContentError(f"{name}: next_review must be a date (YYYY-MM-DD)")
    if raw <= last_reviewed:
        raise ContentError(f"{name}: next_review must come after last_reviewed")
    return raw


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


@dataclass(frozen=True)
class _Shelf:
    """What a reader sees at one moment: replaced whole on reload, so the articles and the list of
    drafts always belong together (a newly drafted article is never shown with the old draft list)."""

    by_key: dict[tuple[str, str], Condition] = field(default_factory=dict)
    drafts: frozenset[str] = frozenset()


class Library:
    """All articles in one folder, reloaded file by file when a file changes.

    Drafts (`status: draft` in either language's file) are left out unless the caller asks for
    them with include_drafts, which only views for signed-in staff do.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[tuple[float, int], Condition]] = {}
        self._listing_stamp: tuple | None = None
        self._shelf = _Shelf()
        self._checked_at = float("-inf")
        self.version = 0  # bumped on every reload, so caches of rendered pages know when to drop

    # Look at the folder at most this often: an edited article shows within a second,
    # and a busy page does not stat two dozen files on every request.
    RECHECK_SECONDS = 1.0

    def _refresh(self) -> _Shelf:
        if time.monotonic() - self._checked_at < self.RECHECK_SECONDS:
            return self._shelf
        # One thread reloads while the others wait for it: a request must never see the
        # library half-loaded (a fresh worker would answer 404 for articles that exist).
        with self._lock:
            if time.monotonic() - self._checked_at < self.RECHECK_SECONDS:
                return self._shelf  # another thread refreshed while this one waited
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
                drafts = frozenset(c.slug for c in by_key.values() if c.is_draft)
                self._shelf = _Shelf(by_key, drafts)
                self._listing_stamp = stamps
                self.version += 1
            self._checked_at = time.monotonic()
            return self._shelf

    def current_version(self) -> int:
        """The version of the articles as they are on disk now (a reload bumps it)."""
        self._refresh()
        return self.version

    def all(self, lang: str = "en", *, include_drafts: bool = False) -> list[Condition]:
        """Every article (the English files are the canonical list), each in `lang` where it has
        been translated and in English otherwise, A-Z by the title the reader sees."""
        return self._all(self._refresh(), lang, include_drafts)

    @staticmethod
    def _all(shelf: _Shelf, lang: str, include_drafts: bool) -> list[Condition]:
        return sorted(
            (
                shelf.by_key.get((slug, lang), c)
                for (slug, code), c in shelf.by_key.items()
                if code == "en" and (include_drafts or slug not in shelf.drafts)
            ),
            key=lambda c: sort_key(c.title, lang),
        )

    def get(self, slug: str, lang: str = "en", *, include_drafts: bool = False) -> tuple[Condition | None, bool]:
        """The article in `lang` if written, else English; the flag says whether it fell back."""
        shelf = self._refresh()
        if slug in shelf.drafts and not include_drafts:
            return None, False
        translated = shelf.by_key.get((slug, lang))
        if translated is not None:
            return translated, False
        return shelf.by_key.get((slug, "en")), lang != "en"

    def search(self, query: str, lang: str = "en", *, include_drafts: bool = False) -> list[Condition]:
        """Articles whose name, other names or summary contain every word of the query, in `lang`
        or in English (people often know a condition by its English or Latin name), shown in `lang`.
        Case and accents are ignored: 'niezai' finds 'Niežai'."""
        words = search_words(query)
        if not words:
            return []
        shelf = self._refresh()
        found = []
        for article in self._all(shelf, lang, include_drafts):
            versions = {shelf.by_key.get((article.slug, "en")), article}
            if any(all(word in v.search_text for word in words) for v in versions if v is not None):
                found.append(article)
        return found

    def every_version(self) -> list[Condition]:
        """Every file, drafts and all languages included, by slug and language (for staff)."""
        shelf = self._refresh()
        return [shelf.by_key[key] for key in sorted(shelf.by_key)]
