"""The broadcast path of a live fan-out: one place writes each event's frames to every
socket, instead of each socket's chain of async generators waking for it.

A contentPublished subscription over WebSocket with a shareable document (see
schema/live_sharing.py) joins its process's `Broadcaster` and then waits, idle, inside
strawberry's operation until it ends. For each event the broadcaster decides who gets
it (resolvers/live.py `PublishedEvent.audiences`: access, mutes, tags, in one statement
per question), executes the document once per (document, variables, audience),
serializes the payload once, and writes `{"id": ..., "type": "next", "payload": ...}`
to each socket of that audience. That was 372 us of gateway CPU per delivery through
the per-socket path at 10,000 subscribers (docs/performance.md).

What ends a subscription (expiry, logout, falling behind, the bus stopping) resolves the
waiting operation, which then raises or returns through strawberry as before: errors
are masked and classified, and `complete` is sent by the protocol handler. Completing
from the client cancels the operation, which leaves the broadcaster.
"""

import asyncio
import dataclasses
import functools
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Hashable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from graphql import DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema, execute
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from db.notify import Closed, EventBus, Overflow
from db.tables import Content as ContentRow
from resolvers import live
from resolvers.context import Context
from resolvers.errors import GatewayError, Unauthenticated
from schema.content import Content

log = logging.getLogger(__name__)

# Frames a socket may have waiting to be written before it is cut off: the same bound
# as the bus's per-subscriber queue.
MAX_PENDING_FRAMES = 100
# Events the broadcaster itself may have waiting while it resolves one.
MAX_PENDING_EVENTS = 10_000

Classify = Callable[[list[GraphQLError], Context], list[GraphQLError]]


@dataclasses.dataclass(frozen=True, slots=True)
class Outlet:
    """Where a WebSocket operation's results go: set by the protocol handler
    (gateway/ws_handlers.py) for the operation's task, read by the subscription."""

    operation_id: str
    next_type: str  # "next" (graphql-transport-ws) or "data" (graphql-ws)
    send: Callable[[str], Coroutine[Any, Any, None]]
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
                # As a Task does with what a coroutine yields: the future was marked as
                # awaited when it was yielded, and is awaited again here.
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


