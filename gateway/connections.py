"""What uvicorn leaves open to slow and greedy clients, closed at the connection: headers
must be complete within a time limit of the connection (or of a request's first byte),
and one address may hold only so many connections at once (HTTP and WebSocket alike).
Bodies are timed by gateway/request_body.py.

`gateway serve` runs uvicorn with these protocol classes. They read their limits from the
app's lifespan state (gateway/app.py puts them there), so every worker process, which
builds its own app from the settings, applies the same ones. The counts live there too,
so they are per process: with `--workers N` an address may hold up to N times the limit.
"""

import asyncio
import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

STATE_KEY = "gateway.connection_limits"
# Where the lifespan state holds the server's OpenConnections.
OPEN_KEY = "gateway.open_connections"
# The scope extension that writes a prepared WebSocket frame (GuardedWebSocketProtocol).
FRAME_WRITER = "gateway.frame_writer"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    max_per_address: int = 100
    # Addresses not counted: trusted proxies carry many clients' connections.
    exempt: tuple[Network, ...] = field(default_factory=tuple)
    exempt_all: bool = False

    @classmethod
    def from_proxies(
        cls, proxies: list[str], *, header_timeout: float, max_per_address: int
    ) -> "ConnectionLimits":
        networks = tuple(ipaddress.ip_network(p, strict=False) for p in proxies if p != "*")
        return cls(header_timeout, max_per_address, networks, exempt_all="*" in proxies)

    def counts(self, address: str) -> bool:
        if self.exempt_all:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return True
        return not any(ip in network for network in self.exempt)


class OpenConnections:
    """The connections a server holds open, by peer address, as their transports' ids:
    a connection upgraded to WebSocket changes protocol object but keeps its transport.
    Made for each run of the app's lifespan (gateway/app.py puts it in the state), not
    held by this module, so two servers in one process count apart."""

    __slots__ = ("_address_of", "_open")

    def __init__(self) -> None:
        self._open: defaultdict[str, set[int]] = defaultdict(set)
        self._address_of: dict[int, str] = {}

    def take(self, address: str, transport: Any) -> None:
        self._open[address].add(id(transport))
        self._address_of[id(transport)] = address

    def release(self, transport: Any) -> None:
        address = self._address_of.pop(id(transport), None)
        if address is not None:
            self._open[address].discard(id(transport))
            if not self._open[address]:
                del self._open[address]

    def count(self, address: str) -> int:
        return len(self._open.get(address, ()))


def _limits(app_state: dict[str, Any]) -> ConnectionLimits:
    limits = app_state.get(STATE_KEY)
    return limits if isinstance(limits, ConnectionLimits) else ConnectionLimits()


def _counts(app_state: dict[str, Any]) -> OpenConnections:
    # An app whose lifespan put none there still counts, in the server's own state.
    counts = app_state.get(OPEN_KEY)
    if not isinstance(counts, OpenConnections):
        counts = app_state[OPEN_KEY] = OpenConnections()
    return counts


def _response(status: bytes, message: str) -> bytes:
    body = message.encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


class GuardedHttpProtocol(HttpToolsProtocol):
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = _limits(self.app_state)
        address = self.client[0] if self.client else None
        if address is not None and limits.counts(address):
            counts = _counts(self.app_state)
            if counts.count(address) >= limits.max_per_address:
                message = f"too many connections from {address}: at most {limits.max_per_address}"
                transport.write(_response(b"503 Service Unavailable", message))
                transport.close()
                return
            counts.take(address, transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            timeout = _limits(self.app_state).header_timeout
            self._header_timer = self.loop.call_later(timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            timeout = _limits(self.app_state).header_timeout
            message = f"the request headers did not arrive within {timeout:g} s"
            self.transport.write(_response(b"408 Request Timeout", message))
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        _counts(self.app_state).release(self.transport)
        super().connection_lost(exc)


class _Inbox:
    """What uvicorn's WebSocket protocol uses of an asyncio.Queue (put_nowait, get,
    empty), in a tenth of its memory: a queue holds three deques and an Event, ~3.5 KB
    for every open socket, most of them idle."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class _Flag:
    """What uvicorn's WebSocket protocol uses of an asyncio.Event, without its deque."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] = []

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> bool:
        if not self._set:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return True


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """Gives back its connection's place when it closes (it took it over from the HTTP
    protocol that upgraded), and holds less memory per socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            # Lets the live path write its prepared frames without the ASGI round trip
            # (execution/pipe.py); the socket's own state still decides.
            scope["extensions"][FRAME_WRITER] = self.write_frame

    def write_frame(self, frame: bytes) -> bool:
        """Writes a whole server frame at once when nothing stands in its way (the
        handshake done, no close, no extension that rewrites frames, the transport not
        paused); False when it must go the usual way."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.conn.extensions
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frame)
        return True

    def start_keepalive(self) -> None:
        # The handshake is answered: its request and response (headers twice over)
        # would otherwise stay for as long as the socket is open.
        self.request = None  # type: ignore[assignment]
        self.response = None  # type: ignore[assignment]
        super().start_keepalive()

    def connection_lost(self, exc: Exception | None) -> None:
        _counts(self.app_state).release(self.transport)
        super().connection_lost(exc)
