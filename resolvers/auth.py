"""What sign-in needs from the transport layer, as protocols the context carries: the
gateway implements them (gateway/auth.py), so resolvers never import upward."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime


class PasswordService(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, stored_hash: str | None, password: str) -> bool: ...

    def needs_rehash(self, stored_hash: str) -> bool: ...


class TokenService(Protocol):
    def issue(self, user_id: int, token_version: int) -> IssuedToken: ...
