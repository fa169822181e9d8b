"""`flask worker`: runs the 24-hour check, answers "lost your link?" requests, sends due check-in
emails and delivers the outbox, in a loop (and republishes the public pages when an article changes).

Several workers may run at once (on one machine or many): alerts are deduplicated and outbox
rows are claimed before sending. SIGTERM or Ctrl+C lets the current round finish, then exits.
Logs carry counts only, never recipients or anything about a request.
"""

from __future__ import annotations

import logging
import os
import select
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.extensions import db
from app.outbox import DEFAULT_BATCH

log = logging.getLogger("app.worker")


def run_once() -> dict[str, int]:
    """One round: offer waiting requests to whoever is on duty (AUTO_ASSIGN), so that alerts reach the
    new holder; queue due alerts, requested links, check-in emails, the coverage forecast's gap alerts,
    the weekly summary and, with paid consultations, the money (unpaid requests, refunds), so that
    their emails go out in the same round; then deliver."""
    from app.consultations import payments
    from app.consultations.alerts import check
    from app.consultations.assignment import offer_waiting
    from app.consultations.check_ins import send_due
    from app.consultations.forecast import alert_gaps
    from app.consultations.submission import send_requested_links
    from app.consultations.summary import send_weekly
    from app.outbox import deliver
    from app.runtime import payment_provider, policies, storage
    from app.timeutil import utcnow

    counts: dict[str, int] = {}
    steps: tuple[tuple[str, Callable[[], dict[str, int]]], ...] = (
        ("assignment", lambda: offer_waiting(policies(), utcnow())),
        ("sla check", lambda: check(policies())),
        ("payments", lambda: payments.run(policies(), payment_provider(), storage(), utcnow())),
        ("coverage forecast", lambda: alert_gaps(policies(), utcnow())),
        ("weekly summary", lambda: send_weekly(policies(), utcnow())),
        ("lost links", send_requested_links),
        ("check-ins", lambda: send_due(policies(), utcnow())),
        ("mail delivery", deliver),
        ("public pages", _publish_changed_pages),
    )
    for name, step in steps:
        try:
            counts.update(step())
        except Exception as error:  # one bad round must not stop the worker; only the type is logged
            db.session.rollback()
            log.error("worker: %s failed (%s); trying again next round", name, type(error).__name__)
    db.session.remove()
    return counts


def _publish_changed_pages() -> dict[str, int]:
    """With PUBLIC_PAGES_DIR set, write the public pages again once an article changes on disk, so the
    files nginx sends are never older than a round (app/published.py)."""
    from app.published import publish_if_changed

    folder = current_app.config["PUBLIC_PAGES_DIR"]
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    published = publish_if_changed(app, Path(folder)) if folder else None
    return published.as_counts() if published else {}


class Stop:
    """A graceful stop asked for by SIGTERM (systemd, docker) or SIGINT (Ctrl+C).

    The signal handler only writes a byte to a pipe (the self-pipe trick) and sets a flag: it takes
    no lock. Setting a threading.Event there could deadlock, as the handler runs in the main thread,
    which may hold the event's lock at that moment (entering or leaving Event.wait), and then the
    worker would hang until killed.
    """

    def __init__(self) -> None:
        self.requested = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def request(self, signum: int, _frame: object) -> None:
        self.requested = True
        with suppress(BlockingIOError):  # asked before: the pipe is full of bytes already
            os.write(self._write, b"x")

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` or until asked to stop; True if asked to stop."""
        if not self.requested and seconds > 0:
            select.select([self._read], [], [], seconds)
        return self.requested

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


@contextmanager
def _stop_on_signals() -> Iterator[Stop]:
    stop = Stop()
    previous = {sig: signal.signal(sig, stop.request) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop.close()


def _log_counts(counts: dict[str, int]) -> None:
    log.info(
        "worker: at risk %d, overdue %d, alerts queued %d, check-ins %d; sent %d, retrying %d, failed %d, waiting %d",
        *(
            counts.get(key, 0)
            for key in ("at_risk", "overdue", "emails", "check_ins", "sent", "retrying", "failed", "waiting")
        ),
    )
    if "late_refunds" in counts:  # paid consultations are on
        log.info(
            "worker: payments confirmed %d, reminders %d, unpaid deleted %d; late refunds %d, paid %d, refused %d",
            *(
                counts.get(key, 0)
                for key in (
                    "payments_confirmed",
                    "reminders",
                    "unpaid_deleted",
                    "late_refunds",
                    "refunds_paid",
                    "refunds_refused",
                )
            ),
        )
    if counts.get("pages written") or counts.get("pages removed"):
        log.info("worker: public pages written %d, removed %d", counts["pages written"], counts["pages removed"])
    rota_keys = ("assigned", "medical_lead", "gaps_alerted", "weekly")
    if any(counts.get(key, 0) for key in rota_keys):
        log.info(
            "worker: assigned %d, escalated to the medical lead %d, coverage gaps alerted %d, weekly summaries %d",
            *(counts.get(key, 0) for key in rota_keys),
        )


@click.command("worker")
@click.option("--once", is_flag=True, help="Run one round and exit (tests, cron).")
@click.option("--interval", type=float, default=None, help="Seconds between rounds (default WORKER_INTERVAL_SECONDS).")
@with_appcontext
def commands(once: bool, interval: float | None) -> None:
    """Deliver emails and check the 24-hour target every WORKER_INTERVAL_SECONDS until stopped."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    interval = interval if interval is not None else current_app.config["WORKER_INTERVAL_SECONDS"]
    with _stop_on_signals() as stop:
        log.info("worker: started, a round every %s s", interval)
        while True:
            counts = run_once()
            _log_counts(counts)
            # A full batch means more may be waiting: go again at once instead of after the interval.
            handled = sum(counts.get(key, 0) for key in ("sent", "retrying", "failed"))
            if once or stop.wait(0 if handled >= DEFAULT_BATCH else interval):
                break
    if stop.requested:
        log.info("worker: stop asked for (SIGTERM or SIGINT); the round in progress was finished")
    log.info("worker: stopped")
