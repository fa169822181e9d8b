"""Email throughput: one `flask worker` delivering queued emails, against smtplib sending the same messages in a loop.

A SQLite file gets EMAILS queued emails, as intake queues them (app.outbox.enqueue): the patient's
receipt in English or Lithuanian with the private link sealed, and the team's new-request alert,
one each in turn. aiosmtpd on loopback accepts every message and keeps it. One real `flask worker`
process (the shipped settings, MAIL_SERVER pointing at aiosmtpd) delivers them; the worker's rate is
the emails delivered between the first message arriving and the last, per second (its start-up is
left out and reported apart). The yardstick: smtplib, on one connection in a plain loop, in a process
of its own as the worker is (`python -m bench.mail_throughput loop`), sending the very messages the
worker sent (as received, so the same bytes) to a fresh aiosmtpd in this process. A round is the
worker and then the loop, back to back, on a copy of the same queued file; the figure is the middle
of ROUNDS rounds' ratios (worker's rate ÷ smtplib's), since on a shared 2-core machine one round's
ratio moves with whatever else is running. Most of the worker's time per email is its CPU (rendering
two templates, smtplib's own work, the claims and marks in the database), which a busy machine
shares out; the loop's processes only wake for short turns. The yardstick itself is not steady: on
the 2-core machine this was written on, smtplib's loop went at about 1,200 emails/s in some runs and
2,200 in others (the worker at 700 to 900), which moved the figure between about 0.35 and 0.69; read
the rates in the detail, not the ratio alone.
"""

from __future__ import annotations

import json
import pickle
import shutil
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import PYTHON, ROOT, Figure, NotRun, Workspace, free_port, ratio_figure

EMAILS = 10_000
ROUNDS = 3  # odd: the figure is the middle round's ratio
GOAL = "≥ 0.5"
NAME = f"Email delivery, one flask worker ÷ smtplib in a loop, {EMAILS:,} emails"
HEADLINE = NAME


class Recorder:
    """aiosmtpd on loopback keeping every message it accepts, with when it arrived."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[str, list[str], bytes]] = []
        self.arrived: list[float] = []
        self.lock = threading.Lock()
        self.port = free_port()
        recorder = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # the aiosmtpd hook's name
                with recorder.lock:
                    recorder.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
                    recorder.arrived.append(time.perf_counter())
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Recorder:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


def queue_emails(workspace: Workspace, count: int) -> None:
    from app.extensions import db
    from app.links import link
    from app.outbox import EmailTemplate, enqueue

    app = workspace.app()
    with app.app_context():
        for number in range(count):
            reference = f"DRM-{number:06d}"
            if number % 2 == 0:
                enqueue(
                    f"patient.{number}@example.com",
                    EmailTemplate.REQUEST_RECEIVED,
                    language="lt" if number % 4 == 0 else "en",
                    context={"reference": reference},
                    secret_context={"link": link("intake.private", token=f"token-{number:06d}-" + "x" * 30)},
                )
            else:
                enqueue(
                    "team@clinic.example",
                    EmailTemplate.STAFF_NEW_REQUEST,
                    language="en",
                    context={"reference": reference, "link": link("queue.detail", reference=reference)},
                )
            if number % 1000 == 999:
                db.session.commit()
        db.session.commit()
        db.engine.dispose()


def worker_rate(workspace: Workspace, server: Recorder, count: int) -> tuple[float, float]:
    """(emails per second between the first and the last message, seconds until the first one)."""
    env = workspace.env(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(server.port))
    log = workspace.path / "worker.log"
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen([PYTHON, "-m", "flask", "worker"], cwd=ROOT, env=env, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 900
        while server.count() < count:
            if process.poll() is not None:
                raise RuntimeError(f"flask worker exited:\n{log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker delivered {server.count()} of {count} emails in 15 minutes")
            time.sleep(0.2)  # waiting for the deliveries, not timing them (the arrival times are)
    finally:
        process.terminate()
        process.wait(timeout=60)
    first, last = server.arrived[0], server.arrived[count - 1]
    return (count - 1) / (last - first), first - started


def smtplib_loop(port: int, messages: list[tuple[str, list[str], bytes]]) -> float:
    """The yardstick: the messages sent in a plain loop on one connection; returns emails per second."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for sender, recipients, content in messages:
            smtp.sendmail(sender, recipients, content)
    return len(messages) / (time.perf_counter() - started)


def smtplib_rate(port: int, messages: list[tuple[str, list[str], bytes]], folder: Path) -> float:
    """smtplib_loop in a process of its own, as the worker is."""
    saved = folder / "messages.pickle"
    saved.write_bytes(pickle.dumps(messages))
    result = subprocess.run(
        [PYTHON, "-m", "bench.mail_throughput", "loop", str(port), str(saved)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=900,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])["rate"]


def run(root: Path) -> list[Figure]:
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        raise NotRun("aiosmtpd is not installed (requirements-dev.txt)") from None
    template = Workspace(root, "mail-throughput-queued")
    template.create_schema()
    queue_emails(template, EMAILS)
    rounds = []
    for number in range(ROUNDS):
        workspace = Workspace(root, f"mail-throughput-{number}")
        shutil.copyfile(template.database, workspace.database)  # the same queue for every round
        with Recorder() as server:
            worker, start_up = worker_rate(workspace, server, EMAILS)
            sent = list(server.messages[:EMAILS])
        with Recorder() as again:
            loop = smtplib_rate(again.port, sent, workspace.path)
        rounds.append((worker / loop, worker, loop, start_up))
        print(f"   round {number + 1}: {worker:.0f} vs {loop:.0f} emails/s, ratio {worker / loop:.2f}", flush=True)
    _, worker, loop, start_up = sorted(rounds)[len(rounds) // 2]
    size = sum(len(content) for _, _, content in sent) / len(sent)
    detail = (
        f"median of {ROUNDS} rounds, each the worker then the loop back to back (ratios "
        f"{', '.join(f'{r[0]:.2f}' for r in rounds)}); the median round: {worker:.0f} vs {loop:.0f} emails/s; "
        f"the worker's first email arrived {start_up:.1f} s after it was started; messages of {size / 1024:.1f} KiB "
        "on average (text and HTML), SQLite outbox"
    )
    return [ratio_figure(NAME, worker, loop, GOAL, detail)]


if __name__ == "__main__" and sys.argv[1:2] == ["loop"]:
    # python -m bench.mail_throughput loop PORT FILE: the yardstick, in a process of its own
    loaded = pickle.loads(Path(sys.argv[3]).read_bytes())
    print(json.dumps({"rate": smtplib_loop(int(sys.argv[2]), loaded)}))
