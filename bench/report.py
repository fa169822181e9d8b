"""The results table, printed and written into docs/performance.md with how each figure was measured."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

from bench.common import ROOT, Figure

DOC = ROOT / "docs" / "performance.md"

# Why a goal can be missed, shown under the table only for goals missed in this run.
WHY_MISSED = {
    "Condition page ÷ bare Flask hello": (
        "Both apps answer through the same gunicorn, and gunicorn's own work per request (parsing, the gthread "
        "worker's queues and threads, the access log line) is most of the CPU either way: measured in-process, "
        "the page costs the app about 5 µs (a copy of the whole response from memory, app/conditions/cache.py) "
        "against the hello app's 55 µs through Flask. What is left is writing 12.5 KiB (4.6 KiB compressed) and a "
        "dozen security headers instead of 13 bytes; on a machine busy with other work, rounds can swing either "
        "way by more than that difference, so compare the µs per request in the detail."
    ),
    "Condition page through the shipped nginx site": (
        "Through the site, nginx sends the page the app published in PUBLIC_PAGES_DIR as a file, as it sends the "
        "static copy, but it also matches the request against the site's map (method, query, cookie and "
        "Accept-Language) and adds the app's security headers itself. If the published file is missing, nginx "
        "answers from its micro-cache instead, which costs about 1.3 times a static file (a shared-memory lookup, "
        "a read of the stored headers and their parsing): check that the app's log shows it published the pages. "
        "On a machine busy with other work the few µs between the two can swing either way, so compare the µs per "
        "request in the detail."
    ),
    "Condition page straight from gunicorn": "",
    "Photo pipeline": (
        "A plain decode only decodes. The pipeline decodes the same 12 MP, turns it upright (EXIF orientation 6), "
        "converts the colours, resizes it to PHOTO_MAX_EDGE with LANCZOS, copies the pixels to leave the metadata "
        "behind and encodes an optimised progressive JPEG plus a thumbnail; the detail names the most expensive calls."
    ),
    "Queue": (
        "The queue should cost the same whatever the history holds: one query for a page of rows, one for the tab "
        "counts over the open requests. A ratio above the goal points at a query whose cost grows with the table: "
        "the benchmark's output shows EXPLAIN for every statement over 10 ms at 1,000,000 requests."
    ),
    "Search": "A search by reference is a look-up on an index; EXPLAIN in the output shows the plan it got.",
    "Request page": "A request page reads one request by its unique reference; EXPLAIN in the output shows why not.",
    "Staff dashboard": (
        "The dashboard reads the rounds of the last 32 days, the open requests and the outbox's pending, failed and "
        "lately sent emails, each through an index; EXPLAIN in the output shows the statement that grew."
    ),
    "Weekly figures": "The weekly figures read the rounds of the last 9 days through two indexes (due_at, stopped_at).",
    "Retention purge": (
        "Each erasure deletes a request's rows by request_id, and every table that refers to a deleted row needs an "
        "index on that column, or PostgreSQL scans it for each row deleted; EXPLAIN in the output shows which."
    ),
    "CSV export": "The export holds the dashboard's figures only, whose size does not depend on the history.",
    "Slowest of 8 concurrent submits of six worst-case": (
        "The goal is a wall-clock time for a fixed amount of decoding, so it depends on the CPU: the detail of the "
        "row above gives the CPU-seconds the burst used and what that comes to on two idle cores. When that alone "
        "is over 15 s, this machine's cores are too slow for the goal whatever the app does (the work per image is "
        "bounded by MAX_PIXELS_PER_REQUEST); otherwise look at the load average before the burst."
    ),
    "Peak memory of the busiest": (
        "Each worker has two threads, so it may hold two uploads at once: the photos spooled to disk by the form "
        "parser, and for each photo being cleaned its pixels (decoded at a reduced scale: app/photos.py)."
    ),
    "Email delivery": (
        "smtplib only sends bytes it already has. The worker claims each email in the database, renders two "
        "templates in the email's language, writes the MIME message and records the outcome, while a thread of its "
        "own hands the previous email to the server; the CPU this takes is what it waits for on a busy machine."
    ),
    "Bytes posted per 12 MP photo": (
        "static/js/photo-prep.js resizes a photo larger than PHOTO_MAX_EDGE and re-encodes it as JPEG at quality "
        "0.85 before the upload. A ratio above the goal means the browser sent the originals (the script did not "
        "run, createImageBitmap failed to decode them, or the re-encode came out larger and the original was kept): "
        "look at the sizes in the detail, and at PHOTO_MAX_EDGE, which sets how many pixels go up."
    ),
    "Submit latency": (
        "Submitting writes outbox rows in the request's own transaction and never talks to the mail server, so a "
        "ratio above the goal means either a request path that sends mail itself, or the worker holding the SQLite "
        "write lock while it waits for the server, or plain noise: compare the two medians in the detail."
    ),
}


def table(figures: list[Figure]) -> str:
    rows = [("Figure", "Value", "Goal", "Met?")] + [(f.name, f.value, f.goal, f.verdict) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |" for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def details(figures: list[Figure]) -> str:
    return "\n".join(f"- **{f.name}**: {f.detail}" for f in figures if f.detail)


def missed(figures: list[Figure]) -> str:
    reasons, explained = [], set()
    for prefix, why in WHY_MISSED.items():
        names = [f.name for f in figures if f.met is False and f.name.startswith(prefix)]
        explained.update(names)
        if names and why:
            reasons.append(f"- **{' / '.join(names)}: not met.** {why}")
    reasons += [f"- **{f.name}: not met.**" for f in figures if f.met is False and f.name not in explained]
    return "\n".join(reasons)


TEMPLATE = """# Performance

