"""strawberry's WebSocket protocol handlers, with the viewer checked again on every
operation: a socket outlives tokens, and a token revoked (logout) or expired since
connection_init must not keep working on it."""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from db.errors import DatabaseUnavailable
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


class TransportWsHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def send_message(self, message: Any) -> None:
        await send_text_frame(self.websocket, message)

    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except DatabaseUnavailable:
            await self.websocket.close(code=TRY_AGAIN_LATER, reason=UNAVAILABLE)

    async def handle_subscribe(self, message: Any) -> None:
        view: GraphQLView = self.view  # type: ignore[assignment]
        if self.connection_acknowledged and not await view.still_signed_in(self.context):
            await self.websocket.close(code=FORBIDDEN, reason="Forbidden")
            return
        await super().handle_subscribe(message)


class LegacyWsHandler(BaseGraphQLWSHandler[Context, None]):
    async def send_message(self, message: Any) -> None:
        await send_text_frame(self.websocket, message)

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
        await super().handle_start(message)
