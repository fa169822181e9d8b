"""The condition page's server CPU per request, against a bare Flask "hello" app and nginx serving the same HTML.

Everything runs as deployed: `gunicorn -c gunicorn.conf.py` with nothing overridden but the port
(workers and threads as it computes them for this machine, preload_app, max_requests and its jitter,
the access log on and written to a file, as the journal would take it), the clinic with
PROXY_FIX_HOPS=1 and PUBLIC_PAGES_DIR as in production (deploy/env.example); and nginx with the
shipped site (deploy/nginx-skin-clinic.conf on loopback ports without TLS, bench/nginx.py) in front
of that same gunicorn. The bare Flask app (bench/hello.py) runs under the same gunicorn.conf.py.

wrk (one thread, 16 keep-alive connections) drives each target in turn on loopback: a warm-up, then
ROUNDS rounds of RUN_SECONDS per target, the targets alternating within each round. Around each run
the CPU time of the server's processes is read from /proc (bench/processes.py): user + system of the
master and every worker, workers reaped during the run included (the master's cutime/cstime), and for
a page through nginx, nginx's processes and gunicorn's together. Each figure is the median over the
rounds of (CPU per request of the yardstick) ÷ (CPU per request of the page), so above 1 means the
page costs less CPU than the yardstick; throughput (requests per second) is in the detail, with how
many workers gunicorn started during the measured runs (recycled by max_requests).

"With compression" sends `Accept-Encoding: gzip, br` as browsers do (gunicorn answers with its cached
brotli copy; through the site nginx sends the gzip copy the app published, and gzips the static
file on every request, as the site's `gzip on` says); "plain" sends none. wrk sends no cookie, like
a first-time reader or a search engine: gunicorn answers from each worker's in-memory copy of the
whole response (app/conditions/cache.py), and nginx sends the page the app published in
PUBLIC_PAGES_DIR (app/published.py) as a file.
"""

from __future__ import annotations

import shutil
import statistics
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import nginx
from bench.common import Figure, NotRun, Workspace, not_run, ratio_figure
from bench.processes import tree_cpu
from bench.servers import Gunicorn, shipped_settings, wrk

CONDITION_PATH = "/conditions/psoriasis"
STATIC_PATH = "/static/bench/psoriasis.html"
WARM_UP_SECONDS = 3
RUN_SECONDS = 6
ROUNDS = 3
BROWSER = {"Accept-Encoding": "gzip, br"}
HELLO_GOAL = "≥ 1.0"
NGINX_GOAL = "≥ 0.8"
GOAL = HELLO_GOAL
NAMES = {
    "hello-browser": "Condition page ÷ bare Flask hello, requests per CPU-second (Accept-Encoding: gzip, br)",
    "hello-plain": "Condition page ÷ bare Flask hello, requests per CPU-second (no Accept-Encoding)",
    "nginx-browser": "Condition page through the shipped nginx site ÷ the same HTML as a static file there, "
    "requests per CPU-second (gzip, br)",
    "nginx-plain": "Condition page through the shipped nginx site ÷ the same HTML as a static file there, "
    "requests per CPU-second (plain)",
    "direct": "Condition page straight from gunicorn ÷ the static file through nginx, requests per CPU-second",
}
HEADLINE = NAMES["hello-browser"]


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str]
    cpu: Callable[[], float]  # CPU seconds so far of every process that serves it


@dataclass
class Sample:
    requests: int
    seconds: float
    cpu: float

    @property
    def cpu_per_request(self) -> float:
        return self.cpu / self.requests


def measure(target: Target, seconds: float) -> Sample:
    before = target.cpu()
    load = wrk(target.url, seconds, target.headers)
    used = target.cpu() - before
    if load.failures:
        raise RuntimeError(f"{load.failures} answers from {target.url} were not 2xx/3xx during a measured run")
    return Sample(load.requests, load.seconds, used)


