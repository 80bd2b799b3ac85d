"""Live delivery, one path for every subscription: each process's `Broadcaster` hears
events on the bus, decides who gets each one, builds each distinct answer once with one
statement per document (not per subscriber: db/reads/audience.py, execution/executor.py
`payloads`), serializes it once, and writes the frame to every socket it is for.

A subscription over WebSocket has an `Outlet` (set by gateway/ws_handlers.py for its
operation's task): its frames are written from here, and the operation only waits for
its end. Other subscribers (in-process callers) get each answer as the value their
generator yields. What ends a subscription (its token expiring or revoked, falling
behind, the bus stopping) ends the wait with the reason, which strawberry then reports
(masked, classified) before `complete`."""

import asyncio
import dataclasses
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from graphql import GraphQLError, print_ast
from graphql.execution.values import VariableValues

from db.notify import Closed, EventBus, Overflow
from db.reads.shape import ViewerKind
from execution.binding import viewer_kind
from execution.executor import Executor, Payloads
from execution.plan import ObjectPlan, variables_of
from resolvers import validation
from resolvers.context import Context
from resolvers.errors import GatewayError, ServiceUnavailable, Unauthenticated, require_viewer_id

log = logging.getLogger(__name__)

# Frames a socket may have waiting to be written before it is cut off.
MAX_PENDING_FRAMES = 100
# Events the broadcaster itself may have waiting while it delivers one.
MAX_PENDING_EVENTS = 10_000
MAX_SUBSCRIBED_TAGS = 50

Classify = Callable[[list[GraphQLError], Context], list[GraphQLError]]


