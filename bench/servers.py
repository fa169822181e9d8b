"""gunicorn as deployed, and wrk to drive it: what the throughput, leak and upload benchmarks share."""

from __future__ import annotations

import re
import runpy
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.common import PYTHON, ROOT, Workspace, free_port
from bench.processes import TreeCPU, children, tree_cpu

CONF = ROOT / "gunicorn.conf.py"


def shipped_settings() -> dict:
    """gunicorn.conf.py's settings as it computes them on this machine."""
    return runpy.run_path(str(CONF))


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py TARGET` on a free loopback port: the shipped settings, access log
    included (to standard output, as shipped, which goes to a log file here as it goes to the journal
    in production). `extra` adds command-line flags, for the benchmarks that must change one."""

    def __init__(self, target: str, workspace: Workspace, *extra: str, env: dict[str, str] | None = None) -> None:
        self.target, self.workspace, self.extra = target, workspace, extra
        self.env = workspace.env(**(env or {}))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workspace.path / f"gunicorn-{target.replace(':', '-')}-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu(self) -> TreeCPU:
        return tree_cpu(self.pid)

    def workers(self) -> list[int]:
        return children(self.pid)

    def booted(self) -> int:
        """How many workers the master has started so far (the first ones and every replacement)."""
        return self.log.read_text(errors="replace").count("Booting worker with pid")

    def __enter__(self) -> Gunicorn:
        command = [PYTHON, "-m", "gunicorn", "-c", str(CONF), "--bind", f"127.0.0.1:{self.port}", *self.extra]
        with self.log.open("w") as log:
            self.process = subprocess.Popen([*command, self.target], cwd=ROOT, env=self.env, stdout=log, stderr=log)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.target} exited:\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)  # polling a starting server, not timing anything
        raise RuntimeError(f"gunicorn {self.target} did not answer within {timeout} s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    failures: int  # answers that were not 2xx/3xx

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk(
    url: str,
    seconds: float,
    headers: dict[str, str] | None = None,
    connections: int = 16,
    script: Path | None = None,
) -> Load:
    """Drive `url` with wrk (one thread, keep-alive connections) for `seconds`."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    if re.search(r"Socket errors: (.*)", output):
        raise RuntimeError(f"wrk saw socket errors on {url}:\n{output}")
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    if done is None:
        raise RuntimeError(f"wrk said nothing about {url}:\n{output}")
    took = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Load(int(done.group(1)), took, int(bad.group(1)) if bad else 0)
