"""The production stack, as docs/operations.md deploys it, started on loopback and attacked from outside.

nginx runs the shipped site (deploy/nginx-skin-clinic.conf, only ports, paths and the certificate
changed) with a certificate made here, in front of gunicorn with gunicorn.conf.py and production
settings; rate limits count in Redis (database REDIS_DB, emptied before and after), `flask worker`
delivers the outbox to a real SMTP server (aiosmtpd). Clients speak TLS to https://clinic.example:<port>
with the right SNI, as browsers do. What is checked: a patient's request with a photo and its
confirmation email; bodies too large for the app refused by nginx before the app sees them, and no
502 around them [F12]; unknown host names refused without an answer [F3]; a reload of gunicorn under
load loses nothing [F12]; with the app down, nginx's logs hold no private link [F11].

Needs nginx (`make test` installs Debian's through scripts/ensure-debian.sh) and Redis on 127.0.0.1:6379;
skipped with the reason when either is missing. The tests share one stack and run in file order;
the last one stops the app server.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import requests
from flask import Flask
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import ConsultationRequest
from config import load as load_settings
from tests.factories import intake_answers
from tests.nginx import NGINX, SITE, LoopbackHTTPS, Nginx, Ports, TLSClient, raw_exchange, self_signed_certificate
from tests.smtp import MailServer, body_text, free_port
from tests.test_scale_out import BIN, ROOT, UNDER_FAKETIME, Service, hidden, phone_photo, redis_reachable, start

PUBLIC_HOST = "clinic.example"
REDIS_DB = 13  # this test's own; test_scale_out uses 14
RUN = secrets.token_hex(4)
DEFAULTS = load_settings("testing")  # the body limits as production has them (no environment here)
# The load during reloads: patients sending a photo, and bots posting bodies the app never reads.
PATIENTS, BOTS, RELOADS = 6, 2, 3
UNREAD_BODY = 900 * 1024  # under nginx's 1 MiB, far over the 64 KiB gunicorn discards by itself
# Every wait is bounded: attempts x pause.
ATTEMPTS, POLL_PAUSE = 300, 0.1


def missing() -> str | None:
    """Why the stack cannot run here, if it cannot."""
    if NGINX is None:
        return "nginx is not installed (`make test` installs it through scripts/ensure-debian.sh)"
    if UNDER_FAKETIME:
        return "gunicorn cannot share a clock moved by libfaketime (see tests/test_scale_out.py)"
    if not redis_reachable():
        return "needs Redis on 127.0.0.1:6379 for the rate limits"
    return None


def wait_for(condition: Callable[[], object], what: str, attempts: int = ATTEMPTS) -> None:
    for _ in range(attempts):
        if condition():
            return
        time.sleep(POLL_PAUSE)  # polling, bounded by `attempts`
    raise AssertionError(f"gave up waiting: {what}")


# --- The stack --------------------------------------------------------------------------------------


@dataclass
class Stack:
    ports: Ports
    certificate: Path
    gunicorn: Service
    worker: Service
    nginx: Nginx
    mail: MailServer
    inspector: Flask

    @property
    def base(self) -> str:
        return f"https://{PUBLIC_HOST}:{self.ports.https}"

    def browser(self) -> TLSClient:
        return TLSClient(self.certificate)

    def https(self, name: str = PUBLIC_HOST) -> LoopbackHTTPS:
        return LoopbackHTTPS(name, self.ports.https, self.certificate)

    def app_log_lines(self, needle: str) -> int:
        """gunicorn access lines containing `needle` (the app saw that request)."""
        return sum(needle in line for line in self.gunicorn.log_text().splitlines())

    def workers(self) -> set[int]:
        """The gunicorn master's worker processes."""
        master = self.gunicorn.process.pid
        found: set[int] = set()
        for task in Path(f"/proc/{master}/task").iterdir():
            found |= {int(pid) for pid in (task / "children").read_text().split()}
        return found


