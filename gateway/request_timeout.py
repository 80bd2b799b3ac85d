"""A request's body must arrive within a time limit of its headers; a client that sends
it a trickle at a time (or half of it, then nothing) gets 408 and its connection closed,
instead of holding a connection, a task and a buffer for as long as it likes. (Slow
headers are the server's to time out: gateway/connections.py.)"""

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _SlowBody(Exception):
    pass


class BodyTimeout:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                # Afterwards an app only waits for the client to go: no limit on that.
                return await receive()
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    message = await receive()
            except TimeoutError:
                raise _SlowBody from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except _SlowBody:
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body did not arrive within {self.seconds:g} s of its headers"
        error = {"message": message, "extensions": {"code": "BAD_USER_INPUT"}}
        body = orjson.dumps({"errors": [error]})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 408, "headers": headers})
        await send({"type": "http.response.body", "body": body})
