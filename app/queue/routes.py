"""Placeholder until the review queue lands (replaced by the queue work)."""

from flask import abort

from app.queue import bp


@bp.get("/")
def index():
    abort(404)
