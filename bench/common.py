"""Shared pieces of the benchmarks: figures, scratch workspaces, apps, sign-in, timing and machine facts."""

from __future__ import annotations

import os
import platform
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


class NotRun(Exception):
    """A benchmark cannot run here (a missing tool or an unfinished part of the app); says why."""


@dataclass
class Figure:
    """One row of the table: what was measured, the value, the goal and whether it was met."""

    name: str
    value: str
    goal: str = "reported"
    met: bool | None = None  # None: no goal, or not run
    detail: str = ""  # the raw numbers behind a ratio

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "—"
        return "yes" if self.met else "NO"


def not_run(name: str, goal: str, reason: str) -> Figure:
    return Figure(name, f"not run: {reason}", goal, None)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Workspace:
    """A scratch folder with its own SQLite file and upload folder, so a benchmark never touches instance/."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = root / name
        self.path.mkdir(parents=True, exist_ok=True)
        self.database = self.path / "bench.sqlite"
        self.uploads = self.path / "uploads"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database}"

    def settings(self, **overrides: object) -> dict:
        return {"SQLALCHEMY_DATABASE_URI": self.database_url, "UPLOAD_DIR": str(self.uploads), **overrides}

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a child process (flask, gunicorn) pointing at this workspace."""
        env = dict(os.environ)
        env.update(
            APP_CONFIG="development",
            DATABASE_URL=self.database_url,
            UPLOAD_DIR=str(self.uploads),
            FLASK_APP="wsgi:app",
            PYTHONPATH=str(ROOT),
        )
        env.update(extra)
        return env

    def app(self, **overrides: object):
        """The real app (development settings: CSRF on, argon2 at full cost) on this workspace's database."""
        from app import create_app

        return create_app("development", self.settings(**overrides))

    def create_schema(self) -> None:
        """The schema from the models (as the test suite does), so a benchmark does not wait on migrations."""
        from app.extensions import db

        app = self.app()
        with app.app_context():
            db.create_all()
            db.engine.dispose()

    def flask(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a `flask` command against this workspace; raises with its output if it fails."""
        result = subprocess.run(
            [PYTHON, "-m", "flask", *args],
            cwd=ROOT,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:], sep="\n", file=sys.stderr)
            lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
            raise RuntimeError(f"flask {' '.join(args)} failed: {lines[-1] if lines else result.returncode}")
        return result

    def seed(self, requests: int) -> float:
        """`flask demo seed --requests N`; returns the seconds it took (process start included)."""
        started = time.perf_counter()
        self.flask("demo", "seed", "--requests", str(requests))
        return time.perf_counter() - started


def form_value(html: str, name: str) -> str:
    """The value of a named (hidden) input in a page, whatever the attribute order."""
    for tag in re.findall(r"<input[^>]*>", html):
        if re.search(rf'name="{re.escape(name)}"', tag):
            match = re.search(r'value="([^"]*)"', tag)
            if match:
                return match.group(1)
    raise LookupError(f"no input named {name!r} with a value on the page")


def sign_in(client, email: str, password: str) -> None:
    """A real sign-in: open /login, post the form with its CSRF token, expect the redirect."""
    page = client.get("/login")
    if page.status_code != 200:
        raise NotRun(f"the sign-in page is not built yet (GET /login answered {page.status_code})")
    token = form_value(page.get_data(as_text=True), "csrf_token")
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    if response.status_code not in (302, 303) or "/login" in response.headers.get("Location", ""):
        raise RuntimeError(f"signing in as {email} failed (status {response.status_code})")


def seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio_figure(name: str, numerator: float, denominator: float, goal: str, detail: str) -> Figure:
    """A ratio row; `goal` is "≤ x" or "≥ x"."""
    value = numerator / denominator
    bound = float(goal.split()[-1])
    met = value <= bound if goal.startswith("≤") else value >= bound
    return Figure(name, f"{value:.2f}", goal, met, detail)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, str]:
    import PIL
    import sqlalchemy

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "CPU": _cpu_model(),
        "cores usable": str(usable),
        "memory": _memory(),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "SQLAlchemy": sqlalchemy.__version__,
        "Pillow": PIL.__version__,
        "load average at the start": " / ".join(f"{load:.1f}" for load in os.getloadavg()) + " (1, 5, 15 min)",
    }


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"
