"""Past one machine: the real web and worker processes, started on loopback, share one database.

Two gunicorn servers (two workers each, as two machines behind a load balancer would be) and two
`flask worker` processes run in production configuration against a database made for this test:
PostgreSQL when TEST_DATABASE_URL points at it, otherwise a SQLite file (the embedded default, WAL
and a busy timeout). Mail goes to a real SMTP server on loopback; rate-limit counters go to Redis
when it is reachable.

Clients behave like browsers behind nginx: every request carries the X-Forwarded-* headers nginx
adds (TLS ends at the proxy, so secure cookies and the https redirect work as in production), each
client keeps its own cookies and its own address, and consecutive requests land on either server,
round-robin, as behind a load balancer.

The heavy tests share one deployment (module fixtures) and are marked slow; the last tests here
(timestamps on both databases, the storage interface) are quick and need no processes.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import io
import itertools
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from PIL import Image
from sqlalchemy import create_engine, func, make_url, select, text

from app import create_app
from app.extensions import db
from app.models import SENT, AuditEvent, ConsultationRequest, OutboundEmail, Photo, User
from app.storage import StorageError, photo_storage
from app.storage import new_key as storage_new_key
from config import ConfigError
from tests.conftest import ON_POSTGRES, build_app, empty_database, reset_database
from tests.databases import DATABASES, shared_app
from tests.factories import intake_answers, login_as, make_consultation, make_user, submit_request
from tests.smtp import MailServer, body_text, free_port, header

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"

# The full load on PostgreSQL; a lighter one on the SQLite file, which runs in every `make test`.
SUBMISSIONS = 200 if ON_POSTGRES else 80
CLIENTS = 16
CONTESTED = 50
PUBLIC_HOST = "clinic.example"
DUTY_EMAIL = "duty@clinic.example"
PASSWORD = "scale-out test password"  # a throwaway account in a throwaway database
DERMATOLOGISTS = (("ruta.derm@clinic.example", "Dr Rūta Jonaitė"), ("tomas.derm@clinic.example", "Dr Tomas Kazlauskas"))
# A lower resend limit than production's, to see the counter shared by both servers (Redis).
RESEND_LIMIT = 3
# Every wait is bounded: attempts x pause.
HEALTH_ATTEMPTS, OUTBOX_ATTEMPTS, POLL_PAUSE = 150, 400, 0.2
# Each run uses its own client addresses (private IPv6, 32 random bits), so counters left in Redis by
# an earlier run (they last an hour) never count against this one.
RUN = secrets.token_hex(4)


# --- The database under test ---------------------------------------------------------------------


@contextmanager
def dedicated_database(folder: Path) -> Iterator[str]:
    """A database made for this test and dropped after it: PostgreSQL if configured, else a SQLite file."""
    if not ON_POSTGRES:
        yield f"sqlite:///{folder / 'clinic.sqlite'}"
        return
    url = make_url(os.environ["TEST_DATABASE_URL"])
    name = f"{url.database}_scale_{os.getpid()}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


REDIS = redis_reachable()


# --- Processes ----------------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def ensure_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")

    def stop(self, wait: float = 20) -> int | None:
        """SIGTERM (graceful: gunicorn finishes requests, a worker its round), then SIGKILL after `wait`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own group: this process and its children
                self.process.wait(timeout=10)
        return self.process.returncode


def start(name: str, args: list[str], env: dict[str, str], folder: Path) -> Service:
    log = folder / f"{name}.log"
    with log.open("wb") as output:  # a file, not a pipe: a chatty process can never block on a full pipe
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Service(name, process, log)


def flask(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "flask"), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run_flask(env: dict[str, str], *commands: tuple[str, ...]) -> None:
    """Run flask commands side by side (as two operators might) and require each to succeed."""
    running = [flask(env, *command) for command in commands]
    for command, process in zip(commands, running, strict=True):
        output, _ = process.communicate(timeout=90)
        assert process.returncode == 0, f"flask {' '.join(command[:2])} failed:\n{output}"


# --- A browser behind nginx ------------------------------------------------------------------------


