"""Writes to users: sign-up, password re-hashes, token revocation."""

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db import event_log
from db.tables import User


async def insert_user(
    session: AsyncSession,
    *,
    handle: str,
    email: str,
    password_hash: str,
    display_name: str,
    role: str = "MEMBER",
) -> User:
    """Raises UniqueViolation (via the session's error translation) on a taken handle or
    email: the unique index decides, so two racing sign-ups cannot both win."""
    user = User(
        handle=handle,
        email=email,
        password_hash=password_hash,
        display_name=display_name,
        role=role,
    )
    session.add(user)
    await session.flush()
    await session.refresh(user)
    return user


async def set_password_hash(session: AsyncSession, user_id: int, password_hash: str) -> None:
    await session.exec(
        sa.update(User).where(col(User.id) == user_id).values(password_hash=password_hash)
    )


async def bump_token_version(session: AsyncSession, user_id: int) -> None:
    """Revokes every token issued to the user so far, and ends the live subscriptions
    those tokens opened, in every gateway process."""
    await session.exec(
        sa.update(User)
        .where(col(User.id) == user_id)
        .values(token_version=User.token_version + 1, updated_at=sa.func.now())
    )
    await event_log.append(session, "token_revoked", {"user": user_id})
