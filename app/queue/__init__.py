"""The dermatologists' review queue: claim, study, answer or ask."""

from flask import Blueprint

bp = Blueprint("queue", __name__)

from app.queue import replies, routes  # noqa: E402,F401  (routes attach to bp)
