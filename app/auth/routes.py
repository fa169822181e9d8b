"""Placeholder until staff sign-in lands (replaced by the auth work)."""

from flask import abort

from app.auth import bp


@bp.route("/login", methods=["GET", "POST"])
def login():
    abort(404)


@bp.post("/logout")
def logout():
    abort(404)