def environment(folder: Path, ports: Ports, mail: MailServer) -> dict[str, str]:
    """Production settings, as /etc/skin-clinic/env gives them (deploy/env.example)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "FLASK_APP": "wsgi:app",
        "APP_CONFIG": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite:///{folder / 'clinic.sqlite'}",
        "UPLOAD_DIR": str(folder / "uploads"),
        "PUBLIC_PAGES_DIR": str(folder / "pages"),  # where the site's nginx looks for them (tests/nginx.py)
        "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "PUBLIC_BASE_URL": f"https://{PUBLIC_HOST}:{ports.https}",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(mail.port),
        "GUNICORN_BIND": f"127.0.0.1:{ports.app}",
        "WEB_CONCURRENCY": "2",
        # Every client here comes from 127.0.0.1, one address: production allows 10 requests an hour.
        "SUBMIT_RATE_LIMIT": "2000 per minute",
        "RESEND_RATE_LIMIT": "2000 per minute",
    }


def empty_redis_database() -> None:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=5)
    try:
        client.flushdb()  # this database only: others on the same server are left alone
    finally:
        client.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("production-stack")
    ports = Ports(http=free_port(), https=free_port(), app=free_port())
    certificate, key = self_signed_certificate(folder, PUBLIC_HOST)
    mail = MailServer().start()
    empty_redis_database()
    env = environment(folder, ports, mail)
    services: list[Service] = []
    nginx = Nginx(folder, ports, certificate, key)
    inspector = create_app("testing", {"SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"], "UPLOAD_DIR": env["UPLOAD_DIR"]})
    try:
        migrated = subprocess.run(
            [str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        services.append(start("gunicorn", [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], env, folder))
        services.append(start("worker", [str(BIN / "flask"), "worker", "--interval", "0.5"], env, folder))
        checked = nginx.check()
        assert checked.returncode == 0, f"nginx -t refuses the shipped site:\n{checked.stderr}"
        nginx.start()
        built = Stack(ports, certificate, services[0], services[1], nginx, mail, inspector)
        wait_until_served(built)
        yield built
    finally:
        nginx.stop()
        for service in services:
            service.stop()
        mail.stop()
        empty_redis_database()
        with inspector.app_context():
            db.engine.dispose()


def wait_until_served(stack: Stack) -> None:
    """/healthz through nginx and TLS: every part of the way is up."""
    browser = stack.browser()

    def healthy() -> bool:
        stack.nginx.ensure_running()
        stack.gunicorn.ensure_running()
        try:
            answer = browser.get(stack.base + "/healthz", timeout=5)
        except requests.RequestException:
            return False
        return answer.status_code == 200 and answer.json() == {"status": "ok", "database": "ok"}

    wait_for(healthy, f"the stack to answer /healthz:\n{stack.gunicorn.log_text()[-2000:]}")


# --- A patient ----------------------------------------------------------------------------------------


def send_consultation(browser: TLSClient, base: str, number: int) -> requests.Response:
    """Open the form, fill it in, attach a photo and send it, as a patient's browser does."""
    page = browser.get(base + "/consultation/new", timeout=60)
    assert page.status_code == 200, page.status_code
    data = intake_answers(email=f"patient{number}.r{RUN}@example.com", full_name=f"Stack Patient {number}")
    data.update(csrf_token=hidden(page.text, "csrf_token"), submission_key=hidden(page.text, "submission_key"))
    photo = ("photos", (f"IMG_{number}.jpg", phone_photo(number, 0), "image/jpeg"))
    return browser.post(base + "/consultation/new", data=data, files=[photo], timeout=60)


def reference_of(response: requests.Response) -> str | None:
    if response.status_code != 200 or not response.url.endswith("/consultation/received"):
        return None
    found = re.search(r'id="reference">(DRM-[A-Z0-9]+)<', response.text)
    return found.group(1) if found else None


@dataclass
class Patient:
    email: str
    reference: str
    token: str
    form_page: requests.Response
    private_page: requests.Response
    photo_path: str
    emails_sent_by_worker: int = 0
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def private_path(self) -> str:
        return f"/c/{self.token}"


def sent_by(worker_log: str) -> int:
    """How many emails the worker's log says it sent."""
    return sum(int(n) for n in re.findall(r"; sent (\d+),", worker_log))


