"""What a request body must respect before the app reads it: a size limit (413, before
it is read whole: a declared length is checked at once, a chunked body counted as it
arrives) and a time limit from its headers (408 and the connection closed: a client that
sends a trickle at a time, or half of it and then nothing, would otherwise hold a
connection, a task and a buffer for as long as it likes). Slow headers are the server's
to time out (gateway/connections.py)."""

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.body_refusals import refused, run_refusing, send_refusal, too_large


class RequestBodyLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, seconds: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await send_refusal(send, too_large(limit))
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        received = 0
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                # Afterwards an app only waits for the client to go: no limit on that.
                return await receive()
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    message = await receive()
            except TimeoutError:
                raise refused(
                    408,
                    f"the request body did not arrive within {self.seconds:g} s of its headers",
                    close=True,
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await run_refusing(self.app, scope, limited_receive, send)
