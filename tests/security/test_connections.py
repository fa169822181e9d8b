"""gunicorn as production runs it (gunicorn.conf.py) keeps a connection usable after an answer
the app gave without reading the request's body, or says plainly that it will close it.

nginx keeps its connections to the app server open and sends the next request on one as soon as
the previous answer said "keep-alive". An app server that says so and then closes the connection
(because a body it never read is still arriving) makes that next request fail with 502.
"""

from __future__ import annotations

import http.client
import os
import secrets
from pathlib import Path

import pytest

from config import load as load_settings
from tests.smtp import free_port
from tests.test_scale_out import BIN, start, wait_until_healthy

# What nginx adds to every request (production redirects plain http to https otherwise).
PROXIED = {"Host": "clinic.example", "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
# About what a browser sends with one phone photo: far more than gunicorn discards on its own (64 KiB).
UNREAD_BODY = 900 * 1024


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("connections")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "LANG": "C.UTF-8",
        "APP_CONFIG": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite:///{folder / 'clinic.sqlite'}",
        "UPLOAD_DIR": str(folder / "uploads"),
        "PUBLIC_BASE_URL": "https://clinic.example",  # the Host the requests below carry (TRUSTED_HOSTS)
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
    }
    server = start("gunicorn", [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], env, Path(folder))
    try:
        wait_until_healthy(server, f"http://127.0.0.1:{port}")
        yield port
    finally:
        server.stop()


@pytest.mark.slow
def test_an_answer_to_an_unread_body_leaves_the_connection_ready_for_the_next_request(app_server):
    """[F12] A POST the app answers without reading its body (here a 404) keeps the connection, which
    then serves the next request; before, gunicorn announced keep-alive and closed it."""
    connection = http.client.HTTPConnection("127.0.0.1", app_server, timeout=30)
    try:
        headers = {**PROXIED, "Content-Type": "application/octet-stream"}
        connection.request("POST", "/no-such-page", body=b"x" * UNREAD_BODY, headers=headers)
        first = connection.getresponse()
        first.read()
        assert first.status == 404
        assert first.getheader("Connection") == "keep-alive" and not first.will_close
        socket_used = connection.sock

        connection.request("GET", "/healthz", headers=PROXIED)
        second = connection.getresponse()
        assert second.status == 200 and second.read() == b'{"database":"ok","status":"ok"}\n'
        assert connection.sock is socket_used, "the next request needed a new connection"
    finally:
        connection.close()


@pytest.mark.slow
def test_a_body_larger_than_the_app_ever_accepts_is_answered_with_connection_close(app_server):
    """[F12] A body announced larger than MAX_CONTENT_LENGTH is not read: the 413 says the connection
    closes, so nginx never sends another request on it."""
    largest = load_settings("testing")["MAX_CONTENT_LENGTH"]  # the defaults, as the server has them
    connection = http.client.HTTPConnection("127.0.0.1", app_server, timeout=30)
    try:
        connection.putrequest("POST", "/consultation/new", skip_host=True)
        for name, value in {**PROXIED, "Content-Type": "multipart/form-data; boundary=x"}.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(largest + 1))
        connection.endheaders()  # the body never follows: the answer must not wait for it
        response = connection.getresponse()
        response.read()
        assert response.status == 413
        assert response.getheader("Connection") == "close" and response.will_close
    finally:
        connection.close()
