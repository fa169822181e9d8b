"""A national service's history on PostgreSQL: each staff page and job with 1,000,000 stored requests against 10,000.

Two PostgreSQL databases of their own (bench_national_10000 and bench_national_1000000 on the server
at BENCH_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres; never the
`test` database), each migrated with `flask db upgrade` and filled by bench/national.py with the
same `now`: the small one holds exactly the newest 10,000 requests of the large one (274 a day, so
36 days against ten years), with their photos' rows, threads, links, emails and audit trail. Loading
the large one is timed and reported; `--reuse` keeps an already loaded database between runs.

The real app (development settings, CSRF on) runs in-process on each database; a dermatologist and a
staff member sign in through the real /login form. Each measured thing gets a warm-up, then ROUNDS
rounds in which it runs CALLS times on each database, back to back, the order alternating; its figure
is the median of the rounds' ratios (1,000,000 ÷ 10,000), goal ≤ 1.5:

- the queue, every tab (open, unclaimed, mine, awaiting the patient, answered), each one GET;
- search by reference: a partial reference (a prefix search: the first five characters after "DRM-",
  which match the same one request in both databases, so both pages show the same rows; three would match
  about 33 requests in the large one and none in the small one) and a whole one (straight to the request);
- a request page (each view is audited, so it also writes a row);
- the staff dashboard, the whole page, and its sections on their own: the open requests and those
  needing attention, the rounds behind the figures, the outbox; and the weekly figures (the last 7
  days' rounds met and missed, median and 90th percentile time to first response);
- the retention purge, as the nightly run: on each database, night after night, the cutoff moves one
  day further into its oldest history, so every run finds a day's requests and removes those idle long
  enough, on both databases alike;
- the CSV export (/staff/export.csv) in a fresh process: its peak resident memory (VmHWM), goal ≤ 1.2×.

Every SQL statement the large database's runs send is timed; each one over 10 ms is shown with
EXPLAIN (ANALYZE, BUFFERS) in the benchmark's output (inside a transaction that is rolled back).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bench import national
from bench.common import PYTHON, ROOT, Figure, NotRun, Workspace, ratio_figure, sign_in

SMALL, LARGE = 10_000, 1_000_000
SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
WARM_UP = 2
ROUNDS = 7
CALLS = 3
NIGHTS = 3
GOAL = "≤ 1.5"
MEMORY_GOAL = "≤ 1.2"
SLOW_MS = 10
HEADLINE = "Queue (open tab), 1,000,000 ÷ 10,000 stored requests"
REUSE = False  # set by `python -m bench --reuse`


def database_url(size: int) -> str:
    return re.sub(r"/[^/]*$", f"/bench_national_{size}", SERVER)


def _server_available() -> bool:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(SERVER)
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        engine.dispose()
        return True
    except Exception:  # any failure to reach PostgreSQL means this benchmark cannot run here
        return False


def _recreate(size: int) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS bench_national_{size} WITH (FORCE)")
        connection.exec_driver_sql(f"CREATE DATABASE bench_national_{size}")
    engine.dispose()


def prepare(workspace: Workspace, size: int, now: datetime | None) -> tuple[datetime, float | None]:
    """Migrate and fill one database; returns the history's `now` and the load's seconds (None if reused)."""
    url = database_url(size)
    made = national.history(url)
    if REUSE and made is not None and made[1] == size and (now is None or made[0] == now):
        workspace.flask("db", "upgrade", env=workspace.env(DATABASE_URL=url))
        return made[0], None
    _recreate(size)
    workspace.flask("db", "upgrade", env=workspace.env(DATABASE_URL=url))
    result = national.load(url, size, now)
    return result["now"], result["seconds"]


@dataclass
class Traced:
    """SQL statements run on one engine while tracing is on, with their times."""

    on: bool = False
    statements: list[tuple[float, str, object]] = field(default_factory=list)

    def attach(self, engine) -> None:
        from sqlalchemy import event

        @event.listens_for(engine, "before_cursor_execute")
        def before(conn, cursor, statement, parameters, context, executemany):
            conn.info["bench_started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn, cursor, statement, parameters, context, executemany):
            if self.on and not executemany:
                took = (time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())) * 1000
                self.statements.append((took, statement, parameters))


class Site:
    """The app on one database, with a signed-in dermatologist and staff member."""

    def __init__(self, workspace: Workspace, size: int) -> None:
        from app.extensions import db

        self.size = size
        self.app = workspace.app(SQLALCHEMY_DATABASE_URI=database_url(size), RATELIMIT_ENABLED=False)
        self.clients = {}
        for role, email in national.SIGN_IN.items():
            client = self.app.test_client()
            sign_in(client, email, national.PASSWORD)
            self.clients[role] = client
        self.traced = Traced()
        with self.app.app_context():
            self.traced.attach(db.engine)
            self.reference = db.session.execute(
                db.text("SELECT reference FROM consultation_requests WHERE submission_key = 'national-0005000'")
            ).scalar_one()

    @contextmanager
    def context(self):
        with self.app.app_context():
            yield


def _get(site: Site, role: str, path: str, expect: int = 200) -> None:
    response = site.clients[role].get(path)
    if response.status_code != expect:
        raise RuntimeError(f"GET {path} answered {response.status_code} on the {site.size:,} database")


def _page(role: str, path: str, expect: int = 200) -> Callable[[Site], None]:
    return lambda site: _get(site, role, path.format(reference=site.reference), expect)


def _section(work: Callable[[], object]) -> Callable[[Site], None]:
    def run(site: Site) -> None:
        from app.extensions import db

        with site.context():
            work()
            db.session.rollback()

    return run


def _sections() -> dict[str, Callable[[Site], None]]:
    from app.runtime import policies
    from app.staff import dashboard
    from app.timeutil import utcnow

    def open_requests():
        return dashboard._open_requests(utcnow(), policies().response, dashboard._names())

    def rounds():
        return dashboard.load_rounds(utcnow() - timedelta(days=max(*dashboard.PERIODS, dashboard.CHART_DAYS) + 2))

    def weekly():
        now = utcnow()
        return dashboard.period_figures(dashboard.load_rounds(now - timedelta(days=9)), now, 7)

    return {
        "Staff dashboard: open requests and those needing attention": _section(open_requests),
        "Staff dashboard: the rounds behind the figures (last 32 days)": _section(rounds),
        "Staff dashboard: the outbox": _section(dashboard.outbox_overview),
        "Weekly figures (the last 7 days' rounds, medians, 90th percentile)": _section(weekly),
    }


def operations() -> dict[str, Callable[[Site], None]]:
    ops: dict[str, Callable[[Site], None]] = {
        f"Queue ({label} tab)": _page("dermatologist", f"/queue/?filter={name}")
        for name, label in (
            ("open", "open"), ("unclaimed", "unclaimed"), ("mine", "mine"), ("awaiting", "awaiting patient"),
            ("answered", "answered"),
        )
    }  # fmt: skip
    ops["Queue, next page of the answered tab"] = _page("dermatologist", "/queue/?filter=answered&page=2")
    ops["Search by a partial reference"] = lambda site: _get(site, "dermatologist", f"/queue/?q={site.reference[:9]}")
    ops["Search by a whole reference"] = _page("dermatologist", "/queue/?q={reference}", expect=302)
    ops["Request page (one view, audited)"] = _page("dermatologist", "/queue/{reference}")
    ops["Staff dashboard (/staff/, the whole page)"] = _page("staff", "/staff/")
    ops.update(_sections())
    return ops


def _time(site: Site, action: Callable[[Site], None]) -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        action(site)
    return (time.perf_counter() - started) / CALLS


def compare(sites: dict[int, Site], action: Callable[[Site], None]) -> tuple[float, dict[int, float]]:
    """The median of per-round ratios (large ÷ small) and each size's median seconds per call."""
    for site in sites.values():
        for _ in range(WARM_UP):
            action(site)
    samples: dict[int, list[float]] = {size: [] for size in sites}
    for number in range(ROUNDS):
        order = list(sites) if number % 2 == 0 else list(reversed(sites))
        for size in order:
            samples[size].append(_time(sites[size], action))
    ratios = [large / small for small, large in zip(samples[SMALL], samples[LARGE], strict=True)]
    return statistics.median(ratios), {size: statistics.median(values) for size, values in samples.items()}


