"""Submit latency with the mail server stalled against a mail server that works.

Two SMTP servers on loopback: a working one (aiosmtpd, accepts every message) and a stalled one (a
raw socket that accepts the connection and never says a word, so a client waits for its greeting
until MAIL_TIMEOUT, 5 s here). Each has its own copy of the same SQLite file, an app with MAIL_SERVER
pointing at it, and a real `flask worker` process delivering that file's outbox to it the whole time,
as with `make run` or in production. A patient sends the consultation form (one photo, real CSRF
token; rate limits off so the benchmark can post repeatedly) to one app, then the other, 50 times
(the order alternating), and each POST is timed. The figure is the median of the 50 pairs' ratios
(stalled ÷ working): a pair is measured back to back, so other work on the machine, which comes and
goes in bursts, weighs on both halves alike; the plain ratio of the two medians is in the detail.
Both workers run throughout, so whatever they cost the machine also weighs on both sides.

Submitting only writes outbox rows in the request's transaction, so the mail server's state should
not show in the submit's time at all.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from bench.common import PYTHON, ROOT, Figure, Workspace, median, not_run, ratio_figure
from bench.intake_form import check_stored, open_form, post_form

NAME = "Submit latency, SMTP server stalled ÷ working"
GOAL = "≤ 1.1"
HEADLINE = NAME
SUBMIT_PAIRS = 50
MAIL_TIMEOUT_SECONDS = 5


class StalledSMTP:
    """Accepts connections on loopback and never answers (no greeting, no reply, no close)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed by stop()
            self.connections.append(connection)

    def start(self) -> StalledSMTP:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()


class WorkingSMTP:
    """aiosmtpd on loopback, counting the messages it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from bench.common import free_port

        self.received = 0
        self.port = free_port()
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):  # the aiosmtpd hook's name
                server.received += 1
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> WorkingSMTP:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def _worker(workspace: Workspace, port: int) -> subprocess.Popen:
    """A `flask worker` for this mail server, returned once it has finished its first round."""
    env = workspace.env(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(port), MAIL_TIMEOUT=str(MAIL_TIMEOUT_SECONDS))
    log_path = workspace.path / f"worker-{port}-{time.monotonic_ns()}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [PYTHON, "-m", "flask", "worker", "--interval", "0.5"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    deadline = time.monotonic() + 60
    while "worker: at risk" not in log_path.read_text():  # the line logged after each round
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"flask worker did not start:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.1)  # waiting for a process to come up, not timing anything
    return process


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM lets the worker finish its round (at most MAIL_TIMEOUT against the stalled server)."""
    process.terminate()
    try:
        process.wait(timeout=MAIL_TIMEOUT_SECONDS * 3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _submit(client, photo: bytes) -> float:
    """Seconds for one POST of the consultation form (opening the form is not counted)."""
    hidden = open_form(client)
    started = time.perf_counter()
    response = post_form(client, hidden, [("rash.jpg", photo)])
    took = time.perf_counter() - started
    check_stored(response)
    return took


def _setups(root: Path) -> dict[str, Workspace]:
    """Two workspaces with the demo accounts (dermatologists get an alert for each new request)."""
    working = Workspace(root, "mail-working")
    working.create_schema()
    working.seed(0)
    stalled = Workspace(root, "mail-stalled")
    shutil.copyfile(working.database, stalled.database)  # the seed has exited, so the file is complete
    return {"working": working, "stalled": stalled}


def _measure(workspaces: dict[str, Workspace], servers: dict, photo: bytes) -> dict[str, list[float]]:
    clients = {}
    for name, workspace in workspaces.items():
        app = workspace.app(MAIL_SERVER="127.0.0.1", MAIL_PORT=servers[name].port, RATELIMIT_ENABLED=False)
        clients[name] = app.test_client()
    workers = [_worker(workspaces[name], servers[name].port) for name in workspaces]
    try:
        for client in clients.values():
            _submit(client, photo)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in clients}
        for pair in range(SUBMIT_PAIRS):
            order = list(clients) if pair % 2 == 0 else list(reversed(clients))
            for name in order:
                times[name].append(_submit(clients[name], photo))
        return times
    finally:
        for worker in workers:
            _stop(worker)


def run(root: Path) -> list[Figure]:
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        return [not_run(NAME, GOAL, "aiosmtpd is not installed (requirements-dev.txt)")]
    from app.demo.photos import skin_photo_jpeg

    workspaces = _setups(root)
    servers = {"working": WorkingSMTP().start(), "stalled": StalledSMTP().start()}
    try:
        times = _measure(workspaces, servers, skin_photo_jpeg(7))
    finally:
        for server in servers.values():
            server.stop()
    # Each pair was measured back to back, so its ratio is not moved by the machine's load changing
    # between pairs (other work on the machine comes and goes in bursts of seconds).
    paired = median([late / normal for late, normal in zip(times["stalled"], times["working"], strict=True)])
    stalled, working = median(times["stalled"]), median(times["working"])
    detail = (
        f"median of {SUBMIT_PAIRS} back-to-back pairs; medians {stalled * 1000:.0f} ms stalled vs "
        f"{working * 1000:.0f} ms working (ratio {stalled / working:.2f}); meanwhile one worker delivered "
        f"{servers['working'].received} emails to the working server and the other held "
        f"{len(servers['stalled'].connections)} connection(s) open on the stalled one, waiting for a greeting"
    )
    return [ratio_figure(NAME, paired, 1.0, GOAL, detail)]