class BehindTLSProxy(http.cookiejar.DefaultCookiePolicy):
    """Send secure cookies back: this client stands in for a browser whose TLS ends at nginx."""

    def return_ok_secure(self, cookie, request) -> bool:
        return True


class ProxiedSession(requests.Session):
    """A requests session whose cookie jars (the merged copy made for each request, and the copies
    made when following redirects) all send secure cookies over the loopback's plain http."""

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        prepared._cookies.set_policy(BehindTLSProxy())  # redirects copy the jar with its policy
        prepared.headers.pop("Cookie", None)
        prepared.prepare_cookies(prepared._cookies)
        return prepared


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]+)"', page)
    assert match, f"no {name} on the page"
    return match.group(1)


class Browser:
    """One person's browser: its own cookies, its own address, requests spread over the servers."""

    def __init__(self, servers: list[str], address: str) -> None:
        self.servers = servers
        self._turn = itertools.count()
        self.session = ProxiedSession()
        # What deploy/nginx-skin-clinic.conf sets on every proxied request.
        self.session.headers.update(
            {
                "X-Forwarded-For": address,
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": PUBLIC_HOST,
                "X-Forwarded-Port": "443",
            }
        )

    def _url(self, path: str, server: int | None) -> str:
        index = next(self._turn) if server is None else server
        return self.servers[index % len(self.servers)] + path

    def get(self, path: str, server: int | None = None) -> requests.Response:
        return self.session.get(self._url(path, server), timeout=30)

    def post(self, path: str, data: dict, files=None, server: int | None = None, **options) -> requests.Response:
        # No Referer: the app's Referrer-Policy (no-referrer) tells browsers never to send one.
        return self.session.post(self._url(path, server), data=data, files=files, timeout=60, **options)


# --- The deployment -------------------------------------------------------------------------------


@dataclass
class Clinic:
    database_url: str
    upload_dir: Path
    servers: list[str]
    web: list[Service]
    workers: list[Service]
    mail: MailServer
    inspector: object  # a Flask app on the same database, for reading what the processes stored
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def browser(self, number: int) -> Browser:
        return Browser(self.servers, f"fd00:{RUN[:4]}:{RUN[4:]}::{number + 1:x}")

    def stop_workers(self) -> list[int | None]:
        return [worker.stop(wait=30) for worker in self.workers]


