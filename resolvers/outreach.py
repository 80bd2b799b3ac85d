"""What the account, email and webhook resolvers need from the process: the public URL
links point at, switches from the settings, the key link tokens are derived from, and
the account rate limits, all handed in by the gateway (it reads the settings)."""

import base64
import hashlib
import hmac
from dataclasses import dataclass, field, replace
from typing import Protocol
from urllib.parse import quote

from resolvers.errors import GatewayError

VERIFY_EMAIL_PATH = "/account/verify-email"
RESET_PASSWORD_PATH = "/account/reset-password"
UNSUBSCRIBE_PATH = "/account/unsubscribe"


class Throttle(Protocol):
    """A token bucket per key (gateway/rate_limits.py's RateLimiter)."""

    def charge(self, key: str, cost: float) -> int | None: ...


class TooManyAttempts(GatewayError):
    code = "RATE_LIMITED"

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(
            f"Too many {what} requests: retry in {retry_after} s.", retryAfter=retry_after
        )


@dataclass(frozen=True, slots=True)
class Outreach:
    public_url: str = "http://127.0.0.1:8000"
    # Derives the tokens links carry; from the server secret, so tokens are in no table.
    link_key: bytes = b"development"
    require_verified_email: bool = False
    allow_private_webhooks: bool = False
    # Where a content item links in emails: "{id}" becomes its global id; None: no link.
    content_url: str | None = None
    digest_items: int = 10
    per_address: Throttle | None = None
    per_client: Throttle | None = None
    # The address the current request came from (per-client limits).
    client: str | None = field(default=None, compare=False)

    def for_client(self, client: str | None) -> "Outreach":
        return replace(self, client=client)

    def link(self, path: str, token: str) -> str:
        return f"{self.public_url.rstrip('/')}{path}?token={quote(token, safe='')}"

    def content_link(self, global_id: str) -> str | None:
        return self.content_url.replace("{id}", global_id) if self.content_url else None


def link_token(key: bytes, purpose: str, delivery_id: int) -> str:
    """The token of a link in the email of outbox row `delivery_id`: the same on every
    attempt to send that email, unguessable without the key, and stored nowhere."""
    mac = hmac.new(key, f"{purpose}:{delivery_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def throttle(outreach: Outreach, what: str, *, address: str | None) -> None:
    """Charges one `what` request to `address` (an email address, or an account) and to
    the client; RATE_LIMITED when either has none left. Both are charged whether or not
    the address belongs to anyone, so the limit tells nothing about accounts."""
    charges: list[tuple[Throttle | None, str]] = [
        (outreach.per_client, f"{what}:client:{outreach.client or 'unknown'}")
    ]
    if address is not None:
        charges.append((outreach.per_address, f"{what}:address:{address}"))
    for limiter, key in charges:
        if limiter is None:
            continue
        retry_after = limiter.charge(key, 1)
        if retry_after is not None:
            raise TooManyAttempts(what, retry_after)
