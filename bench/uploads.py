"""Uploads under load: 8 patients sending the form with six 12-megapixel phone photos each, all at once.

The app runs as deployed: `gunicorn -c gunicorn.conf.py` (workers and threads as it computes them here)
behind the shipped nginx site (bench/nginx.py), which buffers each upload before gunicorn reads it;
without nginx installed, straight to gunicorn (the detail says which). Each of CLIENTS threads opens
the form (its own session cookie, CSRF token and submission key) and then, released together with
the others, posts it with six different phone photos (4000×3000, quality 92, EXIF orientation 6 and
a GPS position: bench/photos.py), about 25 MB; the time of each POST until its redirect to the
confirmation is reported. Every gunicorn worker's peak resident memory (VmHWM, since it started) is
read after the burst; goal: every worker at most 400 MiB.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import secrets
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench import nginx
from bench.common import Figure, Workspace, form_value
from bench.intake_form import FALLBACK_ANSWERS
from bench.processes import peak_rss_kib
from bench.servers import Gunicorn, shipped_settings

CLIENTS = 8
PHOTOS = 6
LIMIT_MIB = 400
GOAL = f"≤ {LIMIT_MIB} MiB"
NAME = f"Peak memory of the busiest gunicorn worker, {CLIENTS} concurrent submits of six 12 MP photos"
HEADLINE = NAME

try:
    from tests.factories import intake_answers
except ImportError:  # a checkout without the tests
    intake_answers = None


def multipart(fields: dict, files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser sends it; returns (body, content type)."""
    boundary = "----skinclinicbench" + secrets.token_hex(12)
    chunks: list[bytes] = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{item}\r\n'.encode())
    for filename, content in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; filename="{filename}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        )
        chunks += [head.encode(), content, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


class Patient(threading.Thread):
    """Opens the form, waits for the start, posts it; keeps the POST's time and outcome."""

    def __init__(self, url: str, host: str | None, photos: list[tuple[str, bytes]], start: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.url, self.host, self.photos, self.start_line = url, host, photos, start
        self.seconds: float | None = None
        self.error: str | None = None
        self.status: int | None = None
        self.text = ""  # the answer's page, when it was not a redirect

    def _open(self, opener, path: str, data: bytes | None = None, content_type: str | None = None):
        headers = {"Host": self.host} if self.host else {}
        if content_type:
            headers["Content-Type"] = content_type
        return opener.open(urllib.request.Request(self.url + path, data=data, headers=headers), timeout=300)

    def run(self) -> None:
        try:
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirects())
            html = self._open(opener, "/consultation/new").read().decode()
            fields = dict(intake_answers() if intake_answers else FALLBACK_ANSWERS)
            fields["submission_key"] = form_value(html, "submission_key")
            fields["csrf_token"] = form_value(html, "csrf_token")
            body, content_type = multipart(fields, self.photos)
            self.start_line.wait()
            started = time.perf_counter()
            try:
                response = self._open(opener, "/consultation/new", body, content_type)
                status, location = response.status, response.headers.get("Location", "")
            except urllib.error.HTTPError as answer:
                status, location = answer.code, answer.headers.get("Location", "")
                self.text = answer.read().decode(errors="replace")
            self.seconds = time.perf_counter() - started
            self.status = status
            if status not in (302, 303) or "/consultation/new" in location:
                self.error = f"answered {status} ({location or 'no redirect'})"
        except Exception as error:  # reported in the table rather than stopping the benchmark
            self.error = f"{type(error).__name__}: {error}"


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def phone_photos() -> list[tuple[str, bytes]]:
    from bench.photos import camera_jpeg, camera_photo

    image = camera_photo()
    return [(f"IMG_{2000 + n}.jpg", camera_jpeg(image, mark=n + 1)) for n in range(PHOTOS)]


def _burst(url: str, host: str | None, photos: list[tuple[str, bytes]]) -> list[Patient]:
    """Every patient opens the form, then all post at once; returns them when all have finished."""
    start = threading.Barrier(CLIENTS, timeout=120)
    patients = [Patient(url, host, photos, start) for _ in range(CLIENTS)]
    for patient in patients:
        patient.start()
    for patient in patients:
        patient.join(timeout=600)
    return patients


@dataclass
class Bursts:
    """What `burst_on_gunicorn` saw: the patients of each burst, every worker's peak RSS (KiB, since it
    started) after each burst, the workers' RSS at the start, and how the requests reached gunicorn."""

    patients: list[list[Patient]] = field(default_factory=list)
    peaks: list[dict[int, int]] = field(default_factory=list)
    baseline: dict[int, int] = field(default_factory=dict)
    replaced: set[int] = field(default_factory=set)
    route: str = ""
    cpu: list[float] = field(default_factory=list)  # CPU seconds the server (all its processes) used per burst


def burst_on_gunicorn(workspace: Workspace, *photo_sets: list[tuple[str, bytes]]) -> Bursts:
    """The shipped gunicorn (behind the shipped nginx site when nginx is installed), then one burst
    of CLIENTS concurrent submits per photo set, one after the other."""
    workspace.create_schema()
    found = Bursts()
    env = {"RATELIMIT_ENABLED": "false", **nginx.APP_ENV}
    with Gunicorn("wsgi:app", workspace, env=env) as server:
        expected = int(shipped_settings()["workers"])
        deadline = time.monotonic() + 60
        while len(server.workers()) < expected and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for gunicorn to fork every worker, not timing anything
        workers = server.workers()
        found.baseline = {pid: peak_rss_kib(pid) for pid in workers}
        with contextlib.ExitStack() as stack:
            url, host = server.url, None
            found.route = "straight to gunicorn (nginx is not installed)"
            if nginx.binary() is not None:
                folder = workspace.path
                site = stack.enter_context(nginx.Nginx(folder / "nginx", server.port, folder / "static"))
                url, host = site.url, nginx.HOST
                found.route = "through the shipped nginx site"
            for photos in photo_sets:
                used = server.cpu().seconds
                found.patients.append(_burst(url, host, photos))
                found.cpu.append(server.cpu().seconds - used)
                found.peaks.append({pid: peak_rss_kib(pid) for pid in server.workers()})
        found.replaced = set(workers) - set(found.peaks[-1])
    return found


def run(root: Path) -> list[Figure]:
    workspace = Workspace(root, "uploads")
    photos = phone_photos()
    posted = sum(len(content) for _, content in photos)
    found = burst_on_gunicorn(workspace, photos)
    patients, peaks, baseline, replaced, route = (
        found.patients[0],
        found.peaks[0],
        found.baseline,
        found.replaced,
        found.route,
    )
    failures = [p.error for p in patients if p.error]
    times = sorted(p.seconds for p in patients if p.seconds is not None)
    busiest = max(peaks.values()) / 1024
    detail = (
        f"{CLIENTS} POSTs of {posted / 1e6:.0f} MB each, {route}; each POST took "
        + ", ".join(f"{t:.1f}" for t in times)
        + " s; peak RSS per worker (MiB): "
        + ", ".join(f"{peaks[pid] / 1024:.0f} (at start {baseline.get(pid, 0) / 1024:.0f})" for pid in sorted(peaks))
    )
    if replaced:
        detail += f"; {len(replaced)} worker(s) were replaced during the burst"
    if failures:
        detail += f"; {len(failures)} failed: {failures[0]}"
    met = busiest <= LIMIT_MIB and not failures and not replaced
    return [
        Figure(NAME, f"{busiest:.0f} MiB", GOAL, met, detail),
        Figure(
            f"Slowest of {CLIENTS} concurrent submits of six 12 MP photos",
            f"{times[-1]:.1f} s" if times else "none finished",
            detail="the time of every POST is in the row above",
        ),
    ]