def environment(database_url: str, upload_dir: Path, mail: MailServer) -> dict[str, str]:
    """Production settings, as /etc/skin-clinic/env would give them (see deploy/env.example)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "FLASK_APP": "wsgi:app",
        "APP_CONFIG": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": database_url,
        "UPLOAD_DIR": str(upload_dir),
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/14" if REDIS else "memory://",
        "PUBLIC_BASE_URL": f"https://{PUBLIC_HOST}",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(mail.port),
        "STAFF_ALERT_EMAILS": DUTY_EMAIL,
        # The Monday summary would add an email to the exact counts below (tests/test_weekly_summary.py has it).
        "WEEKLY_SUMMARY": "false",
        # One address sends up to 13 requests here; production allows 10 an hour.
        "SUBMIT_RATE_LIMIT": "100 per minute",
        "RESEND_RATE_LIMIT": f"{RESEND_LIMIT} per hour",
    }


def wait_until_healthy(service: Service, url: str) -> None:
    for _ in range(HEALTH_ATTEMPTS):
        service.ensure_running()
        try:
            # A health probe goes through the proxy too: production redirects plain http to https.
            response = requests.get(url + "/healthz", headers={"X-Forwarded-Proto": "https"}, timeout=5)
            if response.status_code == 200 and response.json() == {"status": "ok", "database": "ok"}:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or a worker still loading the app
        time.sleep(POLL_PAUSE)  # polling, bounded by HEALTH_ATTEMPTS
    raise AssertionError(f"{service.name} never answered /healthz:\n{service.log_text()[-3000:]}")


def prepare_database(env: dict[str, str]) -> None:
    """What an operator does first: apply the migrations, then create the dermatologists' accounts."""
    run_flask(env, ("db", "upgrade"))
    engine = create_engine(env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            missing = compare_metadata(MigrationContext.configure(connection), db.metadata)
    finally:
        engine.dispose()
    # Said plainly here, rather than as an unknown column in some process's log later.
    assert not missing, f"the models changed without a migration, so production would break: {missing}"
    accounts = [
        ("users", "create", "--email", email, "--name", name, "--role", "dermatologist", "--password", PASSWORD)
        for email, name in DERMATOLOGISTS
    ]
    run_flask(env, *accounts)


def start_processes(env: dict[str, str], folder: Path, services: list[Service]) -> list[str]:
    """Two gunicorn servers with two workers each, and two `flask worker`s; returns the servers' URLs.

    Every process is appended to `services` as soon as it starts, so the caller can stop it whatever happens.
    """
    servers = []
    for n in (1, 2):
        port = free_port()
        gunicorn = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
        services.append(start(f"gunicorn-{n}", [*gunicorn, "wsgi:app"], env, folder))
        servers.append(f"http://127.0.0.1:{port}")
    for n in (1, 2):
        services.append(start(f"worker-{n}", [str(BIN / "flask"), "worker", "--interval", "0.5"], env, folder))
    for service, url in zip(services[:2], servers, strict=True):
        wait_until_healthy(service, url)
    return servers


UNDER_FAKETIME = "faketime" in os.environ.get("LD_PRELOAD", "")


@pytest.fixture(scope="module")
def clinic(tmp_path_factory) -> Iterator[Clinic]:
    if UNDER_FAKETIME:
        # gunicorn sleeps with clock_nanosleep, which libfaketime 0.9.10 refuses (EINVAL), so these
        # servers would run on the real clock while this browser runs a year ahead: every session
        # cookie would look expired. The clinic's own clock rules are covered by the rest of the pass.
        pytest.skip("the gunicorn cluster cannot share a clock moved by libfaketime")
    folder = tmp_path_factory.mktemp("scale-out")
    upload_dir = folder / "uploads"
    mail = MailServer().start()
    started = time.monotonic()
    try:
        with dedicated_database(folder) as database_url:
            services: list[Service] = []
            inspector = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url, "UPLOAD_DIR": str(upload_dir)})
            try:  # every process stops before the database is dropped
                env = environment(database_url, upload_dir, mail)
                prepare_database(env)
                servers = start_processes(env, folder, services)
                clinic = Clinic(database_url, upload_dir, servers, services[:2], services[2:], mail, inspector)
                clinic.timings["start"] = time.monotonic() - started
                yield clinic
                print_summary(clinic, time.monotonic() - started)
                for service in clinic.web:
                    service.ensure_running()  # no web process died along the way
            finally:
                for service in services:
                    service.stop()
                with inspector.app_context():
                    db.engine.dispose()
    finally:
        mail.stop()


def print_summary(clinic: Clinic, total: float) -> None:
    kind = "PostgreSQL" if ON_POSTGRES else "SQLite file"
    limits = "Redis" if REDIS else "memory://"
    lines = [f"scale-out on {kind}, rate limits in {limits}: 2 gunicorn x 2 workers + 2 flask workers"]
    lines += [f"  {name}: {value}" for name, value in clinic.notes.items()]
    lines.append(f"  processes up in {clinic.timings.get('start', 0):.1f} s; whole module {total:.1f} s")
    print("\n" + "\n".join(lines))


# --- What clients do --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    number: int
    email: str
    reference: str
    photos: tuple[str, ...]  # sha256 of each JPEG sent (the stored re-encode differs; the count must not)


