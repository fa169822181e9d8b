"""The shipped nginx site (deploy/nginx-skin-clinic.conf), run on loopback in a scratch folder.

The site file is used as shipped, with only what ties it to a real server changed: every `listen`
becomes a loopback port without TLS (IPv6 listens are dropped, `ssl_*` lines too: TLS would cost the
same on both sides of a comparison and needs a certificate), the upstream points at the gunicorn under
test, and the static folder, the published pages (PUBLIC_PAGES_DIR), the logs and the cache folder
are in the scratch folder. Around it, a main configuration with Debian 12's http defaults
(/etc/nginx/nginx.conf: sendfile, tcp_nopush, mime types, the access log, gzip on). Requests must send
Host: clinic.example, as a browser would. The benchmarks and tests/test_nginx_cache.py both use it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from bench.common import ROOT, free_port

SITE = ROOT / "deploy" / "nginx-skin-clinic.conf"
HOST = "clinic.example"
# What the app behind the site is started with, as in production: one proxy in front, and the site's
# host name as its public address, so the app trusts it (requests straight to gunicorn on 127.0.0.1
# are trusted too in development settings).
APP_ENV = {"PROXY_FIX_HOPS": "1", "PUBLIC_BASE_URL": f"https://{HOST}"}
CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")

MAIN = """# Debian 12's /etc/nginx/nginx.conf, its http defaults, with every path in {folder}
{user}worker_processes auto;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{
    worker_connections 768;
}}
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include {mime_types};
    default_type application/octet-stream;
    access_log {folder}/access.log;
    gzip on;
    client_body_temp_path {folder}/temp/body;
    proxy_temp_path {folder}/temp/proxy;
    fastcgi_temp_path {folder}/temp/fastcgi;
    uwsgi_temp_path {folder}/temp/uwsgi;
    scgi_temp_path {folder}/temp/scgi;
    include {folder}/site.conf;
}}
"""


def binary() -> str | None:
    """The nginx executable, if installed (Debian's nginx package: scripts/ensure-debian.sh)."""
    found = shutil.which("nginx")
    return found or next((path for path in CANDIDATES if os.access(path, os.X_OK)), None)


def loopback_site(
    text: str, *, port: int, http_port: int, upstream: int, static: Path, pages: Path, folder: Path
) -> str:
    """The shipped site with its listens on loopback ports, its upstream, the app's published pages
    and its other folders in `folder`."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        listen = re.match(r"listen\s+(\S+)([^;]*);", stripped)
        if listen:
            address, flags = listen.group(1), listen.group(2).split()
            if address.startswith("["):
                continue  # IPv6: one loopback listen is enough
            shipped_port = address.rsplit(":", 1)[-1]
            kept = " ".join(flag for flag in flags if flag == "default_server")
            local = port if shipped_port == "443" else http_port
            lines.append(f"{indent}listen 127.0.0.1:{local}{' ' + kept if kept else ''};")
            continue
        if re.match(r"(ssl_\w+|http2)\s", stripped):
            continue
        line = re.sub(r"server\s+127\.0\.0\.1:8000;", f"server 127.0.0.1:{upstream};", line)
        line = line.replace("/srv/skin-clinic/static/", f"{static}/")
        line = line.replace("/var/log/nginx/", f"{folder}/")
        line = line.replace("/var/cache/nginx/", f"{folder}/cache/")
        line = line.replace("/var/lib/skin-clinic/pages", str(pages))
        lines.append(line)
    return "\n".join(lines) + "\n"


class Nginx:
    """nginx with the shipped site in front of a local upstream; stopped on exit.

    `url` is the site's (formerly TLS) server; `pid` is nginx's master process.
    """

    def __init__(self, folder: Path, upstream: int, static: Path, pages: Path | None = None) -> None:
        """`pages`: the app's PUBLIC_PAGES_DIR; without one, nginx finds no published page."""
        self.folder, self.upstream, self.static = folder, upstream, static
        self.pages = pages or folder / "no-published-pages"
        self.port, self.http_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _write(self) -> Path:
        for sub in ("temp", "cache"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        site = loopback_site(
            SITE.read_text(),
            port=self.port,
            http_port=self.http_port,
            upstream=self.upstream,
            static=self.static,
            pages=self.pages,
            folder=self.folder,
        )
        (self.folder / "site.conf").write_text(site)
        main = self.folder / "nginx.conf"
        mime_types = "/etc/nginx/mime.types" if Path("/etc/nginx/mime.types").exists() else "mime.types"
        # Run as root (as here), nginx's workers would switch to nobody, who cannot read a private
        # scratch folder; `user root` keeps them as the master is.
        user = "user root;\n" if os.geteuid() == 0 else ""
        main.write_text(MAIN.format(folder=self.folder, mime_types=mime_types, user=user))
        return main

    def __enter__(self) -> Nginx:
        executable = binary()
        if executable is None:
            raise FileNotFoundError("nginx is not installed")
        main = self._write()
        command = [executable, "-p", str(self.folder), "-c", str(main)]
        check = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the site:\n{check.stderr}")
        self.process = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.PIPE)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.process.stderr.read().decode(errors='replace')}")
            try:
                request = urllib.request.Request(self.url + "/static/", headers={"Host": HOST})
                urllib.request.urlopen(request, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # nginx answered (a 403 or 404 for the folder): it is up
            except OSError:
                time.sleep(0.1)  # polling a starting server, not timing anything
        raise RuntimeError(f"nginx did not answer within {timeout} s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
