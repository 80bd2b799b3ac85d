"""Where a WebSocket subscription's frames go: one `Pipe` per socket for all its
operations, each operation's `Outlet` on it (gateway/ws_handlers.py makes them)."""

import asyncio
import dataclasses
import functools
from collections import deque
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError

from resolvers.context import Context

if TYPE_CHECKING:
    from execution.member import Member

# Bytes a socket may have waiting to be written (frames its operations share) before
# the operation whose frame does not fit is cut off.
MAX_PENDING_BYTES = 1_048_576

Classify = Callable[[list[GraphQLError], Context], list[GraphQLError]]


def text_frame(text: str) -> bytes:
    """`text` as one unmasked WebSocket text frame (RFC 6455), as a server sends it."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 65536:
        return bytes((0x81, 126)) + length.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + length.to_bytes(8, "big") + payload


class Pipe:
    """One socket's frames, whichever of its operations they are for: written at once
    when the socket takes them without waiting (no task is made for those), else queued
    behind the frame in flight, up to MAX_PENDING_BYTES for the socket."""

    def __init__(
        self,
        send: Callable[[str], Coroutine[Any, Any, None]],
        write_frame: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.send = send
        # Writes a prepared frame straight to the socket when it can (gateway/connections.py).
        self.write_frame = write_frame
        # Made when a frame must wait: an empty deque is 700 bytes, for every socket.
        self.pending: deque[tuple[str, Member | None]] | None = None
        self.pending_bytes = 0
        self.writer: asyncio.Task[None] | None = None
        self.members: set[Member] = set()

    def push(
        self,
        frame: str,
        member: "Member | None",
        *,
        force: bool = False,
        encoded: bytes | None = None,
    ) -> bool:
        """False when the frame does not fit behind those waiting. `member` None: a
        message of the protocol's own (the end of an operation), which always goes.
        `encoded`: the frame as WebSocket bytes, shared by every socket it goes to."""
        direct = self.writer is None and encoded is not None and self.write_frame is not None
        if direct and self.write_frame(encoded):  # type: ignore[misc, arg-type]
            return True
        if self.writer is not None:
            if not force and self.pending_bytes + len(frame) > MAX_PENDING_BYTES:
                return False
            if self.pending is None:
                self.pending = deque()
            self.pending.append((frame, member))
            self.pending_bytes += len(frame)
            if member is not None:
                member.in_flight += 1
            return True
        coro = self.send(frame)
        try:
            awaiting = coro.send(None)
        except StopIteration:
            return True
        except Exception:
            self._gone()
            return True
        if member is not None:
            member.in_flight += 1
        self.writer = asyncio.ensure_future(self._write(coro, awaiting, member))
        return True

    async def _write(
        self, coro: Coroutine[Any, Any, None], awaiting: Any, first: "Member | None"
    ) -> None:
        try:
            await _resume(coro, awaiting)
            if first is not None:
                first.written()
            while self.pending:
                frame, member = self.pending.popleft()
                self.pending_bytes -= len(frame)
                if member is None or not member.dropped:
                    await self.send(frame)
                if member is not None:
                    member.written()
        except Exception:
            self._gone()
        finally:
            self.writer = None
            self.pending = None

    def drop(self, member: "Member") -> None:
        """Forgets the frames waiting for `member` (cut off for falling behind)."""
        if self.pending is not None and any(m is member for _, m in self.pending):
            kept = deque((f, m) for f, m in self.pending if m is not member)
            self.pending_bytes = sum(len(f) for f, _ in kept)
            self.pending = kept
        member.in_flight = 0
        member.written()

    def _gone(self) -> None:
        """The socket is closed: strawberry cancels its operations; stop writing to it."""
        self.pending = None
        self.pending_bytes = 0
        for member in list(self.members):
            member.in_flight = 0
            member.end(None)


@dataclasses.dataclass(frozen=True, slots=True)
class Outlet:
    """Where a WebSocket operation's results go."""

    operation_id: str
    next_type: str  # "next" (graphql-transport-ws) or "data" (graphql-ws)
    pipe: Pipe
    classify: Classify


outlet: ContextVar[Outlet | None] = ContextVar("live_outlet", default=None)


async def _resume(coro: Coroutine[Any, Any, None], awaiting: Any) -> None:
    """Runs a coroutine that was started by hand and suspended on `awaiting` to its end,
    as a Task would have (Python 3.11 has no eager tasks)."""
    while True:
        try:
            if awaiting is None:
                await asyncio.sleep(0)
            else:
                awaiting._asyncio_future_blocking = False
                await awaiting
        except BaseException as error:
            if awaiting is not None and awaiting.done():
                step = functools.partial(coro.send, None)
            else:
                step = functools.partial(coro.throw, error)
        else:
            step = functools.partial(coro.send, None)
        try:
            awaiting = step()
        except StopIteration:
            return
