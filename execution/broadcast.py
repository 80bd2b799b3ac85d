"""Live delivery, one path for every subscription: each process's `Broadcaster` gets the
event log's events in order from its follower (db/log_follower.py), decides who gets
each one, builds each distinct answer once with one statement per document (not per
subscriber: db/reads/audience.py, execution/executor.py `payloads`), serializes it once,
and writes the frame to every socket it is for.

A subscription that resumes (`after`) first has the events since its cursor replayed
through the same path, with the same filters, then joins the live ones at the event the
follower has reached: every event once, in order (execution/catch_up.py).

A subscription over WebSocket has an `Outlet` (set by gateway/ws_handlers.py for its
operation's task): its frames are written from here, and the operation only waits for
its end. Other subscribers (in-process callers) get each answer as the value their
generator yields. What ends a subscription (its token expiring or revoked, falling
behind, the process stopping) ends the wait with the reason, which strawberry then
reports (masked, classified) before `complete`."""

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from graphql import print_ast
from graphql.execution.values import VariableValues

from db.errors import DatabaseUnavailable
from db.event_log import LoggedEvent, Position
from db.log_follower import LogFollower
from execution.catch_up import CatchUp
from execution.executor import Executor, Payloads
from execution.member import Member, Shape, SlowConsumer, wanted_tags
from execution.pipe import Outlet, outlet, text_frame
from execution.plan import ObjectPlan, directive_variables, variables_of
from resolvers.context import Context
from resolvers.errors import (
    BadUserInput,
    CursorExpired,
    GatewayError,
    ServiceUnavailable,
    Unauthenticated,
    require_viewer_id,
)

log = logging.getLogger(__name__)

# Documents whose plans are kept for the subscriptions that ask them.
MAX_DOCUMENTS = 500
# An event's statements are tried again while the database is unreachable: from this
# wait (doubling to 1 s) for at most this long.
RETRY_SECONDS = (0.05, 30.0)
_T = TypeVar("_T")
CURSOR_KIND = "event"


