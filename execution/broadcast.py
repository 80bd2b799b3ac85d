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
from collections import OrderedDict, deque
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
from execution.plan import ObjectPlan, directive_variables, variables_of
from resolvers import validation
from resolvers.context import Context
from resolvers.errors import GatewayError, ServiceUnavailable, Unauthenticated, require_viewer_id

log = logging.getLogger(__name__)

# Bytes a socket may have waiting to be written (frames its operations share) before
# the operation whose frame does not fit is cut off.
MAX_PENDING_BYTES = 1_048_576
# Events the broadcaster itself may have waiting while it delivers one.
MAX_PENDING_EVENTS = 10_000
# Values an in-process subscriber (no socket) may have waiting.
MAX_PENDING_VALUES = 100
MAX_SUBSCRIBED_TAGS = 50
# Documents whose plans are kept for the subscriptions that ask them.
MAX_DOCUMENTS = 500

Classify = Callable[[list[GraphQLError], Context], list[GraphQLError]]


class SlowConsumer(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__()
        self.message = "This subscription fell too far behind and was ended: subscribe again."


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
            target.pipe.members.add(self)
        self.values: asyncio.Queue[Any] | None = None
        if target is None:
            self.values = asyncio.Queue(maxsize=MAX_PENDING_VALUES)
        # Frames accepted by the socket's pipe and not written yet.
        self.in_flight = 0
        self.dropped = False
        self._flushed: asyncio.Future[None] | None = None
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
            assert self.values is not None
            if self.values.full():
                self.end(SlowConsumer())
            else:
                self.values.put_nowait(value)
            return
        assert frame is not None
        if not self.outlet.pipe.push(frame, self):
            self.end(SlowConsumer())

    def written(self) -> None:
        if self.in_flight > 0:
            self.in_flight -= 1
        if self.in_flight == 0 and self._flushed is not None and not self._flushed.done():
            self._flushed.set_result(None)

    def end(self, error: GatewayError | None) -> None:
        """Ends the subscription once the frames already accepted are written; a slow
        consumer's backlog is dropped instead."""
        if self.ending:
            return
        self.ending = True
        if isinstance(error, SlowConsumer) and self.outlet is not None:
            self.dropped = True
            self.outlet.pipe.drop(self)
        if self.leave is not None:
            self.leave(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.ended.done():
            self.ended.set_result(error)

    async def wait(self) -> None:
        """Until the subscription ends; raises what ended it, if anything did."""
        try:
            error = await asyncio.shield(self.ended)
            # Let what was accepted before the end leave before the last message.
            if self.in_flight > 0:
                self._flushed = asyncio.get_running_loop().create_future()
                await self._flushed
        finally:
            self._settle()
        if error is not None:
            raise error

    async def values_until_end(self) -> AsyncIterator[Any]:
        """Each value delivered, until the subscription ends (raising what ended it)."""
        assert self.values is not None
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
        if self.outlet is not None:
            self.dropped = True
            self.outlet.pipe.members.discard(self)
        if self.leave is not None:
            self.leave(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Broadcaster:
    """The live path of one process: its bus, the executor that builds answers, and the
    subscriptions it serves."""

    def __init__(self, bus: EventBus, executor: Executor, *, connections: int = 2) -> None:
        self.bus = bus
        self.executor = executor
        self.published: dict[Member, None] = {}  # contentPublished, in joining order
        self.notified: dict[int, dict[Member, None]] = {}  # notifications, by recipient
        self.by_viewer: dict[int, set[Member]] = {}
        self.task: asyncio.Task[None] | None = None
        # Event work holds at most this many database connections at once; the rest of
        # it waits here, not in the pool that requests share.
        self.connections = asyncio.Semaphore(connections)
        # (operation, type, @skip/@include values) -> (operation, document key, plan):
        # subscriptions asking the same document share one plan and one group key.
        self._plans: OrderedDict[Hashable, tuple[Any, Hashable, ObjectPlan]] = OrderedDict()

    # --- subscribing --------------------------------------------------------------------

    def _planned(self, raw: Any, type_name: str) -> tuple[Hashable, ObjectPlan]:
        variables = variables_of(raw)
        names = directive_variables(raw.operation, raw.fragments)
        # The parsed document is cached by its text (gateway/documents.py), so the same
        # text comes as the same node; the entry keeps it alive, so its id is not reused.
        key = (
            id(raw.operation),
            type_name,
            tuple(repr(variables.coerced.get(n)) for n in names),
        )
        found = self._plans.get(key)
        if found is not None and found[0] is raw.operation:
            self._plans.move_to_end(key)
            return found[1], found[2]
        plan, _ = self.executor.planner.object(
            type_name, list(raw.field_nodes), raw.fragments, variables
        )
        document = (print_ast(raw.operation), tuple(print_ast(f) for f in raw.fragments.values()))
        self._plans[key] = (raw.operation, document, plan)
        if len(self._plans) > MAX_DOCUMENTS:
            self._plans.popitem(last=False)
        return document, plan

    def _member(self, info: Any, type_name: str, wanted: frozenset[str] | None = None) -> Member:
        raw = info._raw_info
        document, plan = self._planned(raw, type_name)
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
        async with self.connections:
            audience = await self.executor.audience(db, content_id, members)
        groups: dict[Hashable, list[Member]] = {}
        for member in members:
            if member.viewer_id is not None and audience.muted(member.viewer_id):
                continue
            if member.wanted is not None and member.wanted.isdisjoint(audience.tags):
                continue
            groups.setdefault(member.group, []).append(member)
        await self._deliver_all(groups, "Content", content_id, audience)

    async def _notification(self, notification_id: int, recipient: int) -> None:
        members = list(self.notified.get(recipient, {}))
        groups: dict[Hashable, list[Member]] = {}
        for member in members:
            groups.setdefault(member.group, []).append(member)
        await self._deliver_all(groups, "Notification", notification_id, None)

    async def _deliver_all(
        self, groups: dict[Hashable, list[Member]], type_name: str, pk: int, audience: Any
    ) -> None:
        """Each group's statement, as many at once as the event's connections allow; a
        group's answers leave as soon as its statement returns."""
        if len(groups) == 1:
            (group,) = groups.values()
            await self._deliver(group, type_name, pk, audience)
            return
        results = await asyncio.gather(
            *(self._deliver(group, type_name, pk, audience) for group in groups.values()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("live delivery to a group failed", exc_info=result)

    async def _deliver(self, group: list[Member], type_name: str, pk: int, audience: Any) -> None:
        """One statement answers the whole group: for each distinct audience in it (or
        each viewer, when the document depends on more than an audience holds)."""
        first = group[0]
        by_answer: dict[Hashable, list[Member]] = {}
        for member in group:
            key = audience.key(member) if audience is not None else member.viewer_id
            by_answer.setdefault(key, []).append(member)
        viewers = [members[0].viewer_id for members in by_answer.values()]
        async with self.connections:
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
