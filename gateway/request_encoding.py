"""Request bodies sent with Content-Encoding: gzip or deflate are decoded on the way in,
and what they decode to must fit the body limit too, so a small compressed body cannot
unfold into gigabytes. Other encodings get 415 saying which ones work; a body that does
not decode gets 400."""

import zlib
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.body_refusals import refused, run_refusing, send_refusal, too_large

# zlib's window bits: with the gzip header, and with the zlib header ("deflate" in HTTP).
_DECODERS: dict[str, Callable[[], "zlib._Decompress"]] = {
    "gzip": lambda: zlib.decompressobj(wbits=31),
    "x-gzip": lambda: zlib.decompressobj(wbits=31),
    "deflate": lambda: zlib.decompressobj(wbits=15),
}


class DecodeRequestBodies:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        codings = [
            coding.strip().lower()
            for name, value in headers
            if name == b"content-encoding"
            for coding in value.decode("latin-1").split(",")
            if coding.strip().lower() not in ("", "identity")
        ]
        if not codings:
            await self.app(scope, receive, send)
            return
        if len(codings) > 1 or codings[0] not in _DECODERS:
            refusal = refused(
                415,
                f"Content-Encoding {', '.join(codings)} is not accepted: send the body as "
                "gzip, deflate or unencoded",
            )
            await send_refusal(send, refusal)
            return
        decoder = _DECODERS[codings[0]]()
        limit = self.max_body_bytes
        decoded = 0
        # The body the app sees is a different one: its length and encoding go.
        scope = dict(scope)
        scope["headers"] = [
            (name, value)
            for name, value in headers
            if name not in (b"content-encoding", b"content-length")
        ]

        async def decoding_receive() -> Message:
            nonlocal decoded
            message = await receive()
            if message["type"] != "http.request":
                return message
            try:
                chunk = decoder.decompress(message.get("body", b""), limit - decoded + 1)
                if decoder.unconsumed_tail:
                    raise too_large(limit)
                if not message.get("more_body", False):
                    chunk += decoder.flush()
                    if not decoder.eof:
                        raise refused(400, f"The {codings[0]} body ends before its end")
            except zlib.error as error:
                raise refused(400, f"The body is not valid {codings[0]}: {error}") from None
            decoded += len(chunk)
            if decoded > limit:
                raise too_large(limit)
            return {**message, "body": chunk}

        await run_refusing(self.app, scope, decoding_receive, send)
