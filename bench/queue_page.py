"""The queue page with 20,000 stored requests against the same page with 200, on SQLite.

Each size gets its own SQLite file, filled by bench/national.py (batched INSERTs on SQLite; the
loading time is reported). A dermatologist signs in through the real
/login form (CSRF token and all) on the real app with development settings; GET /queue/ is then
timed in-process with Flask's test client: a warm-up, then 12 rounds of 8 GETs on each database,
back to back, the order alternating. The figure is the median of the rounds' ratios (20,000 ÷ 200):
other work on the machine comes and goes in bursts, and a round's two halves share whatever burst
they fall in. The medians of the two sizes' times are in the detail.

The history arrives at a steady rate (274 a day), so both databases hold a similar handful of open
requests and the larger one holds over two months of answered and closed ones: the question is
whether the page gets slower as the history grows. The "answered" tab, whose rows do grow with the
history, is reported too. bench/scale.py asks the same of every tab at 1,000,000 on PostgreSQL.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench import national
from bench.common import Figure, NotRun, Workspace, median, not_run, ratio_figure, seconds, sign_in

SMALL, LARGE = 200, 20_000
WARM_UP = 10
ROUNDS = 12
PER_ROUND = 8
GOAL = "≤ 1.5"
PAGES = (
    ("Queue page (/queue/), 20,000 ÷ 200 stored requests", "/queue/"),
    ("Queue 'answered' tab, 20,000 ÷ 200 stored requests", "/queue/?filter=answered"),
)
HEADLINE = PAGES[0][0]


def _signed_in_client(workspace: Workspace):
    client = workspace.app().test_client()
    sign_in(client, national.SIGN_IN["dermatologist"], national.PASSWORD)
    return client


def _check(client, path: str) -> None:
    response = client.get(path)
    if response.status_code == 404:
        raise NotRun("the queue page is not built yet (GET /queue/ answered 404)")
    if response.status_code != 200 or "DRM-" not in response.get_data(as_text=True):
        raise RuntimeError(f"GET {path} answered {response.status_code} without requests on it")


def _time_pages(clients: dict[int, object], path: str) -> tuple[float, dict[int, float]]:
    """The median of per-round ratios (large ÷ small, measured back to back) and each size's median time."""
    for client in clients.values():
        _check(client, path)
        for _ in range(WARM_UP):
            client.get(path)
    samples: dict[int, list[float]] = {size: [] for size in clients}
    for round_number in range(ROUNDS):
        order = list(clients) if round_number % 2 == 0 else list(reversed(clients))
        for size in order:
            client = clients[size]
            samples[size].append(seconds(lambda c=client: [c.get(path) for _ in range(PER_ROUND)]) / PER_ROUND)
    ratios = [large / small for small, large in zip(samples[SMALL], samples[LARGE], strict=True)]
    return median(ratios), {size: median(values) for size, values in samples.items()}


def run(root: Path) -> list[Figure]:
    seed_seconds: dict[int, float] = {}
    clients = {}
    for size in (SMALL, LARGE):
        workspace = Workspace(root, f"queue-{size}")
        workspace.create_schema()
        started = time.perf_counter()
        national.load(workspace.database_url, size)
        seed_seconds[size] = time.perf_counter() - started
        clients[size] = _signed_in_client(workspace)
    figures = [
        Figure(
            f"Loading {LARGE:,} requests into an empty SQLite file (bench/national.py)",
            f"{seed_seconds[LARGE]:.1f} s",
            detail=f"{seed_seconds[SMALL]:.1f} s for {SMALL}, which includes argon2 hashing of the accounts' password "
            "once; rows, photos' rows, threads, links, emails and audit trail",
        )
    ]
    for name, path in PAGES:
        try:
            ratio, times = _time_pages(clients, path)
        except NotRun as reason:
            figures.append(not_run(name, GOAL, str(reason)))
            continue
        detail = (
            f"median of {ROUNDS} back-to-back rounds of {PER_ROUND} GETs each; medians {times[LARGE] * 1000:.1f} ms vs "
            f"{times[SMALL] * 1000:.1f} ms per GET"
        )
        figures.append(ratio_figure(name, ratio, 1.0, GOAL, detail))
    return figures