@pytest.fixture(scope="module")
def patient(stack: Stack) -> Patient:
    """One request with a photo sent through nginx, its confirmation email, and its private page opened."""
    browser = stack.browser()
    form_page = browser.get(stack.base + "/consultation/new", timeout=60)
    sent = send_consultation(browser, stack.base, 0)
    reference = reference_of(sent)
    assert reference, (sent.status_code, sent.url, sent.text[-500:])
    email = f"patient0.r{RUN}@example.com"
    wait_for(lambda: stack.mail.messages_to(email), "the confirmation email (sent by flask worker)")
    link = re.search(rf"{re.escape(stack.base)}/c/([A-Za-z0-9_-]+)", body_text(stack.mail.messages_to(email)[0]))
    assert link, "the confirmation has no private link"
    token = link.group(1)
    private_page = browser.get(f"{stack.base}/c/{token}", timeout=60)
    photo = re.search(rf'href="(/c/{re.escape(token)}/photos/[0-9a-f]{{32}}\.jpg)"', private_page.text)
    assert photo, "the private page shows no photo"
    # The worker logs a round after the mail server has taken its emails: wait for the line too.
    wait_for(lambda: sent_by(stack.worker.log_text()), "the worker's line saying it sent the email")
    sent_by_worker = sent_by(stack.worker.log_text())
    return Patient(email, reference, token, form_page, private_page, photo.group(1), sent_by_worker)


# --- The tests ------------------------------------------------------------------------------------------


def test_nginx_body_limits_are_the_apps():
    """[F12] nginx refuses exactly what the app refuses: 1 MiB everywhere, MAX_CONTENT_LENGTH on the
    two forms that carry photos (no more, or the app would answer bodies it did not read)."""
    site = SITE.read_text(encoding="utf-8")
    sizes = {"k": 1024, "m": 1024 * 1024, "g": 1024**3}

    def in_bytes(value: str) -> int:
        return int(value[:-1]) * sizes[value[-1].lower()] if value[-1].lower() in sizes else int(value)

    server_wide = re.search(r"^    client_max_body_size (\w+);", site, re.MULTILINE)
    assert server_wide and in_bytes(server_wide.group(1)) == DEFAULTS["FORM_MAX_CONTENT_LENGTH"]
    for location in (r"location = /consultation/new \{", r"location ~ \^/c/\[\^/\]\+/reply\$ \{"):
        block = re.search(location + r"\s*client_max_body_size (\w+);", site)
        assert block, f"no upload limit in {location}"
        assert in_bytes(block.group(1)) == DEFAULTS["MAX_CONTENT_LENGTH"]


@pytest.mark.slow
def test_a_patient_sends_a_photo_over_tls_and_the_worker_emails_the_confirmation(stack: Stack, patient: Patient):
    # The form came over TLS with the app's security headers (it sees https through X-Forwarded-Proto).
    assert patient.form_page.status_code == 200
    assert patient.form_page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # The confirmation went out through flask worker to the SMTP server, with a link that opens the
    # private page through nginx; the photo is there, and the page was not compressed (BREACH).
    assert patient.emails_sent_by_worker >= 1
    page = patient.private_page
    assert page.status_code == 200 and patient.reference in page.text
    assert "Content-Encoding" not in page.headers, "nginx compressed a private page"
    photo = stack.browser().get(stack.base + patient.photo_path, timeout=30)
    assert photo.status_code == 200 and photo.headers["Content-Type"] == "image/jpeg"
    assert photo.content.startswith(b"\xff\xd8\xff")
    # Static files come from nginx itself, cached for a year.
    stylesheet = re.search(r'href="(/static/css/app\.css\?v=[^"]+)"', patient.form_page.text)
    assert stylesheet, "no stylesheet link on the form"
    served = stack.browser().get(stack.base + stylesheet.group(1).replace("&amp;", "&"), timeout=30)
    assert served.status_code == 200 and "immutable" in served.headers["Cache-Control"]
    assert served.content == (ROOT / "static" / "css" / "app.css").read_bytes()
    with stack.inspector.app_context():
        stored = db.session.execute(
            select(ConsultationRequest).where(ConsultationRequest.reference == patient.reference)
        ).scalar_one()
        assert stored.patient_email == patient.email and len(stored.photos) == 1
        db.session.remove()


