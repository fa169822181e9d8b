"""A real SMTP server on loopback for tests (aiosmtpd) that keeps what it receives.

Start one with MailServer(reject={"bounce@example.com"}).start() (smtputf8=True: it offers SMTPUTF8,
for addresses like josé@example.com), point an app at it with
build_app(tmp_path, **server.settings()), read server.messages_to(address), then server.stop().
"""

from __future__ import annotations

import email
import socket
import threading
from email.message import Message

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A loopback port nothing listens on (yet): the mail server "down" until started there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.server.reject:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content)
        with self.server.lock:
            for recipient in envelope.rcpt_tos:
                self.server.received.append((recipient.lower(), message))
        return "250 Message accepted for delivery"


class MailServer:
    """An aiosmtpd server on 127.0.0.1 that keeps what it receives and refuses given addresses (550)."""

    def __init__(
        self, port: int | None = None, reject: set[str] | frozenset[str] = frozenset(), *, smtputf8: bool = False
    ) -> None:
        self.port = port or free_port()
        self.smtputf8 = smtputf8  # offer SMTPUTF8 (addresses with non-ASCII letters before the @)
        self.reject = {address.lower() for address in reject}
        self.received: list[tuple[str, Message]] = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> MailServer:
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self.smtputf8
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def settings(self) -> dict:
        """create_app overrides that send this app's mail here."""
        return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": self.port, "MAIL_SUPPRESS_SEND": False}

    @property
    def messages(self) -> list[Message]:
        with self.lock:
            return [message for _, message in self.received]

    def recipients(self) -> list[str]:
        with self.lock:
            return [recipient for recipient, _ in self.received]

    def messages_to(self, address: str) -> list[Message]:
        with self.lock:
            return [message for recipient, message in self.received if recipient == address.lower()]


def body_text(message: Message) -> str:
    """The plain-text part of a received email."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    return ""


def body_html(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    return ""


def header(message: Message, name: str) -> str:
    """A header as a person reads it (RFC 2047 encoded words decoded)."""
    from email.header import decode_header, make_header

    return str(make_header(decode_header(message[name] or "")))
