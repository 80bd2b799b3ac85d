"""One live subscription: what it asked for, for whom, where its answers go, and where
it is in the event log."""

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql.execution.values import VariableValues

from db.event_log import Position
from execution.binding import viewer_kind
from execution.pipe import Outlet
from execution.plan import ObjectPlan, beyond_audience
from resolvers import validation
from resolvers.context import Context
from resolvers.errors import GatewayError, ServiceUnavailable

# Values an in-process subscriber (no socket) may have waiting.
MAX_PENDING_VALUES = 100
MAX_SUBSCRIBED_TAGS = 50


class SlowConsumer(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__()
        self.message = "This subscription fell too far behind and was ended: subscribe again."


def wanted_tags(tags: list[str] | None) -> frozenset[str] | None:
    """The normalized tag filter of a subscription; BAD_USER_INPUT for a bad one."""
    if not tags:
        return None
    return frozenset(validation.tag_names(tags, field="tags", maximum=MAX_SUBSCRIBED_TAGS))


@dataclass(frozen=True, slots=True)
class Shape:
    """What a subscription's value is made of: the object its plans build (`fields`
    empty), or an event around it (ContentEvent, NotificationEvent): for each response
    key, "cursor", "typename" or the index of the plan that builds it."""

    type_name: str
    fields: tuple[tuple[str, str | int], ...] = ()

    def value(self, objects: list[Any], cursor: str) -> Any:
        if not self.fields:
            return objects[0]
        value: dict[str, Any] = {}
        for key, part in self.fields:
            if part == "cursor":
                value[key] = cursor
            elif part == "typename":
                value[key] = self.type_name
            else:
                assert isinstance(part, int)
                value[key] = objects[part]
        return value


# Bounded memos of pure functions (what they hold is computed from the key alone, and
# each stops growing or starts over at its cap), so no app's state: shared safely.
_prefixes: dict[tuple[str, str], str] = {}
_personal_plans: dict[int, tuple[tuple[ObjectPlan, ...], bool]] = {}


def _personal(plans: tuple[ObjectPlan, ...]) -> bool:
    """beyond_audience of the plans, walked once per plan, not for every event and
    subscription (plans are shared by the subscriptions of a document)."""
    found = _personal_plans.get(id(plans))
    if found is not None and found[0] is plans:
        return found[1]
    personal = any(beyond_audience(plan) for plan in plans)
    if len(_personal_plans) > 1_000:
        _personal_plans.clear()
    _personal_plans[id(plans)] = (plans, personal)
    return personal


# A bounded memo (interning) of a pure function, like the two above.
_variables_keys: dict[str, str] = {}


def _variables_key(coerced: dict[str, Any]) -> str:
    """The variables as a group key, one string per distinct value: the bytes orjson
    returns keep a 4 KB buffer each, a lot to hold for every subscription."""
    key = orjson.dumps(coerced, option=orjson.OPT_SORT_KEYS).decode()
    found = _variables_keys.get(key)
    if found is not None:
        return found
    if len(_variables_keys) < 10_000:
        _variables_keys[key] = key
    return key


def _prefix(target: Outlet) -> str:
    """The start of the operation's frames; shared by the operations of one id."""
    key = (target.operation_id, target.next_type)
    found = _prefixes.get(key)
    if found is None:
        op_id = orjson.dumps(target.operation_id).decode()
        found = f'{{"id":{op_id},"type":"{target.next_type}","payload":'
        if len(_prefixes) < 10_000:
            _prefixes[key] = found
    return found


class Member:
    """One subscription. `position`: events at or before it are not for it (it resumed
    after them, or has had them replayed); `since`: where the log was when it started."""

    __slots__ = (
        "_flushed",
        "ctx",
        "document",
        "dropped",
        "ended",
        "ending",
        "in_flight",
        "key",
        "kind",
        "leave",
        "outlet",
        "personal",
        "plans",
        "position",
        "prefix",
        "shape",
        "since",
        "timer",
        "values",
        "variables",
        "variables_key",
        "viewer_id",
        "wanted",
    )

    def __init__(
        self,
        ctx: Context,
        plans: tuple[ObjectPlan, ...],
        shape: Shape,
        document: Hashable,
        variables: VariableValues,
        key: str,
        target: Outlet | None,
        wanted: frozenset[str] | None = None,
        position: Position | None = None,
    ) -> None:
        self.ctx = ctx
        self.plans = plans
        # Whether its answer depends on more than an audience holds (plan.py).
        self.personal = _personal(plans)
        self.shape = shape
        self.document = document
        self.variables = variables
        self.variables_key = _variables_key(variables.coerced)
        self.key = key
        self.outlet = target
        self.wanted = wanted
        self.kind = viewer_kind(ctx)
        self.viewer_id = ctx.viewer.id
        self.position = position
        self.since: Position | None = None
        self.prefix = ""
        if target is not None:
            self.prefix = _prefix(target)
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

    def wants(self, position: Position) -> bool:
        return self.position is None or position > self.position

    def deliver(self, value: Any, frame: str | None, encoded: bytes | None = None) -> None:
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
        if not self.outlet.pipe.push(frame, self, encoded=encoded):
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