def trace(site: Site, action: Callable[[Site], None]) -> list[tuple[float, str, object]]:
    """The statements one run of `action` sends, slowest first."""
    site.traced.statements.clear()
    site.traced.on = True
    try:
        action(site)
    finally:
        site.traced.on = False
    return sorted(site.traced.statements, key=lambda entry: -entry[0])


def explain(site: Site, statement: str, parameters: object) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement, in a transaction that is rolled back."""
    from app.extensions import db

    with site.context():
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            connection.rollback()
            connection.close()
    return plan


def _slow_statements(name: str, site: Site, action: Callable[[Site], None]) -> int:
    """Print EXPLAIN for every statement of one run over SLOW_MS on the large database; returns how many."""
    slow = [entry for entry in trace(site, action) if entry[0] > SLOW_MS]
    for took, statement, parameters in slow:
        print(
            f"\n   EXPLAIN ({name}, {took:.0f} ms at {site.size:,} requests):\n   {' '.join(statement.split())[:600]}"
        )
        print("   " + explain(site, statement, parameters).replace("\n", "\n   "))
    return len(slow)


# --- The nightly retention purge -------------------------------------------------------------------


def purge_night(site: Site, now: datetime, night: int) -> tuple[float, int]:
    """One nightly purge with the cutoff `night` + 2 days into the database's oldest history."""
    from app.consultations.retention import purge
    from app.extensions import db
    from app.storage import photo_storage

    with site.context():
        oldest = db.session.execute(db.text("SELECT MIN(created_at) FROM consultation_requests")).scalar_one()
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        db.session.rollback()
        cutoff = oldest + timedelta(days=2 + night)
        days = (now - cutoff) / timedelta(days=1)
        started = time.perf_counter()
        result = purge(now, days, photo_storage(), site.app.config["UPLOAD_DIR"])
        return time.perf_counter() - started, len(result.references)


