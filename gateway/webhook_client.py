"""Webhook deliveries over HTTP, signed as Standard Webhooks specifies
(https://www.standardwebhooks.com): headers webhook-id, webhook-timestamp and
webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>" under the endpoint's
whsec_ secret.

Connections go only to addresses checked at that moment (resolvers/addresses.py):
the host is resolved, every address checked, and the connection made to a checked
address, so a DNS answer that changes between the check and the connect cannot
redirect a delivery inward. Redirects are not followed."""

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import Any

import httpcore

from resolvers.addresses import AddressRefused, resolve_allowed

USER_AGENT = "content-gateway-webhooks/1"


class WebhookError(Exception):
    """The endpoint did not take the delivery (the message says why)."""


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, *, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve_allowed(host, port, allow_private=self._allow_private)
        except AddressRefused as error:
            raise httpcore.ConnectError(str(error)) from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks do not deliver to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class WebhookClient:
    def __init__(self, *, allow_private: bool, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=_CheckedBackend(allow_private=allow_private),
            max_connections=50,
            retries=0,
        )

    async def deliver(self, url: str, secret: str, msg_id: str, body: bytes) -> int:
        """POSTs `body`; the status when 2xx, else WebhookError. The whole exchange gets
        `timeout` seconds."""
        timestamp = int(time.time())
        headers = [
            (b"content-type", b"application/json"),
            (b"user-agent", USER_AGENT.encode()),
            (b"webhook-id", msg_id.encode()),
            (b"webhook-timestamp", str(timestamp).encode()),
            (b"webhook-signature", sign(secret, msg_id, timestamp, body).encode()),
        ]
        t = self.timeout
        extensions = {"timeout": {"connect": t, "read": t, "write": t, "pool": t}}
        try:
            async with asyncio.timeout(t):
                response = await self._pool.request(
                    "POST", url, headers=headers, content=body, extensions=extensions
                )
        except TimeoutError:
            raise WebhookError(f"no answer within {t:g} s") from None
        except httpcore.TimeoutException:
            raise WebhookError(f"no answer within {t:g} s") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as e:
            raise WebhookError(f"cannot deliver: {e}") from None
        if not 200 <= response.status < 300:
            raise WebhookError(f"the endpoint answered HTTP {response.status}")
        return response.status

    async def close(self) -> None:
        await self._pool.aclose()
