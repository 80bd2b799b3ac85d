"""graphql-transport-ws subscriptions to the live fields, started straight on the
broadcaster (execution/broadcast.py `open`) instead of as strawberry operations.

A strawberry operation is a task running graphql-core's subscription machinery down to
a generator that only waits for the subscription's end: ~14 KB for every open
subscription, idle all its life, when the broadcaster writes its frames anyway. Here a
subscription is what the broadcaster holds (a `Member`, ~2 KB) and an entry in its
connection's table; its end is a callback that writes the last messages. What a client
sees is what strawberry sends: validation and variable errors as `error`, errors at
run time as a `next` with `errors` (classified, masked) and then `complete`; nothing
after the client's own `complete`.

Only documents whose operation is a subscription with one root field, one of the live
fields, go this way; everything else (and graphql-ws) runs as strawberry operations."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from graphql import FieldNode, GraphQLError, OperationType
from graphql.execution.values import get_argument_values, get_variable_values

from execution.member import Member
from execution.pipe import Outlet, Pipe
from gateway import metrics
from gateway.errors import classify
from resolvers.errors import GatewayError

if TYPE_CHECKING:
    from gateway.graphql_view import GraphQLView

LIVE_FIELDS = frozenset(
    {"contentPublished", "contentEvents", "notifications", "notificationEvents"}
)


@dataclass(slots=True)
class Running:
    member: Member
    release: Callable[[], None] | None
    field: str
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Planned:
    """A live subscription ready to open, or the errors that refuse it before it runs."""

    field: str | None
    errors: list[GraphQLError] | None
    start: Callable[[Outlet], Member] | None
    key: str | None = None


def plan_live(view: "GraphQLView", context: Any, payload: dict[str, Any]) -> Planned | None:
    """How to start the subscription in `payload` on the broadcaster, or None when it
    is not a live subscription (strawberry runs it)."""
    broadcaster = view.broadcaster
    if broadcaster is None:
        return None
    try:
        prepared = view.guard.prepare(payload["query"])
    except GatewayError:
        return None
    if not prepared.valid:
        return None
    operation = prepared.operation(payload.get("operationName"))
    if operation is None or operation.operation != OperationType.SUBSCRIPTION:
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    node = selections[0]
    if node.name.value not in LIVE_FIELDS or node.directives:
        return None
    schema = view.schema._schema  # type: ignore[attr-defined]
    subscription_type = schema.subscription_type
    variables = get_variable_values(
        schema, operation.variable_definitions or (), payload.get("variables") or {}
    )
    if isinstance(variables, list):
        return Planned(node.name.value, variables, None)
    definition = subscription_type.fields[node.name.value]
    try:
        arguments = get_argument_values(definition, node, variables)
    except GraphQLError as error:
        return Planned(node.name.value, [error], None)
    key = node.alias.value if node.alias else node.name.value

    def start(target: Outlet) -> Member:
        return broadcaster.open(
            context,
            node.name.value,
            arguments,
            operation,
            prepared.fragments,
            [node],
            key,
            variables,
            target,
        )

    return Planned(node.name.value, None, start, key)


class LiveOperations:
    """A connection's live subscriptions (mixed into the graphql-transport-ws handler)."""

    live: dict[str, Running]

    def _live_table(self) -> dict[str, Running]:
        if not hasattr(self, "live"):
            self.live = {}
        return self.live

    def live_count(self) -> int:
        return len(getattr(self, "live", ()))

    def start_live(
        self,
        op_id: str,
        planned: Planned,
        pipe: Pipe,
        release: Callable[[], None] | None,
        classify_errors: Any,
    ) -> list[GraphQLError] | None:
        """Starts it; the errors to answer with instead when it cannot start."""
        assert planned.start is not None
        context = self.context  # type: ignore[attr-defined]
        try:
            member = planned.start(Outlet(op_id, "next", pipe, classify_errors))
        except GatewayError as error:
            if release is not None:
                release()
            # As strawberry answers an error raised before the first event.
            for frame in _last_frames(op_id, error, context, planned.key):
                pipe.push(frame, None, force=True)
            return None
        field = planned.field or ""
        metrics.SUBSCRIPTIONS.labels(field).inc()
        running = Running(member, release, field)
        self._live_table()[op_id] = running
        member.ended.add_done_callback(lambda _f: self._ended(op_id, running, pipe, context))
        return None

    def _ended(self, op_id: str, running: Running, pipe: Pipe, context: Any) -> None:
        table = self._live_table()
        if table.get(op_id) is running:
            del table[op_id]
        member = running.member
        pipe.members.discard(member)
        if running.release is not None:
            running.release()
        metrics.SUBSCRIPTIONS.labels(running.field).dec()
        if running.cancelled:
            return
        error = running.member.ended.result()
        for frame in _last_frames(op_id, error, context, running.member.key):
            pipe.push(frame, None, force=True)

    def complete_live(self, op_id: str) -> bool:
        """The client completed it: it ends without another message. False when `op_id`
        is not a live subscription."""
        running = self._live_table().get(op_id)
        if running is None:
            return False
        running.cancelled = True
        running.member.dropped = True
        running.member.end(None)
        return True

    def end_all_live(self) -> None:
        """The socket is gone."""
        for op_id in list(self._live_table()):
            self.complete_live(op_id)


def _last_frames(
    op_id: str, error: GatewayError | None, context: Any, key: str | None
) -> list[str]:
    """What strawberry sends when a subscription ends: the error it ended with (at its
    field, classified), then `complete`."""
    op = orjson.dumps(op_id).decode()
    frames = []
    if error is not None:
        request_id = getattr(context, "request_id", None)
        classified = classify(error, request_id)  # a GatewayError: as it is
        formatted = {**classified.formatted, "path": [key] if key else None}
        payload = {"data": None, "errors": [formatted]}
        frames.append(f'{{"id":{op},"type":"next","payload":{orjson.dumps(payload).decode()}}}')
    frames.append(f'{{"id":{op},"type":"complete"}}')
    return frames
