"""Public pages: home, the A-Z index with search, condition pages, sitemap.xml and robots.txt.

Signed-in staff also see draft articles (marked as drafts); everyone else never does.
"""

from __future__ import annotations

import json

from flask import Response, abort, render_template, request
from flask_babel import get_locale
from flask_login import current_user

from app.conditions import bp
from app.conditions.cache import cached_page, shareable
from app.conditions.content import Condition, index_letter
from app.conditions.library import articles
from app.conditions.review import MedicalReview, medical_review
from app.links import external_url

__all__ = ["articles"]  # app/intake imports articles from here

FEATURED_SLUGS = (
    "palmoplantar-pustulosis",
    "pityriasis-rosea",
    "acne",
    "atopic-dermatitis",
    "psoriasis",
    "moles-and-melanoma",
)


def _lang() -> str:
    return str(get_locale() or "en")


def _staff() -> bool:
    """Only staff have accounts, so anyone signed in may see drafts."""
    return bool(current_user.is_authenticated)


@bp.get("/")
@cached_page
def home():
    found = (articles().get(slug, _lang(), include_drafts=_staff())[0] for slug in FEATURED_SLUGS)
    return render_template("conditions/home.html", featured=[c for c in found if c])


@bp.get("/conditions/")
@cached_page
def index():
    query = request.args.get("q", "").strip()[:100]
    library, lang, staff = articles(), _lang(), _staff()
    conditions = library.search(query, lang, include_drafts=staff) if query else library.all(lang, include_drafts=staff)
    letters: dict[str, list[Condition]] = {}
    for condition in conditions:
        letters.setdefault(index_letter(condition.title), []).append(condition)
    return render_template("conditions/index.html", letters=letters, query=query, count=len(conditions))


@bp.get("/conditions/<slug>")
@cached_page
def condition(slug: str):
    library, lang, staff = articles(), _lang(), _staff()
    article, fell_back = library.get(slug, lang, include_drafts=staff)
    if article is None:
        abort(404)
    related = [c for c in (library.get(s, lang, include_drafts=staff)[0] for s in article.related) if c]
    review = medical_review(article)
    return render_template(
        "conditions/condition.html",
        condition=article,
        review=review,
        related=related,
        fell_back=fell_back,
        json_ld=_json_ld(article, review),
    )


def _json_ld(article: Condition, review: MedicalReview) -> str:
    data: dict = {
        "@context": "https://schema.org",
        "@type": "MedicalWebPage",
        "name": article.title,
        "lastReviewed": article.last_reviewed.isoformat(),
        "inLanguage": article.lang,
        "about": {
            "@type": "MedicalCondition",
            "name": article.title,
            "alternateName": list(article.other_names),
            "description": article.summary,
        },
        "url": external_url("conditions.condition", slug=article.slug),
    }
    if review.reviewer is not None:
        data["reviewedBy"] = {"@type": "Person", "name": review.reviewer}
    # </script> cannot appear inside the JSON: escape '<' so text can never close the tag.
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


@bp.get("/sitemap.xml")
@shareable
def sitemap():
    pages = [external_url("conditions.home"), external_url("conditions.index"), external_url("intake.new")]
    entries: list[tuple[str, str | None]] = [(url, None) for url in pages]
    entries += [
        (external_url("conditions.condition", slug=c.slug), c.last_reviewed.isoformat())
        for c in articles().all()  # published articles only, whoever asks
    ]
    xml = render_template("conditions/sitemap.xml", entries=entries)
    return Response(xml, mimetype="application/xml")


@bp.get("/robots.txt")
@shareable
def robots():
    lines = [
        "User-agent: *",
        "Disallow: /c/",
        "Disallow: /queue/",
        "Disallow: /staff/",
        "Disallow: /login",
        f"Sitemap: {external_url('conditions.sitemap')}",
    ]
    return Response("\n".join(lines) + "\n", mimetype="text/plain")
