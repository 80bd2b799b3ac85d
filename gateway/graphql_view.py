"""GraphQL over HTTP and WebSocket at /graphql, on strawberry's ASGI view.

Before an HTTP operation executes, in this order: CSRF check, Accept negotiation, the
viewer's token, the document (persisted by hash, or trusted), size limits, GET only
for queries, and the viewer's rate limit.
"""

import asyncio
import dataclasses
import functools
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import OperationType
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.unset import UNSET, UnsetType

from db.deadline import time_budget
from db.errors import DatabaseUnavailable
from db.notify import EventBus
from db.session import Database
from execution.broadcast import Broadcaster
from execution.executor import Executor
from gateway import request_context
from gateway.admission import charge_refused
from gateway.auth import Passwords, SignedInViewers, Tokens, authenticate
from gateway.csrf import csrf_refusal
from gateway.documents import PreparedDocument
from gateway.errors import QueryTooComplex, RateLimited, classify, error_codes
from gateway.explorer import DEFAULT_QUERY, explorer_html
from gateway.live_budget import LiveBudget, LiveLimits
from gateway.media_types import GRAPHQL_RESPONSE_JSON, JSON, negotiate
from gateway.operation_guard import OperationGuard
from gateway.persisted_queries import PersistedQueries, resolve_document
from gateway.rate_limits import REFUSAL_DELAY_SECONDS, rate_key
from gateway.request_id import request_id_of
from gateway.shared_rate_limits import SharedRateLimiter
from gateway.shutdown import LiveSockets
from gateway.tracing import Tracing, no_span
from gateway.ws_handlers import LegacyWsHandler, TransportWsHandler
from resolvers.context import Context, confirm_viewer
from resolvers.cursors import CursorCodec
from resolvers.errors import BadUserInput, GatewayError, ServiceUnavailable, Unauthenticated
from resolvers.outreach import Outreach
from resolvers.ranking import RankingWeights
from resolvers.safeguards import Safeguards
from resolvers.viewer import Viewer

RETRY_AFTER_SECONDS = 5
# Answered with its own HTTP status whatever the media type: clients and proxies act on it.
_STATUS_BY_CODE = {"RATE_LIMITED": 429, "SERVICE_UNAVAILABLE": 503}


class Refusal(Exception):
    """An HTTP answer decided before any GraphQL runs."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _ws_authorization(context: Context) -> str | None:
    """The `authorization` a WebSocket client sent in connection_init's payload."""
    params = context.connection_params if isinstance(context.connection_params, dict) else {}
    header = params.get("authorization") or params.get("Authorization")
    return header if isinstance(header, str) else None


async def _stop_live(broadcaster: Broadcaster | None, bus: EventBus | None) -> None:
    """Every subscription completes; then the process stops listening."""
    if broadcaster is not None:
        await broadcaster.close()
    if bus is not None:
        await bus.stop()


def _error_response(
    error: GatewayError, status: int, media_type: str = JSON, **headers: str
) -> Response:
    body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
    request_context.note_result(body)
    return Response(orjson.dumps(body), status, headers, media_type=media_type)