def phone_photo(number: int, index: int) -> bytes:
    """A real JPEG, different for every submission and photo."""
    image = Image.new("RGB", (320, 240), (120 + number % 120, 60 + index * 40, 90))
    image.paste((200, 40 + number % 200, 40), (20, 20, 120 + index * 30, 110))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def send_consultation(browser: Browser, number: int) -> Sent:
    """Open the form, fill it in, attach one or two photos and send it, as a patient does."""
    page = browser.get("/consultation/new")
    assert page.status_code == 200, page.status_code
    email = f"patient{number}.r{RUN}@example.com"
    photos = [phone_photo(number, index) for index in range(1 + number % 2)]
    data = intake_answers(email=email, full_name=f"Scale Patient {number}")
    data.update(csrf_token=hidden(page.text, "csrf_token"), submission_key=hidden(page.text, "submission_key"))
    files = [("photos", (f"IMG_{number}_{n}.jpg", content, "image/jpeg")) for n, content in enumerate(photos)]
    response = browser.post("/consultation/new", data, files=files)
    assert response.status_code == 200 and response.url.endswith("/consultation/received"), (
        response.status_code,
        response.url,
        response.text[-500:],
    )
    reference = re.search(r'id="reference">(DRM-[A-Z0-9]+)<', response.text)
    assert reference, "the confirmation shows no reference"
    return Sent(number, email, reference.group(1), tuple(hashlib.sha256(p).hexdigest() for p in photos))


def sign_in(browser: Browser, email: str, server: int) -> str:
    """Sign in through /login; returns the session's CSRF token (from the queue page it lands on)."""
    page = browser.get("/login", server=server)
    form = {"csrf_token": hidden(page.text, "csrf_token"), "email": email, "password": PASSWORD, "next": ""}
    response = browser.post("/login", form, server=server)
    assert response.status_code == 200 and response.url.endswith("/queue/"), (response.status_code, response.url)
    return hidden(response.text, "csrf_token")


def claim(browser: Browser, reference: str, server: int, token: str, together: threading.Barrier) -> str:
    """Press "Claim" at the same moment as the colleague; the page it returns to says who got it."""
    together.wait(timeout=30)
    response = browser.post(f"/queue/{reference}/claim", {"csrf_token": token}, server=server)
    assert response.status_code == 200, (response.status_code, response.text[-500:])
    if "You have claimed this request." in response.text:
        return "won"
    if "claimed this request first" in response.text:
        return "lost"
    raise AssertionError(f"neither won nor lost {reference}: {response.text[-800:]}")


@pytest.fixture(scope="module")
def submitted(clinic: Clinic) -> list[Sent]:
    """SUBMISSIONS requests sent by CLIENTS patients at once, spread over both servers."""

    def client(slot: int) -> list[Sent]:
        browser = clinic.browser(slot)
        return [send_consultation(browser, number) for number in range(slot, SUBMISSIONS, CLIENTS)]

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        sent = [item for batch in pool.map(client, range(CLIENTS)) for item in batch]
    seconds = time.monotonic() - started
    clinic.timings["submissions"] = seconds
    photos = sum(len(s.photos) for s in sent)
    clinic.notes["intake"] = (
        f"{len(sent)} requests with {photos} photos from {CLIENTS} concurrent clients in {seconds:.1f} s"
    )
    return sorted(sent, key=lambda s: s.number)


# --- The tests ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_concurrent_submission_is_stored_once_with_its_photos(clinic: Clinic, submitted: list[Sent]):
    assert len(submitted) == SUBMISSIONS
    assert len({s.reference for s in submitted}) == SUBMISSIONS, "two patients were shown the same reference"
    with clinic.inspector.app_context():
        requests_by_email = {c.patient_email: c for c in db.session.execute(select(ConsultationRequest)).scalars()}
        assert len(requests_by_email) == SUBMISSIONS, "a request is missing or was stored twice"
        photo_rows = db.session.execute(select(Photo)).scalars().all()
        for sent in submitted:
            stored = requests_by_email[sent.email]
            assert stored.reference == sent.reference
            assert stored.status == "submitted" and stored.due_at is not None
            assert len(stored.photos) == len(sent.photos)
        for photo in photo_rows:
            full = clinic.upload_dir / photo.storage_key
            assert full.is_file() and (clinic.upload_dir / photo.thumbnail_key).is_file()
            assert hashlib.sha256(full.read_bytes()).hexdigest() == photo.sha256
    expected_photos = sum(len(s.photos) for s in submitted)
    assert len(photo_rows) == expected_photos
    files = [p.name for p in clinic.upload_dir.iterdir() if p.is_file()]
    assert len(files) == 2 * expected_photos, "photo files without rows (or rows without files)"
    pending = clinic.upload_dir / "pending"
    assert not pending.exists() or not any(pending.iterdir()), "photos of sent forms left in the pending area"


