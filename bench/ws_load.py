"""Lean WebSocket subscribers for bench.subscribers: graphql-transport-ws on raw asyncio
protocols, no WebSocket library. Server frames are unmasked and small, so a frame is a
header and a slice, and a title is found in a payload's bytes without parsing its JSON;
client frames are masked with a zero key (allowed: RFC 6455 asks for a mask, not a
secret one). That keeps the load generator's CPU per message a fraction of what a
library costs, so it does not compete with the gateway it measures.

`run_subscribers` runs in its own process (one per share of the subscribers: a process
holds at most ~19,000 sockets here) and reports each subscriber's arrival times."""

import asyncio
import base64
import gc
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

_NEXT = b'"type":"next"'
_TITLE = b'"title":"'


def _frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame with a zero masking key."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + b"\x00\x00\x00\x00" + payload


@dataclass(eq=False)
class Spec:
    token: str | None
    only_python: bool


@dataclass(eq=False)
class LeanSubscriber(asyncio.Protocol):
    spec: Spec
    query: str
    received: dict[str, list[float]] = field(default_factory=dict)
    ready: asyncio.Future[None] | None = None
    transport: Any = None
    buffer: bytearray = field(default_factory=bytearray)
    upgraded: bool = False
    acked: bool = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                "GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )

    def _send(self, message: dict[str, Any]) -> None:
        self.transport.write(_frame(orjson.dumps(message)))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(bytes(buffer[:200]).decode(errors="replace"))
            del buffer[: end + 4]
            self.upgraded = True
            payload = {"authorization": f"Bearer {self.spec.token}"} if self.spec.token else {}
            self._send({"type": "connection_init", "payload": payload})
        while len(buffer) >= 2:
            opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
            at = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                (length,) = struct.unpack_from("!H", buffer, 2)
                at = 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                (length,) = struct.unpack_from("!Q", buffer, 2)
                at = 10
            if len(buffer) < at + length:
                return
            data = bytes(buffer[at : at + length])
            del buffer[: at + length]
            if opcode == 0x1:
                self._text(data, now)
            elif opcode == 0x9:  # ping
                self.transport.write(_frame(data, 0xA))
            elif opcode == 0x8:
                self.transport.close()
                return

    def _text(self, payload: bytes, now: float) -> None:
        if _NEXT in payload:
            start = payload.find(_TITLE) + len(_TITLE)
            title = payload[start : payload.index(b'"', start)].decode()
            self.received.setdefault(title, []).append(now)
            return
        if not self.acked and b"connection_ack" in payload:
            self.acked = True
            variables = {"tags": ["python"]} if self.spec.only_python else {}
            self._send(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": self.query, "variables": variables},
                }
            )
            if self.ready is not None and not self.ready.done():
                self.ready.set_result(None)
        elif b'"type":"ping"' in payload:
            self._send({"type": "pong"})


async def _run(
    port: int, query: str, specs: list[Spec], concurrency: int, source: str, start: Any, stop: Any
) -> tuple[list[dict[str, list[float]]], list[float]]:
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(concurrency)
    subscribers: list[LeanSubscriber] = []
    connect_times: list[float] = []

    async def one(spec: Spec) -> None:
        async with limit:
            started = time.perf_counter()
            subscriber = LeanSubscriber(spec, query, ready=loop.create_future())
            subscribers.append(subscriber)
            await loop.create_connection(
                lambda: subscriber, "127.0.0.1", port, local_addr=(source, 0)
            )
            assert subscriber.ready is not None
            await asyncio.wait_for(subscriber.ready, 120)
            connect_times.append(time.perf_counter() - started)

    await asyncio.gather(*(one(spec) for spec in specs))
    # A measuring client must not pause: its full collections over thousands of sockets
    # stalled its reading for ~100 ms at the same events of every run, time that was
    # counted as the gateway's latency. What it allocates while listening is kept.
    gc.collect()
    gc.freeze()
    gc.disable()
    start.set()
    await asyncio.to_thread(stop.wait)
    for subscriber in subscribers:
        subscriber.transport.close()
    return [s.received for s in subscribers], connect_times


def run_subscribers(
    index: int,
    port: int,
    query: str,
    specs: list[Spec],
    concurrency: int,
    source: str,
    cpus: set[int] | None,
    start: Any,
    stop: Any,
    results: Any,
) -> None:
    """Share `index`: connects, subscribes, sets `start`, listens until `stop`, then puts
    (index, received times per subscriber, connect times) on `results`."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    received, connect_times = asyncio.run(
        _run(port, query, specs, concurrency, source, start, stop)
    )
    results.put((index, received, connect_times))