def fetch(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return response.status, response.headers.get("Content-Encoding", "none"), response.read()


def _targets(hello: Gunicorn, clinic: Gunicorn, site: nginx.Nginx | None) -> dict[str, Target]:
    def cpu_of(*masters: int) -> Callable[[], float]:
        return lambda: sum(tree_cpu(master).seconds for master in masters)

    page = clinic.url + CONDITION_PATH
    targets = {
        "hello-browser": Target(hello.url + "/", BROWSER, cpu_of(hello.pid)),
        "hello-plain": Target(hello.url + "/", {}, cpu_of(hello.pid)),
        "page-browser": Target(page, BROWSER, cpu_of(clinic.pid)),
        "page-plain": Target(page, {}, cpu_of(clinic.pid)),
    }
    if site is not None:
        host = {"Host": nginx.HOST}
        static, through = site.url + STATIC_PATH, site.url + CONDITION_PATH
        targets |= {
            "static-browser": Target(static, {**host, **BROWSER}, cpu_of(site.pid)),
            "static-plain": Target(static, host, cpu_of(site.pid)),
            "through-browser": Target(through, {**host, **BROWSER}, cpu_of(site.pid, clinic.pid)),
            "through-plain": Target(through, host, cpu_of(site.pid, clinic.pid)),
        }
    return targets


def _static_copy(clinic: Gunicorn, folder: Path) -> int:
    """The page's HTML, as the app sends it uncompressed, saved where nginx serves /static/bench/."""
    status, _, html = fetch(clinic.url + CONDITION_PATH, {})
    if status != 200:
        raise NotRun(f"{CONDITION_PATH} answered {status}")
    (folder / "bench").mkdir(parents=True, exist_ok=True)
    (folder / "bench" / Path(STATIC_PATH).name).write_bytes(html)
    return len(html)


def _run_rounds(targets: dict[str, Target], clinic: Gunicorn) -> tuple[dict[str, list[Sample]], int]:
    for target in targets.values():
        wrk(target.url, WARM_UP_SECONDS, target.headers)
    booted = clinic.booted()
    samples: dict[str, list[Sample]] = {name: [] for name in targets}
    for _ in range(ROUNDS):
        for name, target in targets.items():
            samples[name].append(measure(target, RUN_SECONDS))
    return samples, clinic.booted() - booted


def _ratio(samples: dict[str, list[Sample]], yardstick: str, page: str) -> float:
    """Median over the rounds of yardstick CPU per request ÷ page CPU per request."""
    return statistics.median(
        y.cpu_per_request / p.cpu_per_request for y, p in zip(samples[yardstick], samples[page], strict=True)
    )


def _summary(samples: list[Sample]) -> str:
    requests = sum(s.requests for s in samples)
    rate = requests / sum(s.seconds for s in samples)
    return f"{sum(s.cpu for s in samples) / requests * 1e6:.0f} µs CPU per request, {rate:.0f} req/s"


def run(root: Path) -> list[Figure]:
    if shutil.which("wrk") is None:
        reason = "wrk is not installed (scripts/ensure-wrk.sh installs Debian's wrk)"
        return [not_run(name, HELLO_GOAL if name.startswith("hello") else NGINX_GOAL, reason) for name in NAMES]
    workspace = Workspace(root, "throughput")
    workspace.create_schema()
    settings = shipped_settings()
    static = workspace.path / "static"
    pages = workspace.path / "pages"  # PUBLIC_PAGES_DIR, as deploy/env.example sets it
    static_encoding = through_encoding = "none"
    with (
        Gunicorn("bench.hello:app", workspace) as hello,
        Gunicorn("wsgi:app", workspace, env={**nginx.APP_ENV, "PUBLIC_PAGES_DIR": str(pages)}) as clinic,
    ):
        size = _static_copy(clinic, static)
        _, encoding, compressed = fetch(clinic.url + CONDITION_PATH, BROWSER)
        if nginx.binary() is None:
            samples, recycled = _run_rounds(_targets(hello, clinic, None), clinic)
        else:
            with nginx.Nginx(workspace.path / "nginx", clinic.port, static, pages) as site:
                _, static_encoding, _ = fetch(site.url + STATIC_PATH, {"Host": nginx.HOST, **BROWSER})
                _, through_encoding, _ = fetch(site.url + CONDITION_PATH, {"Host": nginx.HOST, **BROWSER})
                samples, recycled = _run_rounds(_targets(hello, clinic, site), clinic)
    setup = (
        f"gunicorn {settings['workers']} workers × {settings['threads']} threads, max_requests "
        f"{settings['max_requests']} + up to {settings['max_requests_jitter']}, {recycled} workers started during "
        f"the measured runs; wrk -t1 -c16, {ROUNDS} rounds of {RUN_SECONDS} s per target"
    )
    pairs = {
        "hello-browser": ("hello-browser", "page-browser", HELLO_GOAL),
        "hello-plain": ("hello-plain", "page-plain", HELLO_GOAL),
        "nginx-browser": ("static-browser", "through-browser", NGINX_GOAL),
        "nginx-plain": ("static-plain", "through-plain", NGINX_GOAL),
        "direct": ("static-plain", "page-plain", "reported"),
    }
    figures = []
    for key, (yardstick, page, goal) in pairs.items():
        if yardstick not in samples:
            figures.append(not_run(NAMES[key], goal, "nginx is not installed (make bench installs Debian's nginx)"))
            continue
        ratio = _ratio(samples, yardstick, page)
        detail = f"page: {_summary(samples[page])}; yardstick: {_summary(samples[yardstick])}"
        if key == "hello-browser":
            detail += f"; page sent as {encoding}, {len(compressed) / 1024:.1f} KiB; {setup}"
        if key == "nginx-browser":
            detail += (
                f"; static file sent as {static_encoding} by nginx (the site's gzip on); the page straight from "
                f"gunicorn as {encoding}, through the site as {through_encoding} (the published gzip copy)"
            )
        if key == "nginx-plain":
            detail += f"; plain HTML, {size / 1024:.1f} KiB"
        if goal == "reported":
            figures.append(Figure(NAMES[key], f"{ratio:.2f}", goal, None, detail + "; no goal: shown for scale"))
        else:
            figures.append(ratio_figure(NAMES[key], ratio, 1.0, goal, detail))
    return figures
