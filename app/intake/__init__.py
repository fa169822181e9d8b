"""Patient intake: the consultation form, the confirmation and the patient's private page."""

from flask import Blueprint

bp = Blueprint("intake", __name__)

from app.intake import private_page, routes  # noqa: E402,F401  (routes attach to bp)
