"""The public face: home page, A-Z of skin conditions, search, condition pages, sitemap and robots.txt;
and, for signed-in staff, drafts and the list of articles due for medical review."""

from typing import cast

from flask import Blueprint, Flask
from flask.blueprints import BlueprintSetupState

from app.conditions import library

bp = Blueprint("conditions", __name__)


@bp.record_once
def _build_library(state: BlueprintSetupState) -> None:
    """One Library per app, made when the blueprint is registered (create_app)."""
    library.init_app(cast(Flask, state.app))


from app.conditions import review, routes  # noqa: E402,F401  (views attach to bp)
