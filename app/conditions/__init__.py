"""The public face: home page, A-Z of skin conditions, search, condition pages, sitemap and robots.txt."""

from flask import Blueprint

bp = Blueprint("conditions", __name__)

from app.conditions import routes  # noqa: E402,F401  (routes attach to bp)
