"""Public pages: home, the A-Z index with search, condition pages, sitemap.xml and robots.txt."""

from __future__ import annotations

import json

from flask import Response, abort, current_app, render_template, request, url_for
from flask_babel import get_locale

from app.conditions import bp
from app.conditions.cache import cached_page
from app.conditions.content import Condition, index_letter, library


def articles():
    return library(current_app.config["CONTENT_DIR"])


def _lang() -> str:
    return str(get_locale() or "en")


@bp.get("/")
@cached_page
def home():
    featured_slugs = (
        "palmoplantar-pustulosis",
        "pityriasis-rosea",
        "acne",
        "atopic-dermatitis",
        "psoriasis",
        "moles-and-melanoma",
    )
    conditions = [c for c in (articles().get(slug, _lang())[0] for slug in featured_slugs) if c]
    return render_template("conditions/home.html", featured=conditions)


@bp.get("/conditions/")
@cached_page
def index():
    query = request.args.get("q", "").strip()[:100]
    conditions = articles().search(query, _lang()) if query else articles().all(_lang())
    letters: dict[str, list[Condition]] = {}
    for condition in conditions:
        letters.setdefault(index_letter(condition.title), []).append(condition)
    return render_template("conditions/index.html", letters=letters, query=query, count=len(conditions))


@bp.get("/conditions/<slug>")
@cached_page
def condition(slug: str):
    article, fell_back = articles().get(slug, _lang())
    if article is None:
        abort(404)
    related = [c for c in (articles().get(s, _lang())[0] for s in article.related) if c]
    return render_template(
        "conditions/condition.html",
        condition=article,
        related=related,
        fell_back=fell_back,
        json_ld=_json_ld(article),
    )


def _json_ld(article: Condition) -> str:
    data = {
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
        "url": url_for("conditions.condition", slug=article.slug, _external=True),
    }
    # </script> cannot appear inside the JSON: escape '<' so text can never close the tag.
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


@bp.get("/sitemap.xml")
def sitemap():
    pages = [
        url_for("conditions.home", _external=True),
        url_for("conditions.index", _external=True),
        url_for("intake.new", _external=True),
    ]
    entries = [(url, None) for url in pages]
    entries += [
        (url_for("conditions.condition", slug=c.slug, _external=True), c.last_reviewed.isoformat())
        for c in articles().all()
    ]
    xml = render_template("conditions/sitemap.xml", entries=entries)
    return Response(xml, mimetype="application/xml")


@bp.get("/robots.txt")
def robots():
    lines = [
        "User-agent: *",
        "Disallow: /c/",
        "Disallow: /queue/",
        "Disallow: /staff/",
        "Disallow: /login",
        f"Sitemap: {url_for('conditions.sitemap', _external=True)}",
    ]
    return Response("\n".join(lines) + "\n", mimetype="text/plain")
