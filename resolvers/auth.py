"""What sign-in needs from the transport layer, as protocols the context carries: the
gateway implements them (gateway/auth.py), so resolvers never import upward."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from resolvers.viewer import Viewer


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """A signed-in viewer taken on the word of their token's signature and what this
    process last saw of their role and token version, before the database confirmed
    them. A read checks both in its own statement (execution/executor.py), so a signed-in
    read costs one statement, not two; anything else confirms first. `confirm` checks the
    token against the database and gives the viewer it signs in, or raises
    Unauthenticated."""

    token_version: int
    confirm: Callable[[], Awaitable[Viewer]]


class PasswordService(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, stored_hash: str | None, password: str) -> bool: ...

    def needs_rehash(self, stored_hash: str) -> bool: ...


class TokenService(Protocol):
    def issue(self, user_id: int, token_version: int) -> IssuedToken: ...
