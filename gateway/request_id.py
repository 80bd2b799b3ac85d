"""A request id for every HTTP request: echoed in X-Request-ID, quoted in masked errors
and in the log lines they leave, so a user's report leads to the detail."""

import re
import uuid
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
# A caller's id is reused only if it is short and plain, so it cannot forge log lines.
_SAFE = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def request_id_of(scope: MutableMapping[str, Any]) -> str:
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = uuid.uuid4().hex
    return str(state["request_id"])


def assign_request_id(scope: MutableMapping[str, Any]) -> bytes:
    """The caller's X-Request-ID if it is short and plain, else a new one."""
    given = dict(scope.get("headers") or []).get(HEADER)
    state = scope.setdefault("state", {})
    state["request_id"] = given.decode() if given and _SAFE.match(given) else uuid.uuid4().hex
    return str(state["request_id"]).encode()


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = assign_request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)