@pytest.mark.slow
def test_two_workers_send_every_email_exactly_once(clinic: Clinic, submitted: list[Sent]):
    started = time.monotonic()
    with clinic.inspector.app_context():
        for _ in range(OUTBOX_ATTEMPTS):
            for worker in clinic.workers:
                worker.ensure_running()
            db.session.rollback()  # a fresh snapshot each time
            statuses = dict(
                db.session.execute(select(OutboundEmail.status, func.count()).group_by(OutboundEmail.status)).all()
            )
            if set(statuses) == {SENT}:
                break
            time.sleep(POLL_PAUSE)  # polling, bounded by OUTBOX_ATTEMPTS
        else:
            raise AssertionError(f"the outbox did not empty: {statuses}")
        rows = db.session.execute(select(OutboundEmail.recipient, OutboundEmail.template, OutboundEmail.context)).all()
        db.session.rollback()
    seconds = time.monotonic() - started
    # Stop the workers (each finishes its round) so that no send can still be on its way when counting.
    assert clinic.stop_workers() == [0, 0]

    expected = Counter((recipient, template, context["reference"]) for recipient, template, context in rows)
    received = Counter(received_key(recipient, message) for recipient, message in clinic.mail.received)
    duplicates = {key: count for key, count in received.items() if count > 1}
    assert not duplicates, f"emails received more than once: {list(duplicates.items())[:5]}"
    assert received == expected
    # Each patient: exactly one confirmation. The team: one new-request alert per request each.
    for sent in submitted:
        assert received[(sent.email, "request_received", sent.reference)] == 1
    team = [DUTY_EMAIL, *(email for email, _ in DERMATOLOGISTS)]
    assert len(rows) == SUBMISSIONS * (1 + len(team))

    sent_by = [sum(int(n) for n in re.findall(r"; sent (\d+),", w.log_text())) for w in clinic.workers]
    assert sum(sent_by) == len(rows)
    assert all(sent_by), f"one worker sent everything {sent_by}: the test did not exercise two workers"
    clinic.notes["mail"] = (
        f"{len(rows)} emails, each received once, delivered by two workers ({sent_by[0]} + {sent_by[1]}) "
        f"within {seconds:.1f} s of the last submission"
    )


SUBJECTS = {
    "We have received your request": "request_received",
    "New consultation request": "staff_new_request",
}


def received_key(recipient: str, message) -> tuple[str, str, str]:
    """(recipient, template, reference) for a received email, read from its subject."""
    subject = header(message, "Subject")
    template = next((name for prefix, name in SUBJECTS.items() if subject.startswith(prefix)), subject)
    reference = re.search(r"DRM-[A-Z0-9]+", subject)
    return recipient, template, reference.group(0) if reference else ""


@pytest.mark.slow
def test_two_dermatologists_on_different_servers_claim_the_same_requests_once(clinic: Clinic, submitted: list[Sent]):
    contested = [s.reference for s in submitted[:CONTESTED]]
    browsers = [clinic.browser(1000 + n) for n in range(len(DERMATOLOGISTS))]
    # Each signs in on a different server.
    tokens = [
        sign_in(b, email, server=n) for n, (b, (email, _)) in enumerate(zip(browsers, DERMATOLOGISTS, strict=True))
    ]
    together = threading.Barrier(len(browsers))

    def work_the_queue(n: int) -> list[str]:
        # For every request the two claims go to different servers at the same moment.
        return [claim(browsers[n], ref, (i + n) % 2, tokens[n], together) for i, ref in enumerate(contested)]

    started = time.monotonic()
    with ThreadPoolExecutor(len(browsers)) as pool:
        outcomes = list(pool.map(work_the_queue, range(len(browsers))))
    seconds = time.monotonic() - started

    for results in outcomes:
        assert len(results) == CONTESTED and results.count("won") + results.count("lost") == CONTESTED
    for index in range(CONTESTED):
        assert sorted(results[index] for results in outcomes) == ["lost", "won"], contested[index]
    with clinic.inspector.app_context():
        users = {u.email: u.id for u in db.session.execute(select(User)).scalars()}
        holders = dict(
            db.session.execute(
                select(ConsultationRequest.reference, ConsultationRequest.claimed_by_id).where(
                    ConsultationRequest.reference.in_(contested)
                )
            ).all()
        )
        claims = Counter(
            db.session.execute(
                select(ConsultationRequest.reference)
                .join(AuditEvent, AuditEvent.request_id == ConsultationRequest.id)
                .where(AuditEvent.action == "claimed")
            ).scalars()
        )
    assert claims == Counter(dict.fromkeys(contested, 1)), "a request was claimed more than once (or never)"
    for (email, _), results in zip(DERMATOLOGISTS, outcomes, strict=True):
        won = {ref for ref, result in zip(contested, results, strict=True) if result == "won"}
        assert won == {ref for ref, holder in holders.items() if holder == users[email]}
    wins = [results.count("won") for results in outcomes]
    clinic.notes["claims"] = (
        f"{CONTESTED} requests claimed by two dermatologists at once in {seconds:.1f} s: "
        f"won {wins[0]} / lost {CONTESTED - wins[0]} and won {wins[1]} / lost {CONTESTED - wins[1]}"
    )


