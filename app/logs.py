"""Logging that never carries health data or private-link tokens.

Request paths can hold the patient's private token (/c/<token>); access logs from the
development server and gunicorn pass through redact() before they are written.
"""

from __future__ import annotations

import logging
import re

_PRIVATE_LINK = re.compile(r"/c/[A-Za-z0-9_\-]{8,}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def redact(text: str) -> str:
    """Replace private-link tokens and email addresses in a log line."""
    text = _PRIVATE_LINK.sub("/c/[redacted]", text)
    return _EMAIL.sub("[email]", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install() -> None:
    """Attach the filter to the loggers that print request lines or app messages."""
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", "app"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