class Member:
    """One subscription on the broadcast path, and its socket's frames in flight."""

    __slots__ = (
        "broadcaster",
        "ctx",
        "document",
        "document_key",
        "ended",
        "ending",
        "operation_name",
        "outlet",
        "pending",
        "prefix",
        "timer",
        "variables",
        "viewer",
        "writer",
    )

    def __init__(
        self,
        ctx: Context,
        viewer: live.LiveViewer,
        document: DocumentNode,
        document_key: Hashable,
        variables: dict[str, Any],
        operation_name: str | None,
        outlet: Outlet,
    ) -> None:
        self.ctx = ctx
        self.viewer = viewer
        self.document = document
        self.document_key = document_key
        self.variables = variables
        self.operation_name = operation_name
        self.outlet = outlet
        op_id = orjson.dumps(outlet.operation_id).decode()
        self.prefix = f'{{"id":{op_id},"type":"{outlet.next_type}","payload":'
        self.pending: deque[str] = deque()
        self.writer: asyncio.Task[None] | None = None
        self.ending = False
        # What the waiting operation is told when it must end: None to complete.
        self.ended: asyncio.Future[GatewayError | None] = asyncio.get_running_loop().create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.broadcaster: Broadcaster | None = None

    def push(self, frame: str) -> None:
        """Writes `frame` now if the socket takes it without waiting; else queues it
        behind the frames in flight, and cuts the subscription off past the bound."""
        if self.ending:
            return
        if self.writer is not None:
            if len(self.pending) >= MAX_PENDING_FRAMES:
                self.end(live.SlowConsumer())
                return
            self.pending.append(frame)
            return
        # Most writes complete without suspending (the transport takes the bytes): no
        # task is made for them. One that suspends continues in a task.
        coro = self.outlet.send(frame)
        try:
            awaiting = coro.send(None)
        except StopIteration:
            return
        except Exception:
            self._gone()
            return
        self.writer = asyncio.ensure_future(self._write(coro, awaiting))

    async def _write(self, coro: Coroutine[Any, Any, None], awaiting: Any) -> None:
        try:
            await _resume(coro, awaiting)
            while self.pending:
                await self.outlet.send(self.pending.popleft())
        except Exception:
            self._gone()
        finally:
            self.writer = None

    def end(self, error: GatewayError | None) -> None:
        """Ends the subscription once the frames already accepted are written; a slow
        consumer's backlog is dropped instead."""
        if self.ending:
            return
        self.ending = True
        if isinstance(error, live.SlowConsumer):
            # Its backlog is dropped, and the write in flight too: it waits for a socket
            # that does not read.
            self.pending.clear()
            if self.writer is not None:
                self.writer.cancel()
        if self.broadcaster is not None:
            self.broadcaster.leave(self)
        self._settle()
        if not self.ended.done():
            self.ended.set_result(error)

    def _settle(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _gone(self) -> None:
        """The socket is closed: strawberry cancels the operation; stop writing to it."""
        self.pending.clear()
        self.end(None)

    async def wait(self) -> None:
        """Until the subscription ends; raises what ended it, if anything did."""
        try:
            error = await asyncio.shield(self.ended)
            # Let what was accepted before the end leave before the last message.
            while self.writer is not None:
                await asyncio.wait({self.writer})
        finally:
            self.ending = True
            self.pending.clear()
            if self.broadcaster is not None:
                self.broadcaster.leave(self)
            self._settle()
        if error is not None:
            raise error


class Broadcaster:
    """The broadcast path for one process's event bus."""

    def __init__(self, bus: EventBus, schema: GraphQLSchema) -> None:
        self.bus = bus
        self.schema = schema
        self.members: dict[Member, None] = {}  # in joining order
        self.by_viewer: dict[int, set[Member]] = {}
        self.task: asyncio.Task[None] | None = None

    def join(self, member: Member) -> None:
        member.broadcaster = self
        self.members[member] = None
        if member.viewer.viewer_id is not None:
            self.by_viewer.setdefault(member.viewer.viewer_id, set()).add(member)
        expires_at = member.ctx.token_expires_at
        if expires_at is not None:
            loop = asyncio.get_running_loop()
            delay = (expires_at - datetime.now(UTC)).total_seconds()
            member.timer = loop.call_later(
                max(delay, 0), member.end, Unauthenticated("The token has expired: sign in again.")
            )
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="live-broadcast")

    def leave(self, member: Member) -> None:
        self.members.pop(member, None)
        viewer_id = member.viewer.viewer_id
        if viewer_id is not None:
            same = self.by_viewer.get(viewer_id)
            if same is not None:
                same.discard(member)
                if not same:
                    del self.by_viewer[viewer_id]

    def _accepts(self, event: dict[str, Any]) -> bool:
        kind = event.get("type")
        return kind == "content_published" or (
            kind == "token_revoked" and event.get("user") in self.by_viewer
        )

    async def _run(self) -> None:
        with self.bus.subscribe(self._accepts, queue_size=MAX_PENDING_EVENTS) as subscriber:
            try:
                async for event in subscriber:
                    if event.get("type") == "token_revoked":
                        revoked = Unauthenticated("The token has been revoked: sign in again.")
                        for member in list(self.by_viewer.get(event.get("user"), ())):
                            member.end(revoked)
                        continue
                    try:
                        await self._publish(event)
                    except Exception:
                        log.exception("live broadcast of %s failed", event)
            except Closed:
                for member in list(self.members):
                    member.end(None)
            except Overflow:
                for member in list(self.members):
                    member.end(live.SlowConsumer())

    async def _publish(self, event: dict[str, Any]) -> None:
        members = list(self.members)
        if not members:
            return
        first = members[0].ctx
        content_id, author_id = int(event["id"]), int(event["author"])
        shared = self.bus.shared(
            ("content_published", event.get("event"), content_id),
            functools.partial(
                live.PublishedEvent,
                first.db,
                content_id,
                author_id,
                half_life_days=first.ranking.habit_half_life_days,
            ),
        )
        audiences = await shared.audiences([m.viewer for m in members])
        groups: dict[Hashable, list[Member]] = {}
        rows: dict[Hashable, ContentRow] = {}
        for member, found in zip(members, audiences, strict=True):
            if found is None:
                continue
            row, audience = found
            key = (member.document_key, audience)
            group = groups.get(key)
            if group is None:
                group = groups[key] = []
                rows[key] = row
            group.append(member)
        payloads = await asyncio.gather(
            *(self._payload(shared, group[0], rows[key]) for key, group in groups.items())
        )
        for group, payload in zip(groups.values(), payloads, strict=True):
            frames: dict[str, str] = {}
            for member in group:
                frame = frames.get(member.prefix)
                if frame is None:
                    frame = frames[member.prefix] = f"{member.prefix}{payload}}}"
                member.push(frame)

    async def _payload(self, shared: live.PublishedEvent, member: Member, row: ContentRow) -> str:
        """The serialized result of `member`'s document for its audience."""
        ctx = dataclasses.replace(member.ctx, deliveries={})
        ctx.refresh_loaders()
        await shared.prime(ctx, row)
        result = execute(
            self.schema,
            member.document,
            root_value=Content.from_row(row),
            context_value=ctx,
            variable_values=member.variables,
            operation_name=member.operation_name,
            executor_class=StrawberryGraphQLCoreExecutionContext,
        )
        if not isinstance(result, ExecutionResult):
            result = await result
        assert isinstance(result, ExecutionResult)
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            errors = member.outlet.classify(list(result.errors), ctx)
            payload["errors"] = [error.formatted for error in errors]
        return orjson.dumps(payload).decode()


_broadcasters: "WeakKeyDictionary[EventBus, Broadcaster]" = WeakKeyDictionary()


def broadcaster_of(bus: EventBus, schema: GraphQLSchema) -> Broadcaster:
    found = _broadcasters.get(bus)
    if found is None:
        found = _broadcasters[bus] = Broadcaster(bus, schema)
    return found
