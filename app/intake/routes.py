"""Placeholder until the intake form lands (replaced by the intake work)."""

from flask import abort

from app.intake import bp


@bp.get("/consultation/new")
def new():
    abort(404)
