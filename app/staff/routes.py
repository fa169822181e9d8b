"""Placeholder until the staff dashboard lands (replaced by the dashboard work)."""

from flask import abort

from app.staff import bp


@bp.get("/")
def dashboard():
    abort(404)
