"""strawberry's WebSocket protocol handlers, with the viewer checked again on every
operation: a socket outlives tokens, and a token revoked (logout) or expired since
connection_init must not keep working on it."""

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from graphql import FieldNode, GraphQLError, OperationType
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from db.deadline import time_budget
from db.errors import DatabaseUnavailable
from execution.pipe import Outlet, Pipe, outlet
from gateway.admission import Admission, admit_ws_operation
from gateway.connections import FRAME_WRITER
from gateway.errors import classify
from gateway.live_operations import LiveOperations, plan_live
from gateway.observe import event_delivered, subscription_running
from gateway.rate_limits import REFUSAL_DELAY_SECONDS, rate_key
from resolvers.context import Context
from resolvers.errors import ServiceUnavailable

if TYPE_CHECKING:
    from gateway.graphql_view import GraphQLView

FORBIDDEN = 4403
# RFC 6455 "Try Again Later": the server cannot take the connection right now.
TRY_AGAIN_LATER = 1013
UNAVAILABLE = ServiceUnavailable().message


async def send_text_frame(adapter: Any, message: Mapping[str, object]) -> None:
    """Sends a protocol message as a text frame. strawberry sends bytes as a binary
    frame, and the view encodes JSON to bytes (orjson, for HTTP); browser clients
    (graphql-ws, subscriptions-transport-ws) JSON.parse each frame's data and cannot
    parse a binary one."""
    if not isinstance(adapter, ASGIWebSocketAdapter):
        await adapter.send_json(message)
        return
    try:
        await adapter.ws.send_text(orjson.dumps(message).decode())
    except WebSocketDisconnect as error:
        raise WebSocketDisconnected from error


def message_problem(message: object) -> str | None:
    """What is wrong with a protocol message strawberry would trip over (a JSON value
    that is not an object, an operation without a text query), or None."""
    if not isinstance(message, dict):
        return "WebSocket message must be a JSON object"
    if message.get("type") not in ("subscribe", "start"):
        return None
    payload = message.get("payload")
    if not isinstance(message.get("id"), str) or not isinstance(payload, dict):
        return "An operation message needs an `id` string and a `payload` object"
    if not isinstance(payload.get("query"), str):
        return "An operation's payload needs a `query` string"
    if not isinstance(payload.get("variables"), dict | None):
        return "An operation's `variables` must be an object or null"
    if not isinstance(payload.get("operationName"), str | None):
        return "An operation's `operationName` must be a string or null"
    return None


def classify_errors(errors: list[GraphQLError], context: Context) -> list[GraphQLError]:
    """What ClassifyErrors does to a result's errors, for results the broadcast path
    executes outside strawberry's per-operation extensions (execution/broadcast.py)."""
    return [classify(error, context.request_id) for error in errors]


def _pipe(adapter: Any) -> Pipe | None:
    """The socket's one pipe for the frames of all its subscriptions (the broadcast
    path writes them: execution/broadcast.py)."""
    if not isinstance(adapter, ASGIWebSocketAdapter):
        return None
    # What it delivers is counted by the broadcaster, once per group (metrics).
    write_frame = adapter.ws.scope.get("extensions", {}).get(FRAME_WRITER)
    return Pipe(adapter.ws.send_text, write_frame)


class _Outlets:
    """Gives each operation of a connection an outlet on the connection's pipe."""

    _socket_pipe: Pipe | None = None

    def _outlet(self, operation_id: str, next_type: str) -> Outlet | None:
        if self._socket_pipe is None:
            self._socket_pipe = _pipe(self.websocket)  # type: ignore[attr-defined]
        if self._socket_pipe is None:
            return None
        return Outlet(operation_id, next_type, self._socket_pipe, classify_errors)


def subscription_field(view: Any, query: str, operation_name: str | None) -> str | None:
    """The root field of a subscription document (None for queries, mutations and
    documents that do not validate), from the guard's cache of prepared documents."""
    try:
        prepared = view.guard.prepare(query)
    except Exception:
        return None
    operation = prepared.operation(operation_name) if prepared.valid else None
    if operation is None or operation.operation != OperationType.SUBSCRIPTION:
        return None
    first = operation.selection_set.selections[0]
    return first.name.value if isinstance(first, FieldNode) else None


