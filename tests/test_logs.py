"""Logs never carry private-link tokens or email addresses."""

from __future__ import annotations

import logging

from app.logs import RedactingFilter, redact


def test_redact_hides_private_link_tokens_and_emails():
    line = '127.0.0.1 "GET /c/Zx8_kP2-abcdefghijkLMNOP/photos/k1 HTTP/1.1" 200 jane.doe@example.com'
    cleaned = redact(line)
    assert "Zx8_kP2" not in cleaned and "jane.doe" not in cleaned
    assert "/c/[redacted]/photos/k1" in cleaned


def test_the_werkzeug_request_log_is_redacted(app, caplog):
    logger = logging.getLogger("werkzeug")
    assert any(isinstance(f, RedactingFilter) for f in logger.filters)
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logger.info('"%s %s %s" %s', "GET", "/c/secretTOKENvalue123456", "HTTP/1.1", 200)
    assert "secretTOKENvalue" not in caplog.text
    assert "/c/[redacted]" in caplog.text


def test_gunicorn_access_log_atoms_are_redacted():
    from types import SimpleNamespace

    import gunicorn.config

    from tests.gunicorn_conf_loader import load_logger_class

    logger_class = load_logger_class()
    logger = logger_class(gunicorn.config.Config())
    request = SimpleNamespace(
        method="GET",
        path="/c/secretTOKENvalue123456",
        query="",
        uri="/c/secretTOKENvalue123456",
        version=(1, 1),
        headers=[],
        peer_addr=("127.0.0.1", 1),
    )
    response = SimpleNamespace(status="200 OK", sent=10, headers=[], status_code=200, response_length=10)
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/c/secretTOKENvalue123456",
        "PATH_INFO": "/c/secretTOKENvalue123456",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    atoms = logger.atoms(response, request, environ, SimpleNamespace(seconds=0, microseconds=5))
    assert "secretTOKENvalue" not in atoms["U"] and "secretTOKENvalue" not in atoms["r"]
