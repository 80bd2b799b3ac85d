"""GraphQL over HTTP and WebSocket at /graphql, on strawberry's ASGI view."""

from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types.unset import UNSET, UnsetType

from db.errors import DatabaseUnavailable
from db.notify import EventBus
from db.session import Database
from gateway.auth import Passwords, Tokens, authenticate, viewer_from_header
from gateway.errors import error_codes
from gateway.explorer import DEFAULT_QUERY, explorer_html
from gateway.request_id import request_id_of
from gateway.shutdown import LiveSockets
from gateway.ws_handlers import LegacyWsHandler, TransportWsHandler
from resolvers.context import Context, create_context
from resolvers.cursors import CursorCodec
from resolvers.errors import GatewayError, ServiceUnavailable, Unauthenticated
from resolvers.ranking import RankingWeights
from resolvers.viewer import Viewer

RETRY_AFTER_SECONDS = 5


def _ws_authorization(context: Context) -> str | None:
    """The `authorization` a WebSocket client sent in connection_init's payload."""
    params = context.connection_params if isinstance(context.connection_params, dict) else {}
    header = params.get("authorization") or params.get("Authorization")
    return header if isinstance(header, str) else None


async def _nothing() -> None:
    return None


def _error_response(error: GatewayError, status: int, **headers: str) -> Response:
    body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


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
        bus: EventBus | None = None,
        connection_init_timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if explorer else None,
            connection_init_wait_timeout=connection_init_timeout,
            keep_alive=True,
            keep_alive_interval=15,
        )
        self.bus = bus
        self.live = LiveSockets(on_drain=bus.stop if bus is not None else _nothing)
        self.database = database
        self.cursors = cursors
        self.passwords = passwords
        self.tokens = tokens
        self.ranking = ranking
        self.max_page_size = max_page_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # The viewer is settled before anything executes: a bad token fails the whole
            # request rather than running it as anonymous.
            request = Request(scope)
            try:
                viewer = await viewer_from_header(
                    request.headers.get("authorization"), tokens=self.tokens, db=self.database
                )
            except Unauthenticated as error:
                response = _error_response(error, 401, **{"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
            except DatabaseUnavailable:
                response = _error_response(
                    ServiceUnavailable(), 503, **{"Retry-After": str(RETRY_AFTER_SECONDS)}
                )
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["viewer"] = viewer
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.live.sockets.pop(id(scope), None)

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
        except DatabaseUnavailable:
            raise ConnectionRejectionError({"message": ServiceUnavailable().message}) from None
        context.viewer = viewer
        context.token_expires_at = expires_at
        context.refresh_loaders()
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
        return create_context(
            db=self.database,
            viewer=viewer,
            cursors=self.cursors,
            passwords=self.passwords,
            tokens=self.tokens,
            ranking=self.ranking,
            max_page_size=self.max_page_size,
            request_id=request_id_of(request.scope),
            bus=self.bus,
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(explorer_html(endpoint=request.url.path, default_query=DEFAULT_QUERY))

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if "SERVICE_UNAVAILABLE" in error_codes(response_data):
            # Load balancers and clients retry a 503; a 200 would hide the outage.
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
