"""A closed-loop HTTP/1.1 load generator on raw asyncio streams: N keep-alive
connections, each sending the same prebuilt request as soon as the previous answer is
read. Cheap on CPU (no HTTP library, no JSON parsing while measuring), so on a small
machine most of the cores stay with the servers under test."""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson


@dataclass(frozen=True, slots=True)
class Request:
    host: str
    port: int
    raw: bytes

    @classmethod
    def post_json(
        cls, host: str, port: int, path: str, body: object, headers: dict[str, str]
    ) -> "Request":
        payload = orjson.dumps(body)
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        return cls(host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + payload)


class BadResponse(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lowered.index(b"\r\n", at + 2)
        return status, await reader.readexactly(int(head[at + 17 : end]))
    if b"\r\ntransfer-encoding: chunked" in lowered:
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(chunks)
            chunks.append(chunk[:-2])
    raise BadResponse("response without Content-Length or chunked body")


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> "Connection":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        return await _read_response(self.reader)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def fetch(request: Request) -> tuple[int, bytes]:
    """One request on a connection of its own."""
    connection = await Connection.open(request.host, request.port)
    try:
        return await connection.send(request.raw)
    finally:
        await connection.close()


@dataclass(slots=True)
class LoadResult:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    # CPU seconds of this (load-generating) process during the measured phase.
    client_cpu: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def run_load(
    request: Request,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    on_start: Callable[[], None] = lambda: None,
    progress: Callable[[str], None] = lambda _: None,
) -> LoadResult:
    """`warmup` seconds of load that is not counted, then `duration` seconds measured:
    each connection stops starting requests at the deadline and finishes the one in
    flight; throughput is completed requests over the time until the last finished.
    `on_start` runs when measuring begins (to snapshot CPU counters)."""
    connections = [await Connection.open(request.host, request.port) for _ in range(concurrency)]
    result = LoadResult()
    measuring = False
    deadline = time.perf_counter() + warmup
    done_in_phase = 0

    async def worker(connection: Connection) -> None:
        nonlocal done_in_phase
        raw = request.raw
        while True:
            started = time.perf_counter()
            if started >= deadline:
                return
            try:
                status, body = await connection.send(raw)
            except (OSError, asyncio.IncompleteReadError, BadResponse) as error:
                result.errors += 1
                result.first_error = result.first_error or repr(error)
                return
            took = time.perf_counter() - started
            done_in_phase += 1
            if not measuring:
                continue
            # A cheap look for GraphQL errors: no JSON parsing while measuring.
            if status != 200 or b'"errors"' in body:
                result.errors += 1
                result.first_error = result.first_error or f"HTTP {status}: {body[:300]!r}"
            else:
                result.latencies.append(took)

    async def ticker(label: str, length: float) -> None:
        began = time.perf_counter()
        while True:
            await asyncio.sleep(1.0)
            elapsed = time.perf_counter() - began
            progress(
                f"{label} {min(elapsed, length):4.0f}/{length:.0f} s,"
                f" {done_in_phase / elapsed:7.1f} req/s"
            )

    try:
        if warmup > 0:
            tick = asyncio.create_task(ticker("warm-up", warmup))
            await asyncio.gather(*(worker(c) for c in connections))
            tick.cancel()
        measuring = True
        done_in_phase = 0
        on_start()
        cpu_before = time.process_time()
        began = time.perf_counter()
        deadline = began + duration
        tick = asyncio.create_task(ticker("measuring", duration))
        await asyncio.gather(*(worker(c) for c in connections))
        tick.cancel()
        result.seconds = time.perf_counter() - began
        result.client_cpu = time.process_time() - cpu_before
    finally:
        for connection in connections:
            await connection.close()
    return result
