"""Accounts reached by email: verifying the address, resetting a forgotten password,
changing it. Each write queues its email in its own transaction (db/outbox.py); the
tokens the emails carry are made when they are sent (resolvers/outbound.py).

The token functions take the database and services explicitly: the account pages
(gateway/account_pages.py) call them as well as the mutations."""

from sqlmodel.ext.asyncio.session import AsyncSession

from db import account_tokens, outbox
from db.queries.users import get_token_state, users_by_id
from db.session import Database
from db.tables import User
from db.writes import accounts as account_writes
from resolvers import validation, webhook_events
from resolvers.auth import PasswordService
from resolvers.context import Context
from resolvers.errors import BadUserInput, Forbidden, require_viewer_id
from resolvers.outreach import throttle, token_hash

VERIFY_EMAIL = "VERIFY_EMAIL"
RESET_PASSWORD = "RESET_PASSWORD"
INVALID_VERIFY_TOKEN = (
    "`token` is not a valid verification link token, or it has expired or been used: "
    "ask for a new email with `resendVerificationEmail`"
)
INVALID_RESET_TOKEN = (
    "`token` is not a valid password reset token, or it has expired (after an hour) or "
    "been used: ask for a new one with `requestPasswordReset`"
)
VERIFY_TO_PUBLISH = (
    "Verify your email address before publishing: follow the link in the verification "
    "email, or ask for a new one with `resendVerificationEmail`."
)


async def queue_account_email(session: AsyncSession, user: User, topic: str) -> None:
    await outbox.enqueue(
        session, channel="EMAIL", topic=topic, recipient_id=user.id, payload={"email": user.email}
    )


async def on_registered(session: AsyncSession, user: User) -> None:
    """Inside register's transaction: the verification email and `user.registered`."""
    await queue_account_email(session, user, "verify_email")
    await webhook_events.user_registered(session, user)


async def verify_with_token(db: Database, token: str) -> User | None:
    """Uses a verification token; the verified user, or None when it is not usable."""
    async with db.session() as session:
        used = await account_tokens.use_token(session, token_hash(token), purpose=VERIFY_EMAIL)
        verified = used is not None and await account_tokens.mark_email_verified(
            session, used.user_id, email=used.scope
        )
        await session.commit()
        if used is None or not verified:
            return None
        (user,) = await users_by_id(session, [used.user_id])
        return user


async def peek_token(db: Database, token: str, purpose: str) -> User | None:
    """The user a usable token belongs to, without using it (the pages' first look)."""
    async with db.session() as session:
        found = await account_tokens.find_token(session, token_hash(token), purpose=purpose)
    return None if found is None else found[1]


async def reset_with_token(
    db: Database, passwords: PasswordService, token: str, new_password: str
) -> User:
    """Sets the password, revokes every sign-in token issued so far and every other
    reset link, and marks the address verified (the link reached it)."""
    user = await peek_token(db, token, RESET_PASSWORD)
    if user is None:
        raise BadUserInput(INVALID_RESET_TOKEN, field="token")
    validation.password(new_password, handle=user.handle, field="newPassword")
    new_hash = await passwords.hash(new_password)
    async with db.session() as session:
        used = await account_tokens.use_token(session, token_hash(token), purpose=RESET_PASSWORD)
        if used is None:  # used by a concurrent request meanwhile
            raise BadUserInput(INVALID_RESET_TOKEN, field="token")
        await _replace_password(session, user, new_hash)
        await account_tokens.mark_email_verified(session, used.user_id, email=None)
        await session.commit()
        (changed,) = await users_by_id(session, [used.user_id])
    assert changed is not None
    return changed


async def _replace_password(session: AsyncSession, user: User, new_hash: str) -> None:
    assert user.id is not None
    await account_writes.set_password_hash(session, user.id, new_hash)
    await account_writes.bump_token_version(session, user.id)
    await account_tokens.use_all_tokens(session, user.id, purpose=RESET_PASSWORD)
    await queue_account_email(session, user, "password_changed")


async def verify_email(ctx: Context, token: str) -> User:
    throttle(ctx.outreach, "verifyEmail", address=None)
    user = await verify_with_token(ctx.db, token.strip())
    if user is None:
        raise BadUserInput(INVALID_VERIFY_TOKEN, field="token")
    return user


async def resend_verification_email(ctx: Context) -> bool:
    """False (and nothing sent) when the address is verified already."""
    viewer_id = require_viewer_id(ctx.viewer.id, "ask for a verification email")
    async with ctx.db.session() as session:
        (user,) = await users_by_id(session, [viewer_id])
        assert user is not None
        throttle(ctx.outreach, "resendVerificationEmail", address=user.email)
        if user.email_verified_at is not None:
            return False
        await queue_account_email(session, user, "verify_email")
        await session.commit()
    return True


async def request_password_reset(ctx: Context, email: str) -> bool:
    """True whatever the address. It queues the request as is, known address or not,
    so both answers run the same statements; the worker looks the address up and mails
    only an account's owner (resolvers/outbound.py)."""
    address = validation.email(email)
    throttle(ctx.outreach, "requestPasswordReset", address=address)
    async with ctx.db.session() as session:
        await outbox.enqueue(
            session, channel="EMAIL", topic="password_reset", payload={"email": address}
        )
        await session.commit()
    return True


async def reset_password(ctx: Context, token: str, new_password: str) -> tuple[User, int]:
    """The user and their new token version (to sign them in)."""
    throttle(ctx.outreach, "resetPassword", address=None)
    user = await reset_with_token(ctx.db, ctx.passwords, token.strip(), new_password)
    return user, await _token_version(ctx, user)


async def change_password(
    ctx: Context, current_password: str, new_password: str
) -> tuple[User, int]:
    viewer_id = require_viewer_id(ctx.viewer.id, "change your password")
    throttle(ctx.outreach, "changePassword", address=f"user:{viewer_id}")
    async with ctx.db.session() as session:
        (user,) = await users_by_id(session, [viewer_id])
    assert user is not None
    if len(current_password) > validation.MAX_PASSWORD or not await ctx.passwords.verify(
        user.password_hash, current_password
    ):
        raise BadUserInput(
            "`currentPassword` is not your current password", field="currentPassword"
        )
    validation.password(new_password, handle=user.handle, field="newPassword")
    if new_password == current_password:
        raise BadUserInput(
            "`newPassword` must differ from the current password", field="newPassword"
        )
    new_hash = await ctx.passwords.hash(new_password)
    async with ctx.db.session() as session:
        await _replace_password(session, user, new_hash)
        await session.commit()
    return user, await _token_version(ctx, user)


async def _token_version(ctx: Context, user: User) -> int:
    assert user.id is not None
    state = await get_token_state(ctx.db, user.id, primary=True)
    assert state is not None
    return state.token_version


async def require_verified_to_publish(ctx: Context) -> None:
    """With GATEWAY_REQUIRE_VERIFIED_EMAIL, an unverified account may not publish."""
    if not ctx.outreach.require_verified_email or ctx.viewer.id is None:
        return
    async with ctx.db.session() as session:
        (user,) = await users_by_id(session, [ctx.viewer.id])
    if user is not None and user.email_verified_at is None:
        raise Forbidden(VERIFY_TO_PUBLISH)