@pytest.mark.slow
@pytest.mark.skipif(not REDIS, reason="needs Redis on 127.0.0.1:6379 (rate limits shared between servers)")
def test_rate_limit_counters_are_shared_by_every_web_process(clinic: Clinic):
    """With memory:// each of the four gunicorn workers would count for itself; Redis counts for all."""
    browser = clinic.browser(2000)
    statuses = []
    for attempt in range(RESEND_LIMIT + 1):
        page = browser.get("/consultation/link", server=attempt)
        form = {"csrf_token": hidden(page.text, "csrf_token"), "email": f"nobody.r{RUN}@example.com"}
        response = browser.post("/consultation/link", form, server=attempt, allow_redirects=False)
        statuses.append(response.status_code)
    assert statuses == [303] * RESEND_LIMIT + [429]


@pytest.mark.slow
def test_logs_of_every_process_carry_no_private_link_or_patient_details(clinic: Clinic, submitted: list[Sent]):
    # The first patient opens the link from their confirmation email (the token must not reach a log).
    first = submitted[0]
    confirmation = next(m for r, m in clinic.mail.received if r == first.email)
    link = re.search(rf"https://{re.escape(PUBLIC_HOST)}(/c/[A-Za-z0-9_-]+)", body_text(confirmation))
    assert link, "the confirmation has no private link"
    page = clinic.browser(3000).get(link.group(1))
    assert page.status_code == 200 and first.reference in page.text
    token = link.group(1).removeprefix("/c/")

    # gunicorn writes the access line just after the response, so give it a moment (bounded).
    for _ in range(HEALTH_ATTEMPTS):
        logs = "\n".join(service.log_text() for service in [*clinic.web, *clinic.workers])
        if "/c/[redacted]" in logs:
            break
        time.sleep(POLL_PAUSE)  # polling, bounded by HEALTH_ATTEMPTS
    else:
        raise AssertionError("the private page visit is not in the access log")
    assert token not in logs
    for sent in submitted:
        assert sent.email not in logs and f"Scale Patient {sent.number}" not in logs
    assert "Traceback" not in logs, logs[logs.find("Traceback") :][:2000]


# --- Timestamps on both databases -----------------------------------------------------------------


