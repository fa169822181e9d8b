"""`python -m bench`: run the benchmarks, print the table, rewrite docs/performance.md."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import (
    hostile_uploads,
    leak,
    mail_throughput,
    phone_resize,
    photos,
    queue_page,
    report,
    scale,
    stalled_mail,
    throughput,
    uploads,
)
from bench.common import Figure, NotRun, machine_facts, not_run

BENCHMARKS = {
    "throughput": throughput,
    "leak": leak,
    "photos": photos,
    "phone": phone_resize,
    "uploads": uploads,
    "hostile": hostile_uploads,
    "mail": stalled_mail,
    "email": mail_throughput,
    "queue": queue_page,
    "national": scale,
}


def _run_one(name: str, module, scratch: Path) -> list[Figure]:
    """A benchmark's rows; a missing dependency or a crash becomes a row that says so."""
    print(f"-- {name}", flush=True)
    started = time.perf_counter()
    try:
        figures = module.run(scratch)
    except NotRun as reason:
        figures = [not_run(module.HEADLINE, module.GOAL, str(reason))]
    except Exception as error:  # report the failure in the table and carry on with the other benchmarks
        traceback.print_exc()
        lines = [line for line in str(error).splitlines() if line.strip()]
        message = f"failed: {type(error).__name__}: {lines[0] if lines else ''}"
        figures = [Figure(module.HEADLINE, message[:200], module.GOAL, False, "the traceback is printed above")]
    print(f"   {time.perf_counter() - started:.0f} s", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)} (docs are not rewritten)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the national benchmark's PostgreSQL databases if already loaded"
    )
    args = parser.parse_args(argv)
    scale.REUSE = args.reuse
    chosen = list(BENCHMARKS) if not args.only else [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    started = time.perf_counter()
    facts = machine_facts()  # before the run, so the load average shows what else the machine was doing
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="skin-clinic-bench-") as scratch:
        for name in chosen:
            figures += _run_one(name, BENCHMARKS[name], Path(scratch))
    took = time.perf_counter() - started
    print()
    print(report.table(figures))
    print()
    print(report.details(figures))
    unmet = report.missed(figures)
    if unmet:
        print()
        print(unmet)
    if not args.only:
        report.write(figures, facts, took, [BENCHMARKS[name] for name in chosen])
        print(f"\nWritten to {report.DOC.relative_to(report.ROOT)} ({took / 60:.1f} minutes).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
