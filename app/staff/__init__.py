"""Staff area: the 24-hour target dashboard, accounts, outbox and audit log."""

from flask import Blueprint

bp = Blueprint("staff", __name__)

from app.staff import rota_views, routes, users  # noqa: E402,F401  (routes attach to bp)