def _opens_explorer(method: str, params: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    """A browser opening /graphql: a GET with no document (by text or by hash)."""
    accept = headers.get("accept", "")
    return (
        method == "GET"
        and "query" not in params
        and "extensions" not in params
        and ("text/html" in accept or "*/*" in accept)
    )


def _retry_after(response: Any) -> int:
    bodies = response if isinstance(response, list) else [response]
    return max(
        (
            int((error.get("extensions") or {}).get("retryAfter") or 0)
            for body in bodies
            if isinstance(body, dict)
            for error in body.get("errors") or []
        ),
        default=RETRY_AFTER_SECONDS,
    )


class GraphQLView(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWsHandler
    graphql_ws_handler_class = LegacyWsHandler

    def __init__(
        self,
        schema: Any,
        *,
        database: Database,
        cursors: CursorCodec,
        passwords: Passwords,
        tokens: Tokens,
        ranking: RankingWeights,
        max_page_size: int,
        explorer: bool,
        guard: OperationGuard,
        rate_limiter: SharedRateLimiter,
        persisted: PersistedQueries,
        executor: Executor,
        whole_queries: bool = True,
        tracing: Tracing | None = None,
        bus: EventBus | None = None,
        connection_init_timeout: timedelta = timedelta(seconds=10),
        safeguards: Safeguards | None = None,
        time_budget: float = 0.0,
        outreach: Outreach | None = None,
        live_limits: LiveLimits | None = None,
        broadcaster: Broadcaster | None = None,
    ) -> None:
        live_limits = live_limits or LiveLimits()
        super().__init__(
            schema,
            graphql_ide="graphiql" if explorer else None,
            connection_init_wait_timeout=connection_init_timeout,
            keep_alive=True,
            keep_alive_interval=15,
            # The handlers refuse first, with a contract code (gateway/ws_handlers.py).
            max_subscriptions_per_connection=live_limits.operations_per_connection,
        )
        # What live subscriptions may hold, per connection, client and process.
        self.live_budget = LiveBudget(live_limits)
        self.bus = bus
        self.broadcaster = broadcaster
        self.live = LiveSockets(on_drain=functools.partial(_stop_live, broadcaster, bus))
        self.database = database
        self.cursors = cursors
        self.passwords = passwords
        self.tokens = tokens
        self.signed_in = SignedInViewers(tokens, database)
        self.ranking = ranking
        self.max_page_size = max_page_size
        self.guard = guard
        self.rate_limiter = rate_limiter
        self.persisted = persisted
        self.executor = executor
        self.whole_queries = whole_queries
        self.safeguards = safeguards or Safeguards()
        # Seconds of database time one operation may use in all (db/deadline.py); 0: none.
        self.time_budget = time_budget
        self.tracing = tracing
        self.outreach = outreach or Outreach()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                response = await self._answer(request)
            except Refusal as refusal:
                response = refusal.response
            await response(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.live.sockets.pop(id(scope), None)

    async def _answer(self, request: Request) -> Response:
        refusal = csrf_refusal(request.method, request.headers)
        if refusal is not None:
            return _error_response(BadUserInput(refusal), 400)
        media_type = JSON
        if not _opens_explorer(request.method, request.query_params, request.headers):
            negotiated = negotiate(request.headers.get("accept"))
            if negotiated is None:
                message = f"Accept allows neither {GRAPHQL_RESPONSE_JSON} nor {JSON}"
                return _error_response(BadUserInput(message), 406)
            media_type = negotiated
        state = request.scope.setdefault("state", {})
        state["media_type"] = media_type
        # The viewer is settled before anything executes: a bad token fails the whole
        # request rather than running it as anonymous. A viewer this process knows is
        # confirmed by the statement of their read, or before anything else runs.
        try:
            viewer, check = await self.signed_in.viewer(request.headers.get("authorization"))
            state["viewer"], state["token_check"] = viewer, check
            response = await self.run(request)
        except Unauthenticated as error:
            return _error_response(error, 401, media_type, **{"WWW-Authenticate": "Bearer"})
        except DatabaseUnavailable:
            retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            return _error_response(ServiceUnavailable(), 503, media_type, **retry)
        except HTTPException as error:
            # strawberry's own refusals (unparsable JSON, no query, ...) in the same shape
            return _error_response(BadUserInput(error.reason), error.status_code, media_type)
        if response.status_code == 429:
            await asyncio.sleep(REFUSAL_DELAY_SECONDS)
        return response

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return _opens_explorer(request.method, request.query_params, request.headers)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        with (
            self.tracing.operation() if self.tracing else no_span(),
            time_budget(self.time_budget),
        ):
            return await self._execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )

    async def _execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            resolved = resolve_document(
                request_data.query,
                request_data.extensions,
                store=self.persisted,
                trusted=self.guard.trusted,
            )
            prepared: PreparedDocument | None = None
            if resolved.query is not None:
                prepared = await self._admit(
                    request, request_adapter.method, context, request_data, resolved.query
                )
                if resolved.register_as is not None and prepared.valid:
                    self.persisted.register(resolved.register_as, resolved.query)
        except GatewayError as error:
            await confirm_viewer(context)  # a revoked token hears that instead
            return PreExecutionError(data=None, errors=[error])
        if self.whole_queries and prepared is not None and prepared.valid:
            assert resolved.query is not None
            operation = prepared.operation(request_data.operation_name)
            if operation is not None and operation.operation == OperationType.QUERY:
                # Answered before strawberry starts: its extensions and execution would
                # be most of a query's cost.
                context.compiled_read_tried = True
                answer = await self.executor.answer(
                    resolved.query, operation, prepared.fragments, request_data.variables, context
                )
                if answer is not None:
                    errors = [classify(e, context.request_id) for e in answer.errors]
                    return ExecutionResult(data=answer.data, errors=errors or None)
        await confirm_viewer(context)
        request_data = dataclasses.replace(request_data, query=resolved.query)
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def _admit(
        self,
        request: Request,
        method: str,
        context: Context,
        request_data: GraphQLRequestData,
        query: str,
    ) -> PreparedDocument:
        """The document to run; raises what refuses it before it executes."""
        key = rate_key(context.viewer.id, context.client_address)
        try:
            prepared = self.guard.prepare(query)
        except QueryTooComplex:
            await charge_refused(self.rate_limiter, self.guard.limits, key)
            raise
        # Other syntax or validation errors are reported by executing, which runs nothing.
        if prepared.errors and isinstance(prepared.errors[0], GatewayError):
            if isinstance(prepared.errors[0], QueryTooComplex):
                await charge_refused(self.rate_limiter, self.guard.limits, key)
            raise prepared.errors[0]
        operation = prepared.operation(request_data.operation_name)
        request_context.note_operation(operation, prepared.valid)
        if method == "GET" and operation is not None and operation.operation != OperationType.QUERY:
            where = (
                "over WebSocket"
                if operation.operation == OperationType.SUBSCRIPTION
                else "with POST"
            )
            message = f"GET runs only queries: send a {operation.operation.value} {where}."
            raise Refusal(_error_response(BadUserInput(message), 405, Allow="POST"))
        try:
            cost = self.guard.admit(prepared, request_data.operation_name, request_data.variables)
        except QueryTooComplex:
            await charge_refused(self.rate_limiter, self.guard.limits, key)
            raise
        retry_after = await self.rate_limiter.charge(key, cost)
        if retry_after is not None:
            raise RateLimited(retry_after)
        return prepared

    async def create_websocket_response(
        self, request: WebSocket, subprotocol: str | None
    ) -> WebSocket:
        websocket = await super().create_websocket_response(request, subprotocol)
        self.live.sockets[id(request.scope)] = websocket
        return websocket

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """The viewer of a WebSocket connection comes in connection_init's payload as
        {"authorization": "Bearer <token>"}; a bad one refuses the connection (4403)."""
        header = _ws_authorization(context)
        try:
            viewer, expires_at = await authenticate(header, tokens=self.tokens, db=self.database)
        except Unauthenticated as error:
            raise ConnectionRejectionError({"message": error.message}) from None
        # DatabaseUnavailable goes on to the protocol handler (gateway/ws_handlers.py),
        # which closes with 1013 Try Again Later: 4403 would tell the client its token
        # is bad, and clients do not retry that.
        context.viewer = viewer
        context.token_expires_at = expires_at
        acknowledged: UnsetType = UNSET
        return acknowledged

    async def still_signed_in(self, context: Context) -> bool:
        """Whether the token a WebSocket connection was opened with still signs in the
        same viewer (not revoked, not expired). Anonymous connections always are."""
        if not context.viewer.signed_in:
            return True
        header = _ws_authorization(context)
        try:
            viewer, _ = await authenticate(header, tokens=self.tokens, db=self.database)
        except Unauthenticated:
            return False
        except DatabaseUnavailable:
            return True  # the operation itself will answer SERVICE_UNAVAILABLE
        return viewer == context.viewer

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        viewer = request.scope.get("state", {}).get("viewer") or Viewer.anonymous()
        client_address = request.client.host if request.client else None
        return Context(
            db=self.database,
            viewer=viewer,
            reads=self.executor,
            cursors=self.cursors,
            passwords=self.passwords,
            tokens=self.tokens,
            ranking=self.ranking,
            max_page_size=self.max_page_size,
            request_id=request_id_of(request.scope),
            token_check=request.scope.get("state", {}).get("token_check"),
            bus=self.bus,
            live=self.broadcaster,
            client_address=client_address,
            safeguards=self.safeguards,
            outreach=self.outreach.for_client(client_address),
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(explorer_html(endpoint=request.url.path, default_query=DEFAULT_QUERY))

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        # orjson, not json: it refuses what is not UTF-8 (a stray 0xFF byte) and lone
        # surrogates, which json.loads lets through to fail later as a 500.
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        """A request body (or GET's `variables`/`extensions`): JSON holding an object,
        or a list of them for a batch; 400 with BAD_USER_INPUT otherwise."""
        try:
            parsed = self.decode_json(data)
        except orjson.JSONDecodeError as error:
            raise HTTPException(400, f"The body is not valid JSON in UTF-8: {error}") from None
        if not isinstance(parsed, dict | list):
            kind = "null" if parsed is None else type(parsed).__name__
            raise HTTPException(
                400,
                f'The JSON must be an object such as {{"query": "{{ viewer {{ id }} }}"}} '
                f"(a list of them for a batch), not {kind}",
            )
        return parsed

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = request.scope.get("state", {}).get("media_type", JSON)
        return sub_response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        if isinstance(result, PreExecutionError):
            # GraphQL over HTTP: a request that never executed has no data entry at all.
            processed.pop("data", None)
        return processed

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or JSON
        response = Response(self.encode_json(response_data), 200, media_type=media_type)
        response.headers.raw.extend(
            (name, value) for name, value in sub_response.headers.raw if name != b"content-type"
        )
        request_context.note_result(response_data)
        codes = error_codes(response_data)
        status = next((_STATUS_BY_CODE[code] for code in codes if code in _STATUS_BY_CODE), None)
        if status is not None:
            # Load balancers and clients retry a 503 or back off on a 429; a 200 would hide it.
            response.status_code = status
            response.headers["Retry-After"] = str(_retry_after(response_data))
        elif (
            media_type == GRAPHQL_RESPONSE_JSON
            and isinstance(response_data, dict)
            and "data" not in response_data
        ):
            response.status_code = 400
        return response