`make bench` (or `.venv/bin/python -m bench`) measures the figures below and rewrites this file. Every figure
with a goal is a ratio of two things measured in the same run on the same machine, so it means the same on a
laptop and on a server; absolute times are given only as the raw numbers behind a ratio or as figures without
a goal. No test in the suite is timed: speed is checked here, not in `make test`.

## Latest results

Measured {when}; the whole run took {minutes:.1f} minutes.

{table}

Raw numbers:

{details}

### Goals not met, and why

{unmet}

### Machine

| | |
|---|---|
{machine}

## What these measurements decided

- **gunicorn preloads the app** (`preload_app`, gunicorn.conf.py) and the master renders every public page in
  every language and encoding before it forks (app/prefork.py); the database engine is disposed in the master
  after that and in each worker after the fork. A recycled worker starts warm, so recycling costs a fork.
- **`max_requests = 100,000`** (jitter 10,000), from the leak test below: after warm-up a worker's memory grew by
  about 2 MiB per 100,000 mixed requests (its row gives every sample), as its bounded caches fill; so a worker never
  gains more than a few MiB before it is recycled. Recycling every 2,000 requests, as before, re-imported the app
  and re-rendered every page each time.
- **Public pages are cacheable by any proxy** (Cache-Control: public, a strong ETag, 304 answers), and the shipped
  nginx site micro-caches them, so a burst of readers never reaches Python.
- **Public pages are published as files** (PUBLIC_PAGES_DIR, app/published.py) that the shipped site
  sends itself: a copy from nginx's micro-cache cost about 1.3 times a static file (0.70-0.78 of its requests per
  CPU-second; with open_file_cache, a flat cache folder, a shorter key or the app's headers cut to one, never
  above 0.82), so the goal of 0.8 was out of reach for any proxy cache. A reader whose browser names its
  languages the usual way gets the file; the app and nginx pick the same language (app/negotiation.py), which
  also fixed the app giving Lithuanian to a reader who prefers en-GB and lists lt second.
- **Indexes for a national history** (migration e7c4a9f2b1d3): photos by message (each erasure in the retention
  purge scanned every photo once per message), response rounds by reply time and sent emails by time (the staff
  dashboard read every round and every sent email), and reference prefixes on PostgreSQL (a partial reference
  search read every request). The dashboard counts emails sent in the last 7 days rather than ever.
- **The email worker** claims rows in batches with one statement, marks sent ones with the next claim, writes the
  MIME message directly and talks to the mail server from a thread of its own while it renders the next email.

Not changed, but seen while measuring: the app never closes a request whose patient does not answer a
question, so over the years "awaiting patient" would grow in every queue tab's count (the national history
closes them after a fortnight); and a reader who holds a session cookie (after opening the form, say) is sent
a new cookie with every page (Flask-Login's strong session protection), so their pages are never shareable.

## How each figure is measured

{methods}

## Running it

- `make bench` installs Debian's `wrk` and `nginx` when they are missing and it may (scripts/ensure-wrk.sh,
  scripts/ensure-debian.sh), then runs everything in a temporary folder (its own SQLite files, upload
  folders and nginx prefix; instance/ is never touched) and, for the national benchmark, in two PostgreSQL
  databases of its own (bench_national_10000 and bench_national_1000000 on BENCH_POSTGRES_URL's server).
- `.venv/bin/python -m bench --only queue,photos` runs some benchmarks and prints their rows without
  rewriting this file. Names: throughput, leak, photos, phone, uploads, mail, email, queue, national.
  `--reuse` keeps the national databases when they are already loaded (loading a million requests takes
  minutes).
- A benchmark that cannot run here (no `wrk`, no nginx, no PostgreSQL) shows "not run: <reason>" in its row
  instead of stopping the others.
- The whole run takes about half an hour on 2 cores, most of it loading the million requests. Other work on
  the machine shifts the absolute times more than the ratios, but a busy machine still adds noise: run it
  twice before drawing conclusions from a small change. CPU time per request (the throughput figures) is
  steadier than requests per second, because waiting for a core does not count.
"""


def write(figures: list[Figure], facts: dict[str, str], took: float, modules: list) -> None:
    """Rewrite docs/performance.md: the table, the machine, and how each benchmark measures."""
    DOC.parent.mkdir(exist_ok=True)
    text = TEMPLATE.format(
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        minutes=took / 60,
        table=table(figures),
        details=details(figures),
        unmet=missed(figures) or "Every goal was met in this run.",
        machine="\n".join(f"| {name} | {value} |" for name, value in facts.items()),
        methods="\n\n".join(_method(module) for module in modules),
    )
    DOC.write_text(text, encoding="utf-8")


def _method(module) -> str:
    doc = inspect.getdoc(module) or ""
    title, _, body = doc.partition("\n")
    return f"### {title.rstrip('.')}\n\n{body.strip()}"