class _Budgeted:
    """A connection's share of the live budget (gateway/live_budget.py): how many
    operations it runs, and what its subscriptions hold while they run."""

    holds: int = 0

    def _refusal_before_start(self, running: int, admitted: Admission) -> Any:
        """The refusal of an operation about to start beside `running` others, or None
        and what gives its subscription's share back (None for other operations)."""
        view: GraphQLView = self.view  # type: ignore[attr-defined]
        budget = view.live_budget
        refusal = budget.operations_refusal(running)
        if refusal is not None or not admitted.subscription:
            return refusal, None
        context: Context = self.context  # type: ignore[attr-defined]
        client = rate_key(context.viewer.id, context.client_address)
        refusal, give_back = budget.reserve(client, self.holds, admitted.cost)
        if refusal is not None:
            return refusal, None
        self.holds += admitted.cost
        cost = admitted.cost

        def release(_task: object = None) -> None:
            nonlocal cost
            give_back()
            self.holds -= cost
            cost = 0

        return None, release


def _hold_until_done(task: "asyncio.Task[Any] | None", release: Any) -> None:
    """Gives a subscription's share back when its task ends, however it ends (a task
    cancelled before it ever ran skips its own finally blocks)."""
    if release is None:
        return
    if task is None or task.done():
        release()
    else:
        task.add_done_callback(release)


class _Counting:
    """Counts subscriptions while they run and the events they deliver (metrics)."""

    live_ids: set[str]

    def _live(self, operation_id: str, query: str, operation_name: str | None) -> str | None:
        field = subscription_field(self.view, query, operation_name)  # type: ignore[attr-defined]
        if field is not None:
            if not hasattr(self, "live_ids"):
                self.live_ids = set()
            self.live_ids.add(operation_id)
        return field

    def _count(self, message: Any) -> None:
        ids = getattr(self, "live_ids", None)
        if ids and message.get("type") in ("next", "data") and message.get("id") in ids:
            event_delivered()


class TransportWsHandler(
    _Counting, _Budgeted, _Outlets, LiveOperations, BaseGraphQLTransportWSHandler[Context, None]
):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Ids of the queries and mutations admitted: they run under the request time budget.
        self.budgeted: set[str] = set()

    async def send_message(self, message: Any) -> None:
        await send_text_frame(self.websocket, message)
        self._count(message)

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    async def run_operation(self, operation: Any) -> None:
        # Runs as the operation's own task: the variable is seen by its subscription only.
        outlet.set(self._outlet(operation.id, "next"))
        view: GraphQLView = self.view  # type: ignore[assignment]
        budget = view.time_budget if operation.id in self.budgeted else None
        self.budgeted.discard(operation.id)
        field = self._live(operation.id, operation.query, operation.operation_name)
        with time_budget(budget):
            if field is None:
                await super().run_operation(operation)
                return
            try:
                with subscription_running(field):
                    await super().run_operation(operation)
            finally:
                self.live_ids.discard(operation.id)

    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except DatabaseUnavailable:
            await self.websocket.close(code=TRY_AGAIN_LATER, reason=UNAVAILABLE)
        if self.connection_acknowledged and self.connection_init_timeout_task is not None:
            # Its work is done; a sleeping task held for the socket's life costs memory.
            self.connection_init_timeout_task.cancel()
            self.connection_init_timeout_task = None

    async def _started_live(self, message: Any, release: Any) -> bool:
        """Starts a live subscription on the broadcaster (gateway/live_operations.py);
        False when it is not one, for strawberry to run."""
        view: GraphQLView = self.view  # type: ignore[assignment]
        target = self._outlet(message["id"], "next")
        planned = plan_live(view, self.context, message["payload"])
        if planned is None or target is None:
            return False
        if planned.errors is not None:
            if release is not None:
                release()
            errors = classify_errors(planned.errors, self.context)
            payload = [error.formatted for error in errors]
            await self.send_message({"id": message["id"], "type": "error", "payload": payload})
            return True
        self.start_live(message["id"], planned, target.pipe, release, classify_errors)
        return True

    async def handle_complete(self, message: Any) -> None:
        if not self.complete_live(message["id"]):
            await super().handle_complete(message)

    async def shutdown(self) -> None:
        self.end_all_live()
        await super().shutdown()

    async def handle_subscribe(self, message: Any) -> None:
        view: GraphQLView = self.view  # type: ignore[assignment]
        if self.connection_acknowledged and not await view.still_signed_in(self.context):
            await self.websocket.close(code=FORBIDDEN, reason="Forbidden")
            return
        if self.connection_acknowledged and message["id"] in self._live_table():
            reason = f"Subscriber for {message['id']} already exists"
            await self.websocket.close(code=4409, reason=reason)
            return
        if self.connection_acknowledged and message["id"] not in self.operations:
            admitted = await admit_ws_operation(
                view.guard, view.rate_limiter, self.context, message["payload"]
            )
            refusal, release = admitted.refusal, None
            if refusal is not None:
                # Late, and reading nothing else from the socket meanwhile (see
                # REFUSAL_DELAY_SECONDS).
                await asyncio.sleep(REFUSAL_DELAY_SECONDS)
            else:
                running = len(self.operations) + self.live_count()
                refusal, release = self._refusal_before_start(running, admitted)
            if refusal is not None:
                payload = [refusal.formatted]
                await self.send_message({"id": message["id"], "type": "error", "payload": payload})
                return
            if admitted.subscription and await self._started_live(message, release):
                return
            await super().handle_subscribe(message)
            operation = self.operations.get(message["id"])
            _hold_until_done(operation.task if operation is not None else None, release)
            # Only once it runs: strawberry may refuse it (too many in flight).
            self.budgeted.discard(message["id"])
            if not admitted.subscription and operation is not None:
                self.budgeted.add(message["id"])
            return
        await super().handle_subscribe(message)