class SlowConsumer(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__()
        self.message = "This subscription fell too far behind and was ended: subscribe again."


@dataclasses.dataclass(frozen=True, slots=True)
class Outlet:
    """Where a WebSocket operation's results go."""

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


def wanted_tags(tags: list[str] | None) -> frozenset[str] | None:
    """The normalized tag filter of a subscription; BAD_USER_INPUT for a bad one."""
    if not tags:
        return None
    return frozenset(validation.tag_names(tags, field="tags", maximum=MAX_SUBSCRIBED_TAGS))


class Member:
    """One subscription: what it asked for, for whom, and its frames in flight."""

    def __init__(
        self,
        ctx: Context,
        plan: ObjectPlan,
        document: Hashable,
        variables: VariableValues,
        key: str,
        target: Outlet | None,
        wanted: frozenset[str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.plan = plan
        self.document = document
        self.variables = variables
        self.variables_key = orjson.dumps(variables.coerced, option=orjson.OPT_SORT_KEYS)
        self.key = key
        self.outlet = target
        self.wanted = wanted
        self.kind = viewer_kind(ctx)
        self.viewer_id = ctx.viewer.id
        self.prefix = ""
        if target is not None:
            op_id = orjson.dumps(target.operation_id).decode()
            self.prefix = f'{{"id":{op_id},"type":"{target.next_type}","payload":'
        self.values: asyncio.Queue[Any] = asyncio.Queue(maxsize=MAX_PENDING_FRAMES)
        self.pending: deque[str] = deque()
        self.writer: asyncio.Task[None] | None = None
        self.ending = False
        # What the subscription is told when it must end: None to complete.
        self.ended: asyncio.Future[GatewayError | None] = asyncio.get_running_loop().create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.leave: Callable[[Member], None] | None = None

    @property
    def group(self) -> Hashable:
        """Subscribers who asked the same thing the same way."""
        return (self.document, self.variables_key, self.kind)

    def deliver(self, value: Any, frame: str | None) -> None:
        if self.ending:
            return
        if self.outlet is None:
            if self.values.full():
                self.end(SlowConsumer())
            else:
                self.values.put_nowait(value)
            return
        assert frame is not None
        self._push(frame)

    def _push(self, frame: str) -> None:
        """Writes `frame` now if the socket takes it without waiting; else queues it
        behind the frames in flight, and cuts the subscription off past the bound."""
        if self.writer is not None:
            if len(self.pending) >= MAX_PENDING_FRAMES:
                self.end(SlowConsumer())
                return
            self.pending.append(frame)
            return
        assert self.outlet is not None
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
                assert self.outlet is not None
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
        if isinstance(error, SlowConsumer):
            self.pending.clear()
            if self.writer is not None:
                self.writer.cancel()
        if self.leave is not None:
            self.leave(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.ended.done():
            self.ended.set_result(error)

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
            self._settle()
        if error is not None:
            raise error

    async def values_until_end(self) -> AsyncIterator[Any]:
        """Each value delivered, until the subscription ends (raising what ended it)."""
        try:
            while True:
                getter = asyncio.ensure_future(self.values.get())
                done, _ = await asyncio.wait(
                    {getter, self.ended}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                error = self.ended.result()
                if error is not None:
                    raise error
                return
        finally:
            self._settle()

    def _settle(self) -> None:
        self.ending = True
        self.pending.clear()
        if self.leave is not None:
            self.leave(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Broadcaster:
    """The live path of one process: its bus, the executor that builds answers, and the
    subscriptions it serves."""

    def __init__(self, bus: EventBus, executor: Executor) -> None:
        self.bus = bus
        self.executor = executor
        self.published: dict[Member, None] = {}  # contentPublished, in joining order
        self.notified: dict[int, dict[Member, None]] = {}  # notifications, by recipient
        self.by_viewer: dict[int, set[Member]] = {}
        self.task: asyncio.Task[None] | None = None

    # --- subscribing --------------------------------------------------------------------

    def _member(self, info: Any, type_name: str, wanted: frozenset[str] | None = None) -> Member:
        raw = info._raw_info
        document = (print_ast(raw.operation), tuple(print_ast(f) for f in raw.fragments.values()))
        plan, _ = self.executor.planner.object(
            type_name, list(raw.field_nodes), raw.fragments, variables_of(raw)
        )
        return Member(
            info.context,
            plan,
            document,
            variables_of(raw),
            raw.path.key,
            outlet.get(),
            wanted,
        )

    async def content_published(self, info: Any, tags: list[str] | None) -> AsyncIterator[Any]:
        member = self._member(info, "Content", wanted_tags(tags))
        self._join(member, self.published)
        async for value in self._until_end(member, info):
            yield value

    async def notifications(self, info: Any) -> AsyncIterator[Any]:
        viewer_id = require_viewer_id(info.context.viewer.id, "receive notifications")
        member = self._member(info, "Notification")
        self._join(member, self.notified.setdefault(viewer_id, {}))
        async for value in self._until_end(member, info):
            yield value

    async def _until_end(self, member: Member, info: Any) -> AsyncIterator[Any]:
        if member.outlet is not None:
            # The frames are written from here; the operation only waits for its end.
            await member.wait()
            return
        from schema.compiled import adapt

        async for value in member.values_until_end():
            yield adapt(value, info._raw_info.return_type)

    def _join(self, member: Member, members: dict[Member, None]) -> None:
        members[member] = None
        if member.viewer_id is not None:
            self.by_viewer.setdefault(member.viewer_id, set()).add(member)
        member.leave = functools.partial(self._leave, members=members)
        expires_at = member.ctx.token_expires_at
        if expires_at is not None:
            delay = (expires_at - datetime.now(UTC)).total_seconds()
            member.timer = asyncio.get_running_loop().call_later(
                max(delay, 0), member.end, Unauthenticated("The token has expired: sign in again.")
            )
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="live-broadcast")

    def _leave(self, member: Member, *, members: dict[Member, None]) -> None:
        members.pop(member, None)
        if member.viewer_id is not None:
            same = self.by_viewer.get(member.viewer_id)
            if same is not None:
                same.discard(member)
                if not same:
                    del self.by_viewer[member.viewer_id]

    # --- events -------------------------------------------------------------------------

    def _accepts(self, event: dict[str, Any]) -> bool:
        kind = event.get("type")
        if kind == "content_published":
            return bool(self.published)
        if kind == "notification":
            return event.get("recipient") in self.notified
        return kind == "token_revoked" and event.get("user") in self.by_viewer

    def _everyone(self) -> list[Member]:
        return [*self.published, *(m for ms in self.notified.values() for m in ms)]

    async def _run(self) -> None:
        with self.bus.subscribe(self._accepts, queue_size=MAX_PENDING_EVENTS) as subscriber:
            try:
                async for event in subscriber:
                    kind = event.get("type")
                    if kind == "token_revoked":
                        revoked = Unauthenticated("The token has been revoked: sign in again.")
                        for member in list(self.by_viewer.get(event.get("user"), ())):
                            member.end(revoked)
                        continue
                    try:
                        if kind == "content_published":
                            await self._published(int(event["id"]))
                        elif kind == "notification":
                            await self._notification(int(event["id"]), int(event["recipient"]))
                    except Exception:
                        log.exception("live delivery of %s failed", event)
            except Closed:
                for member in self._everyone():
                    member.end(None)
            except Overflow:
                for member in self._everyone():
                    member.end(SlowConsumer())

    async def _published(self, content_id: int) -> None:
        members = list(self.published)
        if not members:
            return
        db = members[0].ctx.db
        audience = await self.executor.audience(db, content_id, members)
        groups: dict[Hashable, list[Member]] = {}
        for member in members:
            if member.viewer_id is not None and audience.muted(member.viewer_id):
                continue
            if member.wanted is not None and member.wanted.isdisjoint(audience.tags):
                continue
            groups.setdefault(member.group, []).append(member)
        for group in groups.values():
            await self._deliver(group, "Content", content_id, audience)

    async def _notification(self, notification_id: int, recipient: int) -> None:
        members = list(self.notified.get(recipient, {}))
        groups: dict[Hashable, list[Member]] = {}
        for member in members:
            groups.setdefault(member.group, []).append(member)
        for group in groups.values():
            await self._deliver(group, "Notification", notification_id, None)

    async def _deliver(self, group: list[Member], type_name: str, pk: int, audience: Any) -> None:
        """One statement answers the whole group: for each distinct audience in it (or
        each viewer, when the document depends on more than an audience holds)."""
        first = group[0]
        by_answer: dict[Hashable, list[Member]] = {}
        for member in group:
            key = audience.key(member) if audience is not None else member.viewer_id
            by_answer.setdefault(key, []).append(member)
        viewers = [members[0].viewer_id for members in by_answer.values()]
        payloads: Payloads = await self.executor.payloads(
            first.ctx, first.plan, first.variables, first.kind, type_name, pk, viewers
        )
        for members, viewer_id in zip(by_answer.values(), viewers, strict=True):
            value = payloads.get(viewer_id)
            if value is None:
                continue  # not for this audience to see
            serialized = orjson.dumps({"data": {first.key: value}}).decode()
            frames: dict[str, str] = {}
            for member in members:
                frame = None
                if member.outlet is not None:
                    frame = frames.get(member.prefix)
                    if frame is None:
                        frame = frames[member.prefix] = f"{member.prefix}{serialized}}}"
                member.deliver(value, frame)


def require_bus(ctx: Context) -> None:
    if ctx.bus is None:
        raise ServiceUnavailable()


__all__ = ["Broadcaster", "Member", "Outlet", "SlowConsumer", "ViewerKind", "outlet"]
