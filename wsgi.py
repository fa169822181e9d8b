"""Entry point for gunicorn (`gunicorn -c gunicorn.conf.py wsgi:app`) and the `flask` command line.

A wrong setting stops the process here with one line naming it, before anything is served or sent.
"""

from config import ConfigError

try:
    from app import create_app

    app = create_app()
except ConfigError as error:
    raise SystemExit(f"skin-clinic: {error}") from None