class LegacyWsHandler(_Counting, _Budgeted, _Outlets, BaseGraphQLWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Ids of the queries and mutations admitted: they run under the request time budget.
        self.budgeted: set[str] = set()

    async def send_message(self, message: Any) -> None:
        await send_text_frame(self.websocket, message)
        self._count(message)

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message)
        if problem is None:
            await super().handle_message(message)
        elif isinstance(message, dict) and isinstance(message.get("id"), str):
            await self.send_message(
                {"type": "error", "id": message["id"], "payload": {"message": problem}}
            )
        # This protocol ignores messages it cannot read (as it ignores what is not JSON).

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        # Runs as the operation's own task: the variable is seen by its subscription only.
        outlet.set(self._outlet(operation_id, "data"))
        view: GraphQLView = self.view  # type: ignore[assignment]
        budget = view.time_budget if operation_id in self.budgeted else None
        self.budgeted.discard(operation_id)
        field = self._live(operation_id, query, operation_name)
        with time_budget(budget):
            if field is None:
                await super().handle_async_results(operation_id, query, operation_name, variables)
                return
            try:
                with subscription_running(field):
                    await super().handle_async_results(
                        operation_id, query, operation_name, variables
                    )
            finally:
                self.live_ids.discard(operation_id)

    async def handle_connection_init(self, message: Any) -> None:
        # graphql-ws tolerates a second init; it would swap the viewer of a live
        # connection (and the expiry its subscriptions watch), so it is refused.
        if self.connection_acknowledged:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        try:
            await super().handle_connection_init(message)
        except DatabaseUnavailable:
            await self.send_message(
                {"type": "connection_error", "payload": {"message": UNAVAILABLE}}
            )
            await self.websocket.close(code=TRY_AGAIN_LATER, reason=UNAVAILABLE)

    async def handle_start(self, message: Any) -> None:
        view: GraphQLView = self.view  # type: ignore[assignment]
        if self.connection_acknowledged and not await view.still_signed_in(self.context):
            await self.websocket.close(code=FORBIDDEN, reason="Forbidden")
            return
        if self.connection_acknowledged:
            admitted = await admit_ws_operation(
                view.guard, view.rate_limiter, self.context, message["payload"]
            )
            refusal, release = admitted.refusal, None
            if refusal is not None:
                await asyncio.sleep(REFUSAL_DELAY_SECONDS)
            else:
                # A start with an id in use replaces that operation (strawberry ends it).
                running = len(self.tasks) - (message["id"] in self.tasks)
                refusal, release = self._refusal_before_start(running, admitted)
            if refusal is not None:
                error = {"type": "error", "id": message["id"], "payload": refusal.formatted}
                await self.send_message(error)
                return
            await super().handle_start(message)
            _hold_until_done(self.tasks.get(message["id"]), release)
            # Only once it runs: strawberry may refuse it (too many in flight).
            self.budgeted.discard(message["id"])
            if not admitted.subscription and message["id"] in self.tasks:
                self.budgeted.add(message["id"])
            return
        await super().handle_start(message)