def announce_body(connection, method: str, path: str, length: int, content_type: str) -> None:
    """Send a request's headers announcing `length` bytes of body, and none of the body."""
    connection.putrequest(method, path)
    connection.putheader("Content-Type", content_type)
    connection.putheader("Content-Length", str(length))
    connection.endheaders()


@pytest.mark.slow
def test_nginx_refuses_a_body_too_large_for_the_app_before_the_app_sees_it(stack: Stack, patient: Patient):
    """[F12] nginx answers 413 from the headers alone, with a page in both languages; the app never
    sees the request. A body of exactly the limit still reaches the app."""
    largest, form_limit = DEFAULTS["MAX_CONTENT_LENGTH"], DEFAULTS["FORM_MAX_CONTENT_LENGTH"]
    refused = {
        "/consultation/new": largest + 1,
        f"{patient.private_path}/reply": largest + 1,
        "/login": form_limit + 1,
        "/consultation/link": form_limit + 1,
        f"{patient.private_path}/erase": form_limit + 1,
    }
    seen_before = {path: stack.app_log_lines(f"POST {path} ") for path in ("/consultation/new", "/login")}
    redacted_before = stack.app_log_lines("POST /c/[redacted]/")
    for path, length in refused.items():
        connection = stack.https()
        try:
            announce_body(connection, "POST", path, length, "multipart/form-data; boundary=x")
            answer = connection.getresponse()
            page = answer.read().decode()
        finally:
            connection.close()
        assert answer.status == 413, (path, answer.status)
        assert "Too much to send at once" in page and "Per daug vienu kartu" in page
        assert answer.getheader("Content-Security-Policy") == "default-src 'none'"

    # Exactly the limit passes nginx: the app reads it and refuses the missing CSRF token itself.
    at_limit = stack.browser().post(
        stack.base + "/login",
        data=b"x" * form_limit,
        headers={"Content-Type": "application/octet-stream"},
        timeout=60,
    )
    assert at_limit.status_code == 400
    wait_for(lambda: stack.app_log_lines("POST /login ") == seen_before["/login"] + 1, "the app's log line")
    assert stack.app_log_lines("POST /consultation/new ") == seen_before["/consultation/new"]
    assert stack.app_log_lines("POST /c/[redacted]/") == redacted_before


@pytest.mark.slow
def test_big_bodies_on_kept_alive_connections_cause_no_502(stack: Stack):
    """[F12] The attack's pattern: 3 MB posts and ordinary ones on kept-alive connections at once.
    Before, a third of the 3 MB posts got 502 instead of 413, and ordinary requests next to them too."""
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def client(slot: int) -> None:
        browser = stack.browser()
        page = browser.get(stack.base + "/consultation/link", timeout=60)
        token = hidden(page.text, "csrf_token")
        for round_ in range(8):
            try:
                if (slot + round_) % 2 == 0:  # a sign-in form of 3 MB: over the app's 1 MiB for it
                    form = {"csrf_token": token, "email": "a@example.com", "password": "x" * (3 * 1024 * 1024)}
                    answer = browser.post(stack.base + "/login", data=form, timeout=60)
                    outcome = ("3 MB", answer.status_code, "Per daug vienu kartu" in answer.text)
                else:
                    form = {"csrf_token": token, "email": "not-an-address"}
                    answer = browser.post(stack.base + "/consultation/link", data=form, timeout=60)
                    outcome = ("small", answer.status_code, "Per daug vienu kartu" in answer.text)
            except requests.RequestException as error:
                outcome = ("failed", type(error).__name__, False)
            with lock:
                outcomes[outcome] += 1

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(client, range(4)))
    # 413 with nginx's page; 422: the app's own answer to an address that is not one.
    assert outcomes == Counter({("3 MB", 413, True): 16, ("small", 422, False): 16}), outcomes


