"""Passwords (argon2id) and signed, expiring, revocable tokens (JWT, HS256).

A token carries its user's token version; logout bumps the version, so every token
issued before it stops working at once."""

import asyncio
import functools
import hashlib
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from db.queries.users import TokenState, get_token_state
from db.session import Database
from resolvers.auth import IssuedToken, TokenCheck
from resolvers.errors import Unauthenticated
from resolvers.viewer import Viewer

ALGORITHM = "HS256"
ISSUER = "content-gateway"
# Tokens whose signature and claims were checked, kept by the token itself: a client
# sends the same one with every request, and checking it again cost about a third of
# authenticating a request in Python (the database's check of its version stays).
VERIFIED_TOKENS = 4096
# Signed-in users whose role and token version a process remembers (SignedInViewers).
KNOWN_USERS = 65_536


class Passwords:
    """argon2id hashing, off the event loop: one hash costs tens of milliseconds of CPU."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Checked when a login names nobody, so that answer takes as long as a wrong password.
        self._decoy = self._hasher.hash("decoy password that matches nothing")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(stored_hash or self._decoy, password) and (
                    stored_hash is not None
                )
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


class Tokens:
    def __init__(self, secret: str, ttl: timedelta) -> None:
        # A key of its own, so a token can never double as a page cursor or the reverse.
        self._key = hashlib.sha256(b"token:" + secret.encode()).hexdigest()
        self.ttl = ttl
        self._verified: OrderedDict[str, tuple[int, int, datetime]] = OrderedDict()

    def issue(
        self, user_id: int, token_version: int, *, now: datetime | None = None
    ) -> IssuedToken:
        issued = now or datetime.now(UTC)
        expires = issued + self.ttl
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "tv": token_version,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
        }
        return IssuedToken(jwt.encode(claims, self._key, algorithm=ALGORITHM), expires)

    def claims(self, token: str) -> tuple[int, int, datetime]:
        """(user id, token version, expiry); Unauthenticated when forged, malformed or
        expired."""
        found = self._verified.get(token)
        if found is None:
            found = self._checked(token)
            self._verified[token] = found
            if len(self._verified) > VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(token)
        # As PyJWT decides it: expired from the second `exp` names.
        if found[2] <= datetime.now(UTC):
            raise Unauthenticated("The token has expired: sign in again.")
        return found

    def _checked(self, token: str) -> tuple[int, int, datetime]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
            expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
            return int(claims["sub"]), int(claims["tv"]), expires
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired: sign in again.") from None
        except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
            raise Unauthenticated("The token is not valid: sign in again.") from None


def _claims(header: str | None, tokens: Tokens) -> tuple[int, int, datetime] | None:
    """The claims of the Authorization header's token (None: no header, anonymous);
    Unauthenticated when the header or its token is bad."""
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send the token as `Authorization: Bearer <token>`.")
    return tokens.claims(token.strip())


async def authenticate(
    header: str | None, *, tokens: Tokens, db: Database
) -> tuple[Viewer, datetime | None]:
    """The viewer and when their token expires: anonymous (no expiry) without a header;
    otherwise the token's user, or Unauthenticated: a bad, expired or revoked token never
    degrades to anonymous."""
    claims = _claims(header, tokens)
    if claims is None:
        return Viewer.anonymous(), None
    user_id, version, expires = claims
    return _signed_in(user_id, version, await get_token_state(db, user_id)), expires


def _signed_in(user_id: int, version: int, state: TokenState | None) -> Viewer:
    if state is None or state.token_version != version:
        raise Unauthenticated("The token has been revoked: sign in again.")
    return Viewer(id=user_id, role=state.role)


class SignedInViewers:
    """Who each HTTP request's token signs in, confirmed by the database once per process
    and user: later requests of a user this process knows carry a TokenCheck instead
    (resolvers/auth.py), which their read verifies in its own statement. What is
    remembered is only a guess at the role and token version to compile the read for:
    a logout or a role change made anywhere fails that statement's check, and the
    request is then confirmed here as any other and answered for who it really is."""

    def __init__(self, tokens: Tokens, db: Database, size: int = KNOWN_USERS) -> None:
        self.tokens = tokens
        self.db = db
        self.size = size
        self._known: OrderedDict[int, TokenState] = OrderedDict()

    async def viewer(self, header: str | None) -> tuple[Viewer, TokenCheck | None]:
        claims = _claims(header, self.tokens)
        if claims is None:
            return Viewer.anonymous(), None
        user_id, version, _ = claims
        known = self._known.get(user_id)
        if known is None or known.token_version != version:
            return await self.confirm(user_id, version), None
        self._known.move_to_end(user_id)
        check = TokenCheck(version, functools.partial(self.confirm, user_id, version))
        return Viewer(id=user_id, role=known.role), check

    async def confirm(self, user_id: int, version: int) -> Viewer:
        """The viewer the token (`user_id`, `version`) signs in, as the database says now."""
        state = await get_token_state(self.db, user_id)
        if state is None:
            self._known.pop(user_id, None)
        else:
            self._known[user_id] = state
            self._known.move_to_end(user_id)
            if len(self._known) > self.size:
                self._known.popitem(last=False)
        return _signed_in(user_id, version, state)


async def viewer_from_header(header: str | None, *, tokens: Tokens, db: Database) -> Viewer:
    viewer, _ = await authenticate(header, tokens=tokens, db=db)
    return viewer
