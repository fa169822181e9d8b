"""Logging that never carries health data or private-link tokens.

Request paths can hold the patient's private token (/c/<token>); access logs from the
development server and gunicorn pass through redact() before they are written. Tracebacks
keep their frames but not exception messages: a database error's message can quote the row it
failed on (PostgreSQL's "Key (email)=(...) already exists"), and that may be a patient's.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType

_PRIVATE_LINK = re.compile(r"/c/[A-Za-z0-9_\-]{8,}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def redact(text: str) -> str:
    """Replace private-link tokens and email addresses in a log line."""
    text = _PRIVATE_LINK.sub("/c/[redacted]", text)
    return _EMAIL.sub("[email]", text)


def withheld_traceback(exc_info: tuple[type[BaseException], BaseException, TracebackType | None]) -> str:
    """The traceback of an exception and its causes, each message replaced by its type alone."""
    chain: list[BaseException] = []
    error: BaseException | None = exc_info[1]
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    parts = []
    for error in reversed(chain):
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(error.__traceback__))
        parts.append(f"{type(error).__module__}.{type(error).__qualname__}: [message withheld]\n")
    return "".join(parts).rstrip("\n")


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the message of every record it sees and withholds exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatters use exc_text when it is set, instead of formatting the exception themselves.
            record.exc_text = withheld_traceback(record.exc_info)
        return True


def install() -> None:
    """Attach the filter to the loggers that print request lines or app messages."""
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", "app"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
