"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

Environment variables override (documented in docs/operations.md): GUNICORN_BIND, WEB_CONCURRENCY,
GUNICORN_THREADS, GUNICORN_TIMEOUT, FORWARDED_ALLOW_IPS, GUNICORN_ACCESS_LOG, GUNICORN_CONTROL_SOCKET.
Command-line flags (--bind, --workers) override both.
"""

import multiprocessing
import os
import sys
import time

from gunicorn.glogging import Logger
from gunicorn.http.errors import ParseException

from app.logs import redact

# Not `import config`: gunicorn would read a module-level name `config` as one of its settings.
from config import ConfigError
from config import load as load_settings

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# The usual rule of thumb, bounded so a large machine does not open too many database connections:
# each worker holds up to `threads` connections while busy (see "Database connections" in the guide).
workers = int(os.environ.get("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 9)))
threads = int(os.environ.get("GUNICORN_THREADS", 2))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))  # nginx buffers uploads, but a photo still takes work
graceful_timeout = 30  # below systemd's TimeoutStopSec (40 s): requests in flight finish on restart and reload
keepalive = 5  # keep above nginx's keepalive_timeout (4 s in the site), so nginx closes idle connections first
# Recycle workers now and then (jitter: not all at once), so a slow leak could never grow for weeks.
# Rarely: bench/leak.py drove one worker through a mix of public, private and staff pages; after
# warm-up its memory grew about 2 MiB per 100,000 requests as its bounded caches filled
# (docs/performance.md). With the app preloaded a recycled worker starts warm anyway
# (app/prefork.py), so a recycle costs a fork.
max_requests = 100_000
max_requests_jitter = 10_000
proc_name = "skin-clinic"
# Worker heartbeats in memory, not on a disk that may stall under load (/dev/shm exists on Linux).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# Only the local proxy may say which scheme and client address a request came with (nginx on the
# same machine). The app trusts one hop too: PROXY_FIX_HOPS=1 in production.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn 25+ opens a control socket in $XDG_RUNTIME_DIR or ~/.gunicorn by default. Two instances on
# one machine would fight over that path and the systemd unit makes $HOME read-only, so it is off
# unless a path is given.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
# No query string, no referrer, no user agent: request lines only, with private-link tokens redacted below.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


class RedactingLogger(Logger):
    """Access log lines with /c/<token> paths redacted (the token opens a patient's health data)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "f"):
            if key in atoms and isinstance(atoms[key], str):
                atoms[key] = redact(atoms[key])
        return atoms


logger_class = RedactingLogger


# Load the app once in the master and fork every worker from it, with the public pages already
# rendered (app/prefork.py): a new or recycled worker starts warm, at the cost of a fork. The flip
# side: `kill -HUP` (systemctl reload) re-reads these settings but keeps the loaded code, so an
# upgrade restarts the service (docs/operations.md, Upgrades).
preload_app = True


def when_ready(server) -> None:
    """In the master, after the app is loaded and before the first fork: render the public pages."""
    if server.cfg.preload_app:
        from app.prefork import warm

        warm(server.app.wsgi())


def post_fork(server, worker) -> None:
    """In each new worker: no database connection of the master's is ever used by two processes."""
    if server.cfg.preload_app:
        from app.prefork import after_fork

        after_fork(server.app.wsgi())


def on_starting(server) -> None:
    """Refuse to start with one clear line when a setting is wrong, before any worker boots and fails."""
    try:
        load_settings()
    except ConfigError as error:
        sys.exit(f"skin-clinic: {error}")


# --- Request bodies the app answers without reading ---------------------------------------------
# nginx buffers a whole request body and then sends it on. When the app answers before reading it
# (a 404 or 413, a refusal before the form is parsed), gunicorn alone discards at most 64 KiB and then
# closes a connection whose response said "keep-alive": nginx, which keeps connections to the app
# open, may already have sent the next request on it, and that one fails with 502. So the rest of a
# body the app could have accepted is read and discarded here, and the connection serves the next
# request; a body announced larger than the app ever accepts gets "Connection: close" instead.
UNREAD_BODY_SECONDS = 30  # from nginx on the same network this takes a fraction of a second
UNREAD_BODY_IDLE_SECONDS = 5  # a client that stops sending this long loses the connection


def _largest_body(worker) -> int | None:
    settings = getattr(worker.wsgi, "config", None)  # the Flask app's settings
    return settings.get("MAX_CONTENT_LENGTH") if settings else None


def _announced_length(req) -> int | None:
    for name, value in req.headers:
        if name == "CONTENT-LENGTH":
            return int(value)  # gunicorn has checked it is a number
    return None


def pre_request(worker, req) -> None:
    """A body larger than the app ever reads: answer with "Connection: close", never keep-alive."""
    largest, length = _largest_body(worker), _announced_length(req)
    if largest and length is not None and length > largest:
        req.must_close = True


def post_request(worker, req, environ, resp) -> None:
    """Discard what the app left unread of a body (bounded in bytes and time), before the next request."""
    largest = _largest_body(worker)
    if not largest or resp is None or req.body is None or resp.should_close():
        return
    if getattr(req.body.reader, "length", None) == 0:
        return  # no body, or the app read all of it: the usual case costs nothing more
    sock = getattr(req.unreader, "sock", None)
    earlier = sock.gettimeout() if sock is not None else None
    deadline = time.monotonic() + UNREAD_BODY_SECONDS
    left = largest
    try:
        while left > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return  # gunicorn then closes the connection: it cannot find the next request
            if sock is not None:
                sock.settimeout(min(remaining, UNREAD_BODY_IDLE_SECONDS))
            data = req.body.read(min(left, 1024 * 1024))
            if not data:
                return
            left -= len(data)
    except (OSError, ParseException):
        return  # the client went away or sent a broken body: gunicorn closes the connection
    finally:
        if sock is not None:
            sock.settimeout(earlier)
