"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in its own thread, keeping
every message it accepts. It can be stopped and started again on the same port (the
server "down for a while"), refuse messages for a while, or hold one message until the
test lets it go. With `login`, it takes only that user and password (AUTH over plain
text: the tests have no certificate)."""

import asyncio
import email
import email.policy
import re
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.live_server import free_port

LINK = re.compile(r"https?://[^\s<>\"]+?token=[A-Za-z0-9_%\-]+")


class _Handler:
    def __init__(self, server: "MailServer") -> None:
        self.server = server

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        server = self.server
        with server.lock:
            server.attempts += 1
            attempt = server.attempts
            if server.refuse > 0:
                server.refuse -= 1
                return server.refusal
        if server.hold_at is not None and attempt == server.hold_at:
            server.held.set()
            # Until the test lets go; by then the client is gone, so nothing was accepted.
            # (A threading.Event: the test waits in another thread and loop.)
            while not server.release.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            return "451 4.3.0 not accepted"
        if server.delay:
            await asyncio.sleep(server.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with server.lock:
            server.messages.append(message)
        return "250 OK"


class MailServer:
    def __init__(self, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}?timeout=5"
        self.login = login
        self.lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.attempts = 0
        # How many messages to refuse next, and with what answer.
        self.refuse = 0
        self.refusal = "451 4.3.0 try again later"
        self.hold_at: int | None = None
        # Seconds each message takes to be accepted.
        self.delay = 0.0
        self.held = threading.Event()
        self.release = threading.Event()
        self._controller: Controller | None = None

    def start(self) -> "MailServer":
        auth: dict[str, Any] = {}
        if self.login is not None:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **auth)
        self._controller.start()
        return self

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        given = (
            (data.login.decode(), data.password.decode())
            if isinstance(data, LoginPassword)
            else None
        )
        return AuthResult(success=given == self.login, handled=False)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]

    def wait_for(self, count: int, timeout: float = 20) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.messages)} messages arrived, expected {count}")


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "no text/plain part"
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "no text/html part"
    return str(part.get_content())


def link_in(message: EmailMessage) -> str:
    found = LINK.search(text_of(message))
    assert found, f"no link with a token in:\n{text_of(message)}"
    return found.group(0)


def token_in(message: EmailMessage) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(link_in(message)).query)["token"][0]
