"""How the body middlewares (gateway/request_body.py, gateway/request_encoding.py) turn a
body they refuse into an answer: their wrapped `receive` raises `Refused`, and unless
the app's response has started by then, the client gets the refusal's status and JSON
error instead."""

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Refused(Exception):
    def __init__(self, status: int, body: bytes, *, close: bool = False) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        # Whether the connection is closed after the answer (what is left of the body
        # is not read).
        self.close = close


def refused(
    status: int, message: str, *, code: str = "BAD_USER_INPUT", close: bool = False, **extra: str
) -> Refused:
    error = {"message": message, "extensions": {"code": code, **extra}}
    return Refused(status, orjson.dumps({"errors": [error]}), close=close)


def too_large(limit: int) -> Refused:
    return refused(
        413,
        f"request body exceeds the limit of {limit:,} bytes",
        code="QUERY_TOO_COMPLEX",
        limit="body",
    )


async def send_refusal(send: Send, refusal: Refused) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(refusal.body)).encode()),
    ]
    if refusal.close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": refusal.body})


async def run_refusing(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Runs the app with `receive`, which may raise Refused."""
    started = False

    async def tracking_send(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except Refused as refusal:
        if started:
            raise
        await send_refusal(send, refusal)
