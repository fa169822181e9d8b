"""The shipped nginx site (deploy/nginx-skin-clinic.conf), run for tests on loopback.

`render_site` rewrites only what differs on a test machine: ports, certificate paths, the app
server's address, log and static folders. Every rewrite must find its line, so a change to the
shipped file that the tests cannot follow fails loudly instead of testing something else.
`Nginx` runs the master in the foreground (a child of the test) with its own prefix, temporary
folders and logs; `TLSClient` is a requests session that reaches https://clinic.example:<port>
on loopback with the right SNI and Host and checks the certificate made by `self_signed_certificate`.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx-skin-clinic.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
MIME_TYPES = Path("/etc/nginx/mime.types")
PUBLIC_HOST = "clinic.example"


def self_signed_certificate(folder: Path, host: str = PUBLIC_HOST) -> tuple[Path, Path]:
    """A certificate for `host` that signs itself (the client trusts exactly this one), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)  # the same clock verifies it: this process's
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _rewrite(text: str, pattern: str, replacement, what: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if not count:
        raise AssertionError(f"deploy/nginx-skin-clinic.conf changed: no {what} to rewrite ({pattern!r})")
    return new


@dataclass(frozen=True)
class Ports:
    http: int
    https: int
    app: int


def render_site(ports: Ports, certificate: Path, key: Path, logs: Path, pages: Path) -> str:
    """The shipped site with loopback ports, the test's certificate, app server, logs, published pages
    and static files."""
    text = SITE.read_text(encoding="utf-8")
    text = _rewrite(text, r"^\s*listen \[::\]:\d+.*;\n", "", "IPv6 listen line")

    def listen(match: re.Match) -> str:
        port = {"80": ports.http, "443": ports.https}[match.group(2)]
        return f"{match.group(1)}listen 127.0.0.1:{port}{match.group(3)};"

    text = _rewrite(text, r"^(\s*)listen (80|443)\b([^;]*);", listen, "listen line")
    text = _rewrite(text, r"/etc/letsencrypt/live/[^/]+/fullchain\.pem", str(certificate), "certificate")
    text = _rewrite(text, r"/etc/letsencrypt/live/[^/]+/privkey\.pem", str(key), "certificate key")
    text = _rewrite(text, r"^(\s*)server 127\.0\.0\.1:8000\b", rf"\g<1>server 127.0.0.1:{ports.app}", "app server")
    text = _rewrite(text, r"/var/log/nginx/", f"{logs}/", "log path")
    text = _rewrite(text, r"/var/cache/nginx/", f"{logs}/", "micro-cache path")  # nginx makes the last folder
    text = _rewrite(text, r"/var/lib/skin-clinic/pages\b", str(pages), "published pages folder")
    text = _rewrite(text, r"/srv/skin-clinic/", f"{ROOT}/", "application folder")
    return text


def main_config(prefix: Path, site: Path, logs: Path) -> str:
    """nginx.conf as Debian ships it (gzip on for everything, which the site must turn off where it
    matters), in the foreground, with every path under `prefix`."""
    run_as = "user root root;\n" if os.geteuid() == 0 else ""  # workers must reach the test's 0700 folders
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
{run_as}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {logs / "nginx-main.error.log"} info;
events {{
    worker_connections 512;
}}
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include {MIME_TYPES};
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log {logs / "nginx-main.access.log"};
    gzip on;
{temp}
    include {site};
}}
"""


class Nginx:
    """nginx with the shipped site, in the foreground, stopped with stop()."""

    def __init__(self, folder: Path, ports: Ports, certificate: Path, key: Path) -> None:
        self.prefix = folder / "nginx"
        self.logs = folder / "nginx-logs"
        self.prefix.mkdir()
        self.logs.mkdir()
        self.site = self.prefix / "skin-clinic.conf"
        self.pages = folder / "pages"  # PUBLIC_PAGES_DIR of the app behind it
        self.site.write_text(render_site(ports, certificate, key, self.logs, self.pages), encoding="utf-8")
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(main_config(self.prefix, self.site, self.logs), encoding="utf-8")
        self.output = folder / "nginx.out"
        self.process: subprocess.Popen | None = None

    def command(self, *extra: str) -> list[str]:
        assert NGINX, "nginx is not installed"
        return [NGINX, "-p", f"{self.prefix}/", "-c", str(self.conf), *extra]

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.command("-t", "-q"), capture_output=True, text=True, timeout=30, check=False)

    def start(self) -> Nginx:
        with self.output.open("wb") as output:
            self.process = subprocess.Popen(
                self.command(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def ensure_running(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"nginx exited with {self.process.returncode}:\n{self.output.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # fast shutdown; workers are its children
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def log_texts(self) -> dict[str, str]:
        """Every log nginx wrote (the site's and the main ones, and its standard error), by file name."""
        files = [*sorted(self.logs.iterdir()), self.output]
        return {path.name: path.read_text(errors="replace") for path in files if path.is_file()}


class _PinnedHostAdapter(HTTPAdapter):
    """Connect to 127.0.0.1 for every host name, keeping the name for SNI, Host and the certificate check."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        name = host_params["host"]
        host_params["host"] = "127.0.0.1"
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = name
            pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs

    def add_headers(self, request, **kwargs) -> None:
        request.headers["Host"] = urlsplit(request.url).netloc  # after a redirect too: never a stale one


class TLSClient(requests.Session):
    """A browser for https://clinic.example:<port> on loopback: its own cookies, the test's certificate."""

    def __init__(self, certificate: Path) -> None:
        super().__init__()
        self.trust_env = False  # REQUESTS_CA_BUNDLE or a proxy from the environment would win over these
        self.verify = str(certificate)
        adapter = _PinnedHostAdapter(pool_connections=4, pool_maxsize=4)
        self.mount("https://", adapter)
        self.mount("http://", adapter)


class LoopbackHTTPS(http.client.HTTPSConnection):
    """http.client over TLS to 127.0.0.1:port for the name `host` (SNI, Host header, certificate check).

    For requests a session cannot send: headers announcing a body that never follows.
    """

    def __init__(self, host: str, port: int, certificate: Path | None, timeout: float = 30) -> None:
        context = ssl.create_default_context(cafile=str(certificate) if certificate else None)
        super().__init__(host, port, timeout=timeout, context=context)

    def connect(self) -> None:
        plain = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(plain, server_hostname=self.host)


def raw_exchange(port: int, request: bytes, *, tls_name: str | None = None, certificate: Path | None = None) -> bytes:
    """Send raw bytes to 127.0.0.1:port (TLS with SNI `tls_name` when given) and return all that comes back
    until the server closes the connection or stops talking for 10 seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        connection: socket.socket = plain
        if tls_name is not None:
            context = ssl.create_default_context(cafile=str(certificate) if certificate else None)
            connection = context.wrap_socket(plain, server_hostname=tls_name)
        connection.sendall(request)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError, ssl.SSLError):
            pass
        return received