def _purge_figure(sites: dict[int, Site], now: datetime) -> Figure:
    times: dict[int, list[float]] = {SMALL: [], LARGE: []}
    counts: dict[int, list[int]] = {SMALL: [], LARGE: []}
    for night in range(NIGHTS):
        order = [SMALL, LARGE] if night % 2 == 0 else [LARGE, SMALL]
        for size in order:
            took, purged = purge_night(sites[size], now, night)
            times[size].append(took)
            counts[size].append(purged)
    ratio = statistics.median(
        (large / max(nl, 1)) / (small / max(ns, 1))
        for small, large, ns, nl in zip(times[SMALL], times[LARGE], counts[SMALL], counts[LARGE], strict=True)
    )
    detail = (
        f"{NIGHTS} nights each; removed per night {counts[LARGE]} vs {counts[SMALL]} requests in "
        f"{', '.join(f'{t:.1f}' for t in times[LARGE])} s vs {', '.join(f'{t:.1f}' for t in times[SMALL])} s; "
        "the ratio is of the time per request removed (median of the nights)"
    )
    return ratio_figure("Retention purge, a night's run", ratio, 1.0, GOAL, detail)


# --- The CSV export's memory -------------------------------------------------------------------------


def export_memory(size: int) -> dict:
    result = subprocess.run(
        [PYTHON, "-m", "bench.export_memory", database_url(size)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"the export's memory could not be measured:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _export_figure() -> Figure:
    small, large = export_memory(SMALL), export_memory(LARGE)
    detail = (
        f"peak RSS {large['peak_kib'] / 1024:.0f} MiB vs {small['peak_kib'] / 1024:.0f} MiB; during the export "
        f"alone it rose {large['rise_kib'] / 1024:.1f} MiB vs {small['rise_kib'] / 1024:.1f} MiB; "
        f"{large['bytes']:,} vs {small['bytes']:,} bytes of CSV, {large['chunks']} vs {small['chunks']} chunks sent"
    )
    return ratio_figure(
        "CSV export (/staff/export.csv), peak memory, 1,000,000 ÷ 10,000", large["peak_kib"], small["peak_kib"],
        MEMORY_GOAL, detail,
    )  # fmt: skip


# --- The benchmark -------------------------------------------------------------------------------------


def run(root: Path) -> list[Figure]:
    if not _server_available():
        raise NotRun(f"no PostgreSQL at {SERVER} (set BENCH_POSTGRES_URL)")
    workspace = Workspace(root, "national")
    now, large_seconds = prepare(workspace, LARGE, None)
    _, small_seconds = prepare(workspace, SMALL, now)
    figures = []
    if large_seconds is not None:
        figures.append(
            Figure(
                f"Loading {LARGE:,} requests into PostgreSQL (bench/national.py, COPY)",
                f"{large_seconds / 60:.1f} min",
                detail=f"{SMALL:,} took {small_seconds or 0:.0f} s; rows, photos' rows, threads, links, emails and "
                "audit trail, indexes built after the load, then VACUUM ANALYZE",
            )
        )
    sites = {size: Site(workspace, size) for size in (SMALL, LARGE)}
    slow_total = 0
    for name, action in operations().items():
        ratio, times = compare(sites, action)
        slow = _slow_statements(name, sites[LARGE], action)
        slow_total += slow
        detail = f"{times[LARGE] * 1000:.1f} ms vs {times[SMALL] * 1000:.1f} ms (medians)"
        if slow:
            detail += f"; {slow} statement(s) over {SLOW_MS} ms at {LARGE:,}, EXPLAIN in the output"
        figures.append(ratio_figure(f"{name}, {LARGE:,} ÷ {SMALL:,} stored requests", ratio, 1.0, GOAL, detail))
    figures.append(_purge_figure(sites, now))
    figures.append(_export_figure())
    print(f"   {slow_total} statement(s) over {SLOW_MS} ms at {LARGE:,} requests (EXPLAIN above)")
    return figures