class Broadcaster:
    """The live path of one process: its follower of the event log, the executor that
    builds answers, and the subscriptions it serves."""

    def __init__(self, follower: LogFollower, executor: Executor, *, connections: int = 2) -> None:
        self.follower = follower
        self.executor = executor
        self.published: dict[Member, None] = {}  # content events, in joining order
        self.notified: dict[int, dict[Member, None]] = {}  # notifications, by recipient
        self.by_viewer: dict[int, set[Member]] = {}
        # Event work holds at most this many database connections at once; the rest of
        # it waits here, not in the pool that requests share.
        self.connections = asyncio.Semaphore(connections)
        self.catch_up = CatchUp(self)
        self.closed = False
        # (operation, type, @skip/@include values) -> (operation, document key, plans):
        # subscriptions asking the same document share one plan and one group key.
        self._plans: OrderedDict[Hashable, tuple[Any, Hashable, Shape, tuple[ObjectPlan, ...]]]
        self._plans = OrderedDict()
        self._started = False
        # Told how many answers each delivery handed to subscribers (metrics).
        self.on_delivered: Callable[[int], object] | None = None

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.follower.start(self.on_event, self.lost)

    async def close(self) -> None:
        """Ends every subscription (they complete) and stops following the log."""
        self.closed = True
        for member in self.everyone():
            member.end(None)
        self.catch_up.close()
        await self.follower.stop()

    # --- subscribing --------------------------------------------------------------------

    def _planned(
        self,
        operation: Any,
        fragments: dict[str, Any],
        nodes: list[Any],
        variables: VariableValues,
        type_name: str,
        wrapped: bool,
    ) -> tuple[Hashable, Shape, tuple[ObjectPlan, ...]]:
        names = directive_variables(operation, fragments)
        # The parsed document is cached by its text (gateway/documents.py), so the same
        # text comes as the same node; the entry keeps it alive, so its id is not reused.
        key = (id(operation), type_name, tuple(repr(variables.coerced.get(n)) for n in names))
        found = self._plans.get(key)
        if found is not None and found[0] is operation:
            self._plans.move_to_end(key)
            return found[1], found[2], found[3]
        if wrapped:
            fields, plans = self.executor.planner.event(type_name, nodes, fragments, variables)
            shape = Shape(type_name, fields)
        else:
            plan, _ = self.executor.planner.object(type_name, nodes, fragments, variables)
            shape, plans = Shape(type_name), (plan,)
        document = (print_ast(operation), tuple(print_ast(f) for f in fragments.values()))
        self._plans[key] = (operation, document, shape, plans)
        if len(self._plans) > MAX_DOCUMENTS:
            self._plans.popitem(last=False)
        return document, shape, plans

    def _member(
        self,
        info: Any,
        type_name: str,
        *,
        wrapped: bool = False,
        wanted: frozenset[str] | None = None,
        after: str | None = None,
    ) -> Member:
        raw = info._raw_info
        return self._new_member(
            info.context,
            raw.operation,
            raw.fragments,
            list(raw.field_nodes),
            raw.path.key,
            variables_of(raw),
            outlet.get(),
            type_name,
            wrapped=wrapped,
            wanted=wanted,
            after=after,
        )

    def _new_member(
        self,
        ctx: Context,
        operation: Any,
        fragments: dict[str, Any],
        nodes: list[Any],
        key: str,
        variables: VariableValues,
        target: Outlet | None,
        type_name: str,
        *,
        wrapped: bool = False,
        wanted: frozenset[str] | None = None,
        after: str | None = None,
    ) -> Member:
        position: Position | None = None
        if after is not None:
            try:
                tx, id_ = ctx.cursors.decode(after, CURSOR_KIND)
                position = (int(tx), int(id_))
            except (ValueError, TypeError):
                raise BadUserInput(
                    "`after` is not a cursor of this subscription: pass one it sent"
                ) from None
        document, shape, plans = self._planned(
            operation, fragments, nodes, variables, type_name, wrapped
        )
        member = Member(ctx, plans, shape, document, variables, key, target, wanted)
        member.position = position
        member.since = self.follower.position
        return member

    def open(
        self,
        ctx: Context,
        field: str,
        arguments: dict[str, Any],
        operation: Any,
        fragments: dict[str, Any],
        nodes: list[Any],
        key: str,
        variables: VariableValues,
        target: Outlet,
    ) -> Member:
        """A subscription to `field` whose frames go to `target`, started without an
        operation of strawberry's (gateway/live_operations.py); raises what refuses it.
        Its end resolves `member.ended`."""
        build = functools.partial(
            self._new_member, ctx, operation, fragments, nodes, key, variables, target
        )
        if field == "contentPublished":
            member = build("Content", wanted=wanted_tags(arguments.get("tags")))
            self._join(member, self.published)
        elif field == "contentEvents":
            member = build(
                "ContentEvent",
                wrapped=True,
                wanted=wanted_tags(arguments.get("tags")),
                after=arguments.get("after"),
            )
            self._start(member, self.published)
        else:
            viewer_id = require_viewer_id(ctx.viewer.id, "receive notifications")
            if field == "notifications":
                member = build("Notification")
                self._join(member, self.notified.setdefault(viewer_id, {}))
            else:
                member = build("NotificationEvent", wrapped=True, after=arguments.get("after"))
                self._start(member, self.notified.setdefault(viewer_id, {}))
        if self.closed:
            member.end(None)
        return member

    async def content_published(self, info: Any, tags: list[str] | None) -> AsyncIterator[Any]:
        member = self._member(info, "Content", wanted=wanted_tags(tags))
        self._join(member, self.published)
        async for value in self._until_end(member, info):
            yield value

    async def content_events(
        self, info: Any, tags: list[str] | None, after: str | None
    ) -> AsyncIterator[Any]:
        member = self._member(
            info, "ContentEvent", wrapped=True, wanted=wanted_tags(tags), after=after
        )
        self._start(member, self.published)
        async for value in self._until_end(member, info):
            yield value

    async def notifications(self, info: Any) -> AsyncIterator[Any]:
        viewer_id = require_viewer_id(info.context.viewer.id, "receive notifications")
        member = self._member(info, "Notification")
        self._join(member, self.notified.setdefault(viewer_id, {}))
        async for value in self._until_end(member, info):
            yield value

    async def notification_events(self, info: Any, after: str | None) -> AsyncIterator[Any]:
        viewer_id = require_viewer_id(info.context.viewer.id, "receive notifications")
        member = self._member(info, "NotificationEvent", wrapped=True, after=after)
        self._start(member, self.notified.setdefault(viewer_id, {}))
        async for value in self._until_end(member, info):
            yield value

    def _start(self, member: Member, members: dict[Member, None]) -> None:
        """Live at once, or once the events since its cursor are replayed."""
        if member.position is None:
            self._join(member, members)
        else:
            self._watch(member)
            self.catch_up.add(member, functools.partial(self._join, member, members))

    async def _until_end(self, member: Member, info: Any) -> AsyncIterator[Any]:
        if self.closed:
            member.end(None)
        if member.outlet is not None:
            # The frames are written from here; the operation only waits for its end.
            await member.wait()
            return
        from schema.compiled import adapt

        async for value in member.values_until_end():
            yield adapt(value, info._raw_info.return_type)

    def _watch(self, member: Member) -> None:
        """Ends the subscription when its viewer's token expires."""
        expires_at = member.ctx.token_expires_at
        if expires_at is not None and member.timer is None:
            delay = (expires_at - datetime.now(UTC)).total_seconds()
            member.timer = asyncio.get_running_loop().call_later(
                max(delay, 0), member.end, Unauthenticated("The token has expired: sign in again.")
            )

    def _join(self, member: Member, members: dict[Member, None]) -> None:
        if member.ending:
            return
        members[member] = None
        if member.viewer_id is not None:
            self.by_viewer.setdefault(member.viewer_id, set()).add(member)
        member.leave = functools.partial(self._leave, members=members)
        self._watch(member)
        self.start()

    def _leave(self, member: Member, *, members: dict[Member, None]) -> None:
        members.pop(member, None)
        if member.viewer_id is not None:
            same = self.by_viewer.get(member.viewer_id)
            if same is not None:
                same.discard(member)
                if not same:
                    del self.by_viewer[member.viewer_id]

    def everyone(self) -> list[Member]:
        return [
            *self.published,
            *(m for ms in self.notified.values() for m in ms),
            *self.catch_up.members,
        ]

    # --- events -------------------------------------------------------------------------

    def lost(self) -> None:
        """Events this process had not read were pruned: its subscribers missed them."""
        for member in self.everyone():
            member.end(CursorExpired())

    async def on_event(self, event: LoggedEvent) -> None:
        """A live event, in log order. The subscribers are taken before anything is
        awaited: the follower has already moved to this event, so a subscription that
        joins from now on has had it replayed."""
        kind, body = event.kind, event.body
        if kind == "token_revoked":
            self.revoked(int(body["user"]), None)
        elif kind == "content_published":
            if self.published:
                await self.dispatch(event, list(self.published))
        elif kind == "notification":
            recipient = self.notified.get(int(body["recipient"]))
            if recipient:
                await self.dispatch(event, list(recipient))

    def revoked(self, user_id: int, at: Position | None) -> None:
        """Ends the subscriptions of `user_id` whose token a revocation covers: all of
        them when it is live (`at` None); when it is replayed, those that started before
        it (the others were signed in after it)."""
        revoked = Unauthenticated("The token has been revoked: sign in again.")
        if at is None:
            for member in list(self.by_viewer.get(user_id, ())):
                member.end(revoked)
        for member in self.catch_up.of_viewer(user_id):
            if at is None or member.since is None or member.since < at:
                member.end(revoked)

    async def dispatch(self, event: LoggedEvent, members: list[Member]) -> None:
        """Delivers `event` to those of `members` it is for (live or replayed alike)."""
        members = [m for m in members if m.wants(event.position) and not m.ending]
        if not members:
            return
        if event.kind == "content_published":
            await self._published(event, members)
        elif event.kind == "notification":
            await self._deliver_all(_grouped(members), "Notification", event, None)

    async def _statement(self, run: Callable[[], Awaitable[_T]]) -> _T:
        """An event's statement on one of its connections, tried again while the
        database cannot be reached (a connection cut, a failover): an event whose
        answers cannot be built is not skipped."""
        delay = RETRY_SECONDS[0]
        deadline = asyncio.get_running_loop().time() + RETRY_SECONDS[1]
        while True:
            try:
                async with self.connections:
                    return await run()
            except DatabaseUnavailable:
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _published(self, event: LoggedEvent, members: list[Member]) -> None:
        content_id = int(event.body["id"])
        db = members[0].ctx.db
        try:
            audience = await self._statement(
                functools.partial(self.executor.audience, db, content_id, members)
            )
        except DatabaseUnavailable:
            _missed(members)
            raise
        kept = []
        for member in members:
            if member.viewer_id is not None and audience.muted(member.viewer_id):
                continue
            if member.wanted is not None and member.wanted.isdisjoint(audience.tags):
                continue
            kept.append(member)
        await self._deliver_all(_grouped(kept), "Content", event, audience)

    async def _deliver_all(
        self,
        groups: dict[Hashable, list[Member]],
        type_name: str,
        event: LoggedEvent,
        audience: Any,
    ) -> None:
        """Each group's statements, as many at once as the event's connections allow; a
        group's answers leave as soon as its statements return."""
        if not groups:
            return
        cursor = next(iter(groups.values()))[0].ctx.cursors.encode(CURSOR_KIND, event.position)
        pk = int(event.body["id"])
        if len(groups) == 1:
            (group,) = groups.values()
            try:
                await self._deliver(group, type_name, pk, cursor, audience)
            except Exception:
                _missed(group)
                raise
            return
        results = await asyncio.gather(
            *(self._deliver(g, type_name, pk, cursor, audience) for g in groups.values()),
            return_exceptions=True,
        )
        for group, result in zip(groups.values(), results, strict=True):
            if isinstance(result, BaseException):
                _missed(group)
                log.error("live delivery to a group failed", exc_info=result)

    async def _deliver(
        self, group: list[Member], type_name: str, pk: int, cursor: str, audience: Any
    ) -> None:
        """One statement per plan answers the whole group: for each distinct audience in
        it (or each viewer, when the document depends on more than an audience holds)."""
        first = group[0]
        by_answer: dict[Hashable, list[Member]] = {}
        for member in group:
            key = audience.key(member) if audience is not None else member.viewer_id
            by_answer.setdefault(key, []).append(member)
        viewers = [members[0].viewer_id for members in by_answer.values()]
        built: list[Payloads] = []
        for plan in first.plans:
            built.append(
                await self._statement(
                    functools.partial(
                        self.executor.payloads,
                        first.ctx,
                        plan,
                        first.variables,
                        first.kind,
                        type_name,
                        pk,
                        viewers,
                    )
                )
            )
        delivered = 0
        for members, viewer_id in zip(by_answer.values(), viewers, strict=True):
            objects = [payloads.get(viewer_id) for payloads in built]
            if not objects or any(o is None for o in objects):
                continue  # not for this audience to see
            delivered += len(members)
            value = first.shape.value(objects, cursor)
            serialized = orjson.dumps({"data": {first.key: value}}).decode()
            frames: dict[str, tuple[str, bytes]] = {}
            for member in members:
                if member.outlet is None:
                    member.deliver(value, None)
                    continue
                found = frames.get(member.prefix)
                if found is None:
                    text = f"{member.prefix}{serialized}}}"
                    found = frames[member.prefix] = (text, text_frame(text))
                member.deliver(value, found[0], found[1])
        if delivered and self.on_delivered is not None:
            self.on_delivered(delivered)


def _missed(members: Iterable[Member]) -> None:
    """They could not be given an event: they end (SERVICE_UNAVAILABLE), and resume
    from their last cursor, rather than go on without it."""
    for member in members:
        member.end(ServiceUnavailable())


def _grouped(members: Iterable[Member]) -> dict[Hashable, list[Member]]:
    groups: dict[Hashable, list[Member]] = {}
    for member in members:
        groups.setdefault(member.group, []).append(member)
    return groups


__all__ = [
    "Broadcaster",
    "GatewayError",
    "Member",
    "Outlet",
    "SlowConsumer",
    "outlet",
]