@pytest.mark.slow
def test_host_names_the_clinic_does_not_own_never_reach_the_app(stack: Stack):
    """[F3] Only clinic.example reaches the app; any other Host or TLS name is refused without an answer
    (444: the connection closes), so no page or redirect is ever built for it."""
    probe = f"/conditions/host-probe-{RUN}"
    request = f"GET {probe} HTTP/1.1\r\nHost: {{host}}\r\nConnection: close\r\n\r\n"

    def https(host: str, tls_name: str) -> bytes:
        return raw_exchange(
            stack.ports.https, request.format(host=host).encode(), tls_name=tls_name, certificate=stack.certificate
        )

    def http(host: str) -> bytes:
        return raw_exchange(stack.ports.http, request.format(host=host).encode())

    # The clinic's name over TLS carrying another Host, or a request line naming another host.
    assert https("evil.example", PUBLIC_HOST) == b""
    assert https(f"evil.example:{stack.ports.https}", PUBLIC_HOST) == b""
    absolute = f"GET https://evil.example{probe} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(stack.ports.https, absolute.encode(), tls_name=PUBLIC_HOST, certificate=stack.certificate)
    assert answer == b""
    # Another TLS name, or none (an IP address): the handshake is refused, no certificate shown.
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        https(PUBLIC_HOST, "evil.example")
    unnamed = ssl.create_default_context()
    unnamed.check_hostname, unnamed.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", stack.ports.https), timeout=10) as plain,
        pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"),
    ):
        unnamed.wrap_socket(plain)  # no server_hostname: no SNI at all
    # Plain http: other names get nothing, the clinic's name a redirect to https on its own name.
    assert http("evil.example") == b""
    assert http("").startswith(b"HTTP/1.1 400 ")  # an empty Host: nginx's own refusal
    redirect = http(PUBLIC_HOST)
    assert redirect.startswith(b"HTTP/1.1 301 ")
    assert f"\r\nLocation: https://{PUBLIC_HOST}{probe}\r\n".encode() in redirect

    # The app saw none of these; the clinic's own name does reach it (the app's 404 for the probe).
    assert stack.app_log_lines(probe) == 0
    control = stack.browser().get(stack.base + probe, timeout=30)
    assert control.status_code == 404
    wait_for(lambda: stack.app_log_lines(probe) == 1, "the app's log line for the clinic's own name")


@pytest.mark.slow
def test_a_reload_under_load_loses_no_request(stack: Stack):
    """[F12] gunicorn is reloaded (SIGHUP: new workers, the old ones finish) three times while patients
    send photos and bots post bodies the app never reads: no 502, every request stored once."""
    stop = threading.Event()
    lock = threading.Lock()
    outcomes: Counter = Counter()
    references: list[str] = []
    spans: list[tuple[float, float]] = []  # when each POST started and got its answer

    def record(outcome: object, started: float) -> None:
        with lock:
            outcomes[outcome] += 1
            spans.append((started, time.monotonic()))

    def patient(slot: int) -> None:
        browser = stack.browser()
        number = 1000 * (slot + 1)
        while not stop.is_set():
            number += 1
            started = time.monotonic()
            try:
                answer = send_consultation(browser, stack.base, number)
            except (requests.RequestException, AssertionError) as error:
                record(("patient", type(error).__name__, str(error)[:200]), started)
                continue
            reference = reference_of(answer)
            record(("patient", "stored" if reference else answer.status_code), started)
            if reference:
                with lock:
                    references.append(reference)

    def bot(slot: int) -> None:
        browser = stack.browser()
        while not stop.is_set():
            started = time.monotonic()
            try:
                answer = browser.post(
                    f"{stack.base}/no-such-form-{RUN}",
                    data=b"x" * UNREAD_BODY,
                    headers={"Content-Type": "application/octet-stream"},
                    timeout=60,
                )
                record(("bot", answer.status_code), started)
            except requests.RequestException as error:
                record(("bot", type(error).__name__, str(error)[:200]), started)

    def answered() -> int:
        with lock:
            return len(spans)

    failed_log = stack.nginx.logs / "skin-clinic.failed.log"
    failed_before = failed_log.read_text() if failed_log.exists() else ""
    reloads: list[float] = []
    with ThreadPoolExecutor(PATIENTS + BOTS) as pool:
        running = [pool.submit(patient, n) for n in range(PATIENTS)] + [pool.submit(bot, n) for n in range(BOTS)]
        try:
            wait_for(lambda: answered() >= 10, "the load to start")
            for _ in range(RELOADS):
                old = stack.workers()
                assert len(old) == 2, old
                before = answered()
                reloads.append(time.monotonic())
                os.kill(stack.gunicorn.process.pid, signal.SIGHUP)
                wait_for(lambda old=old: len(stack.workers() - old) == 2 and not stack.workers() & old, "new workers")
                wait_for(lambda before=before: answered() >= before + 10, "answers from the new workers")
        finally:
            stop.set()
            for future in running:
                future.result()

    stack.gunicorn.ensure_running()
    assert set(outcomes) == {("patient", "stored"), ("bot", 404)}, outcomes
    # Each reload happened while requests were on their way: some started before it and ended after.
    for moment in reloads:
        assert any(start < moment < end for start, end in spans), "no request was in flight during a reload"
    with stack.inspector.app_context():
        stored = Counter(
            db.session.execute(
                select(ConsultationRequest.reference).where(ConsultationRequest.patient_email.like(f"%.r{RUN}@%"))
            ).scalars()
        )
        db.session.remove()
    shown = Counter(references)
    assert all(count == 1 for count in shown.values())
    assert set(shown) <= set(stored) and all(stored[reference] == 1 for reference in shown)
    failed_after = failed_log.read_text() if failed_log.exists() else ""
    assert failed_after == failed_before, f"nginx logged failures:\n{failed_after[len(failed_before) :]}"
    print(
        f"\n{outcomes[('patient', 'stored')]} requests with a photo and {outcomes[('bot', 404)]} unread bodies "
        f"answered through {RELOADS} reloads, none lost"
    )


