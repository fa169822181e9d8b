"""Staff sign-in: login/logout, two-step sign-in (authenticator app), password hashing, role checks."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import routes, two_step_routes  # noqa: E402,F401  (routes attach to bp)
from app.auth.session import load_user  # noqa: E402,F401
