"""WebSocket connections to /graphql go to the GraphQL view with only what they use on
the way: a request id (quoted in masked errors) and the open-sockets gauge. The HTTP
middlewares would pass them through, but each would stay on every socket's stack, and
wrap its every message, for as long as the socket is open: thousands of idle sockets
(docs/performance.md, "Live updates")."""

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.observe import websocket_open
from gateway.request_id import assign_request_id


class WebSocketsStraight:
    def __init__(
        self, app: ASGIApp, *, endpoint: ASGIApp, path: str = "/graphql", counted: bool = True
    ) -> None:
        self.app = app
        self.endpoint = endpoint
        self.path = path
        self.counted = counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        assign_request_id(scope)
        with websocket_open(self.counted):
            await self.endpoint(scope, receive, send)
