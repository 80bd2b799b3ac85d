"""Signing up, in and out."""

from dataclasses import dataclass
from datetime import datetime

from db.errors import UniqueViolation
from db.queries.users import get_user_by_login
from db.tables import User
from db.writes import accounts as writes
from resolvers import email_accounts, validation
from resolvers.context import Context
from resolvers.errors import Conflict, Unauthenticated, require_viewer_id

LOGIN_FAILED = "invalid login or password"


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    expires_at: datetime
    user: User


def _conflict(error: UniqueViolation) -> Conflict:
    if error.constraint and "email" in error.constraint:
        return Conflict("`email` is already registered: sign in instead", field="email")
    return Conflict("`handle` is already taken: choose another", field="handle")


async def register(
    ctx: Context, *, handle: str, email: str, password: str, display_name: str
) -> SignedIn:
    handle = validation.handle(handle)
    email = validation.email(email)
    password = validation.password(password, handle=handle)
    display_name = validation.text(
        display_name, field="displayName", maximum=validation.MAX_DISPLAY_NAME
    )
    throttle = ctx.safeguards.throttle
    if throttle is not None:
        # Before the costly hash; a clash (handle taken) counts too: it probes accounts.
        await throttle.sign_up(ctx)
    password_hash = await ctx.passwords.hash(password)
    try:
        async with ctx.db.session() as session:
            user = await writes.insert_user(
                session,
                handle=handle,
                email=email,
                password_hash=password_hash,
                display_name=display_name,
            )
            await email_accounts.on_registered(session, user)
            await session.commit()
    except UniqueViolation as error:
        # The unique index decides, so two racing sign-ups for one handle cannot both win.
        raise _conflict(error) from None
    assert user.id is not None
    issued = ctx.tokens.issue(user.id, user.token_version)
    return SignedIn(issued.token, issued.expires_at, user)


async def login(ctx: Context, *, login: str, password: str) -> SignedIn:
    """Same message, and the same argon2 work, whether the login or the password is wrong.
    Failed attempts are throttled per login and per address (resolvers/throttle.py)."""
    normalized = validation.normalize_handle(login)
    throttle = ctx.safeguards.throttle
    if throttle is not None:
        await throttle.begin_sign_in(ctx, normalized)
    user = await _check_password(ctx, normalized, password)
    if throttle is not None:
        await throttle.end_sign_in(ctx, normalized, succeeded=user is not None)
    if user is None:
        raise Unauthenticated(LOGIN_FAILED)
    assert user.id is not None
    if ctx.passwords.needs_rehash(user.password_hash):
        new_hash = await ctx.passwords.hash(password)
        async with ctx.db.session() as session:
            await writes.set_password_hash(session, user.id, new_hash)
            await session.commit()
    issued = ctx.tokens.issue(user.id, user.token_version)
    return SignedIn(issued.token, issued.expires_at, user)


async def _check_password(ctx: Context, login: str, password: str) -> User | None:
    """The user `login` names if `password` is theirs, else None."""
    if len(password) > validation.MAX_PASSWORD:
        return None
    async with ctx.db.session() as session:
        user = await get_user_by_login(session, login) if login else None
    if not await ctx.passwords.verify(user.password_hash if user else None, password):
        return None
    return user


async def logout(ctx: Context) -> bool:
    viewer_id = require_viewer_id(ctx.viewer.id, "sign out")
    async with ctx.db.session() as session:
        await writes.bump_token_version(session, viewer_id)
        await session.commit()
    return True
