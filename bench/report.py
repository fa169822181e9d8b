"""The results table, printed and written into docs/performance.md with how each figure was measured."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

from bench.common import ROOT, Figure

DOC = ROOT / "docs" / "performance.md"

# Why a goal can be missed, shown under the table only for goals missed in this run.
WHY_MISSED = {
    "Condition page throughput": (
        "The bare app returns 13 bytes from one function. The condition page runs every extension's hooks "
        "(Talisman's security headers, CSRF, Babel's locale, Flask-Login, Flask-Limiter), renders base.html and "
        "conditions/condition.html with Jinja on every request (the article's Markdown is cached as HTML, the page "
        "around it is not) and, when asked, brotli-compresses about 12 KiB. Profiled in-process while this benchmark "
        "was written, template rendering took over a third of the page's time and compression about a tenth. "
        "Getting to 0.5 would take caching the finished response per (article, language, encoding) until the file "
        "changes, with an ETag, rather than rendering it each time."
    ),
    "Photo pipeline": (
        "A plain decode only decodes. The pipeline decodes the same 12 MP at full size, turns it upright (EXIF "
        "orientation 6), converts the colours, resizes it to PHOTO_MAX_EDGE (3000) with LANCZOS, copies the pixels to "
        "leave the metadata behind and encodes an optimised progressive JPEG of 6.75 MP plus a thumbnail; the detail "
        "above names the most expensive calls. JPEG draft decoding cannot help at 3000 px (it only scales by 1/2, "
        "1/4, 1/8, and 3000 is more than half of 4000); and app/photos.py asks draft() for a square box "
        "(max_edge × max_edge), which leaves any landscape or portrait photo at full size even when a smaller "
        "PHOTO_MAX_EDGE would allow a half-scale decode. Asking for the photo's own aspect ratio and a PHOTO_MAX_EDGE "
        "of 2000 would decode a quarter of the pixels and skip the resize; how many pixels a dermatologist needs is "
        "the clinic's decision, not this benchmark's."
    ),
    "Queue": (
        "The queue page should cost the same whatever the history holds: one query for a page of rows, one for the "
        "tab counts over the open requests. A ratio above the goal points at a query whose cost grows with the "
        "table: look for a missing index or a count over all requests."
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
    reasons = []
    for prefix, why in WHY_MISSED.items():
        names = [f.name for f in figures if f.met is False and f.name.startswith(prefix)]
        if names:
            reasons.append(f"- **{' / '.join(names)}: not met.** {why}")
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

## How each figure is measured

{methods}

## Running it

- `make bench` installs Debian's `wrk` when it is missing and it may (scripts/ensure-wrk.sh), then runs
  everything in a temporary folder (its own SQLite files and upload folders; instance/ is never touched).
- `.venv/bin/python -m bench --only queue,photos` runs some benchmarks and prints their rows without
  rewriting this file. Names: throughput, queue, photos, phone, mail.
- A benchmark that cannot run here (no `wrk`, a part of the app not built yet) shows
  "not run: <reason>" in its row instead of stopping the others.
- The run takes about 3 minutes on 2 cores. Other work on the machine shifts the absolute times more than the
  ratios, but a busy machine still adds noise: run it twice before drawing conclusions from a small change.
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