@pytest.mark.slow
def test_with_the_app_down_nginx_logs_no_private_link(stack: Stack, patient: Patient):
    """[F11] The app server stops; a patient's link, its photo, a reply and an encoded form of the
    link all fail with 502 (published public pages are still sent). nginx's logs name the failures
    with the token redacted and never hold it.
    (Runs last: it stops gunicorn.)"""
    assert stack.gunicorn.stop() == 0
    browser = stack.browser()
    failing = {
        ("GET", patient.private_path): "/c/[redacted]",
        ("GET", patient.photo_path): "/c/[redacted]/photos/",
        ("GET", f"/%63/{patient.token}"): "/c/[redacted]",
        ("POST", f"{patient.private_path}/reply"): "/c/[redacted]/reply",
        ("GET", "/conditions/?q=acne"): "/conditions/",  # a search: only the app can answer it
    }
    for (method, path), _ in failing.items():
        answer = browser.request(method, stack.base + path, data={"body": "Still itching."}, timeout=30)
        assert answer.status_code == 502, (method, path, answer.status_code)
    # Readers still get the pages the app published (PUBLIC_PAGES_DIR), from nginx alone.
    article = browser.get(stack.base + "/conditions/acne", timeout=30)
    assert article.status_code == 200 and "Last-Modified" in article.headers
    # A link typed with http:// is sent on to https (by nginx alone), and logged redacted too.
    typed = f"GET {patient.private_path} HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\nConnection: close\r\n\r\n"
    assert raw_exchange(stack.ports.http, typed.encode()).startswith(b"HTTP/1.1 301 ")

    logs = {name: text for name, text in stack.nginx.log_texts().items()}
    logs["gunicorn"], logs["worker"] = stack.gunicorn.log_text(), stack.worker.log_text()
    for name, text in logs.items():
        assert patient.token not in text, f"the private link's token is in {name}"
    # The failures are all named, redacted, with the app server that failed them.
    failed = logs["skin-clinic.failed.log"]
    for (method, _), shown in failing.items():
        assert re.search(
            rf'"{method} {re.escape(shown)}\S* HTTP/1\.1" 502 .* upstream=127\.0\.0\.1:{stack.ports.app} ', failed
        )
    # The error log is written (the cause, for a public page), just not for private links.
    error_log = logs["skin-clinic.error.log"]
    assert "connect() failed (111: Connection refused)" in error_log
    assert '"GET /conditions/?q=acne HTTP/1.1"' in error_log
    assert "/c/" not in error_log
    # Earlier visits to the private page are in the access log, redacted, and so is the typed link.
    assert re.search(r'"GET /c/\[redacted\] HTTP/1\.1" 200 ', logs["skin-clinic.access.log"])
    assert re.search(r'"GET /c/\[redacted\] HTTP/1\.1" 301 ', logs["skin-clinic.access.log"])
