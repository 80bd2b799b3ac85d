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


class Pipe:
    """One socket's frames, whichever of its operations they are for: written at once
    when the socket takes them without waiting (no task is made for those), else queued
    behind the frame in flight, up to MAX_PENDING_BYTES for the socket."""

    def __init__(self, send: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self.send = send
        self.pending: deque[tuple[str, Member]] = deque()
        self.pending_bytes = 0
        self.writer: asyncio.Task[None] | None = None
        self.members: set[Member] = set()

    def push(self, frame: str, member: "Member") -> bool:
        """False when the frame does not fit behind those waiting."""
        if self.writer is not None:
            if self.pending_bytes + len(frame) > MAX_PENDING_BYTES:
                return False
            self.pending.append((frame, member))
            self.pending_bytes += len(frame)
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
        member.in_flight += 1
        self.writer = asyncio.ensure_future(self._write(coro, awaiting, member))
        return True

    async def _write(self, coro: Coroutine[Any, Any, None], awaiting: Any, first: "Member") -> None:
        try:
            await _resume(coro, awaiting)
            first.written()
            while self.pending:
                frame, member = self.pending.popleft()
                self.pending_bytes -= len(frame)
                if not member.dropped:
                    await self.send(frame)
                member.written()
        except Exception:
            self._gone()
        finally:
            self.writer = None

    def drop(self, member: "Member") -> None:
        """Forgets the frames waiting for `member` (cut off for falling behind)."""
        if any(m is member for _, m in self.pending):
            kept = deque((f, m) for f, m in self.pending if m is not member)
            self.pending_bytes = sum(len(f) for f, _ in kept)
            self.pending = kept
        member.in_flight = 0
        member.written()

    def _gone(self) -> None:
        """The socket is closed: strawberry cancels its operations; stop writing to it."""
        self.pending.clear()
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
