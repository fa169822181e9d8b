"""Staff sign-in: login/logout, password hashing, role checks."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import routes  # noqa: E402,F401  (routes attach to bp)
from app.auth.session import load_user  # noqa: E402,F401
