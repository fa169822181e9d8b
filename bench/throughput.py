"""Condition page throughput against a bare Flask "hello" app, both under the same gunicorn settings.

Both apps run at once under gunicorn with gunicorn.conf.py (the production settings: workers and
threads as it computes them for this machine), with --max-requests 0 so that no worker restarts in
the middle of a run, and the access log to /dev/null. wrk (one thread, 16 keep-alive connections)
drives each in turn on loopback: a 2-second warm-up, then 5-second runs, alternating
hello / page with compression / page without, twice, and the two runs of each are averaged.

"With compression" sends `Accept-Encoding: gzip, br` as browsers do, so the page goes out
brotli-compressed; "without" sends no Accept-Encoding, so the page goes out as plain HTML.

wrk sends no cookies, like a first-time visitor or a search engine: after the first request each
worker process answers from its in-memory copy of the whole response (app/conditions/cache.py,
security headers and compressed body included), which is why the page can outrun a hello app
that still goes through Flask. A reader with a session cookie skips that copy but still gets the
rendered HTML and its compressed form from memory; signed-in staff get a freshly rendered page.
"""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from bench.common import PYTHON, ROOT, Figure, NotRun, Workspace, free_port, not_run, ratio_figure

CONDITION_PATH = "/conditions/psoriasis"
WARM_UP_SECONDS = 2
RUN_SECONDS = 5
ROUNDS = 2
CONNECTIONS = 16
BROWSER_ENCODING = "gzip, br"
GOAL = "≥ 0.5"
NAMES = (
    "Condition page throughput ÷ bare Flask hello (Accept-Encoding: gzip, br)",
    "Condition page throughput ÷ bare Flask hello (no Accept-Encoding)",
)
HEADLINE = NAMES[0]  # the row to show if the whole benchmark fails


def gunicorn_settings() -> tuple[int, int]:
    """Workers and threads exactly as gunicorn.conf.py computes them on this machine."""
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    return int(settings["workers"]), int(settings["threads"])


class Gunicorn:
    """A gunicorn server for one WSGI target on a free loopback port, stopped on exit."""

    def __init__(self, target: str, workspace: Workspace, workers: int, threads: int) -> None:
        self.target, self.workspace, self.workers, self.threads = target, workspace, workers, threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workspace.path / f"gunicorn-{target.replace(':', '-')}.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        command = [
            PYTHON, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "--threads", str(self.threads),
            "--max-requests", "0", "--access-logfile", "/dev/null", self.target,
        ]  # fmt: skip
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.workspace.env(), stdout=log, stderr=log)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.target} exited:\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)  # polling a starting server, not timing anything
        raise RuntimeError(f"gunicorn {self.target} did not answer within {timeout} s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def fetch(url: str, encoding: str | None) -> tuple[int, str, int]:
    """Status, Content-Encoding and body size of one GET."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": encoding} if encoding else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers.get("Content-Encoding", "none"), len(response.read())


def wrk(url: str, duration: int, encoding: str | None) -> tuple[float, int]:
    """Requests per second and how many answers were not 2xx/3xx (socket errors count as failures)."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "10s", url]
    if encoding:
        command[1:1] = ["-H", f"Accept-Encoding: {encoding}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 30).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if re.search(r"Socket errors: (.*)", output):
        raise RuntimeError(f"wrk saw socket errors on {url}:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), int(bad.group(1)) if bad else 0


def measured(url: str, encoding: str | None) -> float:
    """A measured run: every answer must be a success, or the figure would flatter a failing page."""
    rate, failures = wrk(url, RUN_SECONDS, encoding)
    if failures:
        raise RuntimeError(f"{failures} answers to {url} were not 2xx/3xx during a measured run")
    return rate


def _measure(hello: Gunicorn, clinic: Gunicorn) -> tuple[dict[str, float], dict[str, str]]:
    """Average requests per second for hello, the page compressed and the page plain; and what was served."""
    page = clinic.url + CONDITION_PATH
    targets = {"hello": (hello.url + "/", None), "compressed": (page, BROWSER_ENCODING), "plain": (page, None)}
    # Fresh workers may fail their first requests (see the detail); count those, do not time them.
    warm_up_failures = sum(wrk(url, WARM_UP_SECONDS, accept)[1] for url, accept in targets.values())
    status, encoding, compressed_size = fetch(page, BROWSER_ENCODING)
    plain_size = fetch(page, None)[2]
    if status != 200:
        raise NotRun(f"{CONDITION_PATH} answered {status}")
    runs: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(ROUNDS):
        for name, (url, accept) in targets.items():
            runs[name].append(measured(url, accept))
    served = {
        "compressed": f"page sent as {encoding}, {compressed_size / 1024:.1f} KiB",
        "plain": f"plain HTML, {plain_size / 1024:.1f} KiB",
    }
    if warm_up_failures:
        served["warm-up"] = (
            f"{warm_up_failures} answers during the warm-up were not 2xx: while a fresh worker loads the articles, "
            "its other thread answers 404 (app/conditions/content.py, Library._refresh)"
        )
    return {name: sum(rates) / ROUNDS for name, rates in runs.items()}, served


def run(root: Path) -> list[Figure]:
    if shutil.which("wrk") is None:
        reason = "wrk is not installed (scripts/ensure-wrk.sh installs Debian's wrk)"
        return [not_run(name, GOAL, reason) for name in NAMES]
    workspace = Workspace(root, "throughput")
    workspace.create_schema()
    workers, threads = gunicorn_settings()
    with (
        Gunicorn("bench.hello:app", workspace, workers, threads) as hello,
        Gunicorn("wsgi:app", workspace, workers, threads) as clinic,
    ):
        rates, served = _measure(hello, clinic)
    setup = f"gunicorn {workers} workers × {threads} threads, wrk -t1 -c{CONNECTIONS}, {ROUNDS}×{RUN_SECONDS} s each"
    setup = "; ".join([setup, served["warm-up"]]) if "warm-up" in served else setup
    figures = []
    for name, variant in zip(NAMES, ("compressed", "plain"), strict=True):
        detail = f"{rates[variant]:.0f} vs {rates['hello']:.0f} req/s; {served[variant]}"
        if variant == "compressed":
            detail += f"; {setup}"
        figures.append(ratio_figure(name, rates[variant], rates["hello"], GOAL, detail))
    return figures