@pytest.mark.parametrize("kind", DATABASES)
def test_timestamps_come_back_timezone_aware_in_utc(kind, tmp_path):
    # 04:30:15 in Vilnius on the morning summer time starts (UTC+3) is 01:30:15 UTC.
    moment = datetime(2026, 3, 29, 4, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Vilnius"))
    in_utc = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
    with shared_app(kind, tmp_path) as app:
        consultation, _ = make_consultation(created_at=moment)
        request_id = consultation.id
        db.session.remove()

        with db.engine.connect() as connection:
            if db.engine.dialect.name == "postgresql":
                # Whatever zone a session runs in, the stored moment is the same (timestamptz).
                connection.execute(text("SET TIME ZONE 'America/New_York'"))
                seen_in_new_york = connection.execute(
                    text("SELECT created_at FROM consultation_requests WHERE id = :id"), {"id": request_id}
                ).scalar()
                assert seen_in_new_york == in_utc and seen_in_new_york.utcoffset() == timedelta(hours=-4)
                kind_of_column = connection.execute(
                    text(
                        "SELECT data_type FROM information_schema.columns "
                        "WHERE table_name = 'consultation_requests' AND column_name = 'created_at'"
                    )
                ).scalar()
                assert kind_of_column == "timestamp with time zone"
            else:
                raw = connection.execute(
                    text("SELECT created_at FROM consultation_requests WHERE id = :id"), {"id": request_id}
                ).scalar()
                assert str(raw).startswith("2026-03-29 01:30:15.123456"), raw  # kept in UTC, not local time

        stored = db.session.get(ConsultationRequest, request_id)
        for value in (stored.created_at, stored.consent_health_data_at, stored.due_at):
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
        assert stored.created_at == in_utc == moment
        assert stored.due_at == in_utc + timedelta(hours=app.config["RESPONSE_TARGET_HOURS"])
        # Comparisons in queries work with aware values on both.
        found = db.session.execute(
            select(ConsultationRequest.id).where(
                ConsultationRequest.created_at > in_utc - timedelta(seconds=1),
                ConsultationRequest.created_at <= moment,
            )
        ).scalars()
        assert list(found) == [request_id]


# --- Photo storage behind its interface ----------------------------------------------------------


class MemoryStorage:
    """Photo storage that is not a folder (as object storage would be): a dict, with the same promises."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def new_key(self, suffix: str = ".jpg") -> str:
        return storage_new_key(suffix)

    def save(self, key: str, data: bytes) -> None:
        with self.lock:
            self.objects[key] = bytes(data)

    def open(self, key: str):
        return io.BytesIO(self.read(key))

    def read(self, key: str) -> bytes:
        with self.lock:
            if key not in self.objects:
                raise StorageError(f"no such photo: {key}")
            return self.objects[key]

    def exists(self, key: str) -> bool:
        with self.lock:
            return key in self.objects

    def delete(self, key: str) -> None:
        with self.lock:
            self.objects.pop(key, None)

    def keys(self) -> list[str]:
        with self.lock:
            return sorted(self.objects)


def memory_storage(config) -> MemoryStorage:
    """A STORAGE_BACKEND factory: STORAGE_BACKEND="tests.test_scale_out:memory_storage"."""
    return MemoryStorage()


def test_photos_go_to_the_storage_backend_the_settings_name(tmp_path):
    app = build_app(tmp_path, STORAGE_BACKEND="tests.test_scale_out:memory_storage")
    reset_database(app)
    try:
        with app.app_context():
            storage = photo_storage()
            assert isinstance(storage, MemoryStorage) and photo_storage() is storage  # built once per app
            dermatologist = make_user("dermatologist")
            patient, staff = app.test_client(), app.test_client()
            sent = submit_request(patient, photos=[("rash.jpg", phone_photo(1, 0)), ("close.jpg", phone_photo(1, 1))])
            assert sent.status_code == 303
            consultation = db.session.execute(select(ConsultationRequest)).scalar_one()
            keys = {key for p in consultation.photos for key in (p.storage_key, p.thumbnail_key)}
            assert len(keys) == 4 and set(storage.keys()) == keys
            assert not [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()], "a photo went to UPLOAD_DIR"

            login_as(staff, dermatologist)
            photo = consultation.photos[0]
            shown = staff.get(f"/queue/{consultation.reference}/photos/{photo.storage_key}")
            assert shown.status_code == 200 and shown.data == storage.read(photo.storage_key)
            assert hashlib.sha256(shown.data).hexdigest() == photo.sha256
            db.session.remove()
    finally:
        empty_database(app)


def test_an_unknown_storage_backend_is_a_clear_error(tmp_path):
    allowed = r"use 'local' or 'package\.module:factory'"
    with pytest.raises(ConfigError, match=f"STORAGE_BACKEND='s3' is not allowed: {allowed}"):
        build_app(tmp_path, STORAGE_BACKEND="s3")
