"""The tokens links in emails carry, by the SHA-256 of the token (the token itself is
stored nowhere). A token is usable once, until it expires."""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import AccountToken, User

_NOW = sa.func.clock_timestamp()


async def store_token(
    session: AsyncSession,
    *,
    token_hash: bytes,
    user_id: int,
    purpose: str,
    scope: str | None,
    ttl_seconds: float,
) -> None:
    """Idempotent: storing the same token again (a retried email) only moves its expiry
    to `ttl_seconds` from now, so the link lasts that long from when it is sent."""
    expires = _NOW + sa.func.make_interval(0, 0, 0, 0, 0, 0, ttl_seconds)
    statement = insert(AccountToken).values(
        token_hash=token_hash, user_id=user_id, purpose=purpose, scope=scope, expires_at=expires
    )
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=["token_hash"],
            set_={"expires_at": statement.excluded.expires_at},
            where=col(AccountToken.used_at).is_(None),
        )
    )


def _usable(token_hash: bytes, purpose: str) -> list[sa.ColumnElement[bool]]:
    return [
        col(AccountToken.token_hash) == token_hash,
        col(AccountToken.purpose) == purpose,
        col(AccountToken.used_at).is_(None),
        col(AccountToken.expires_at) > _NOW,
    ]


async def find_token(
    session: AsyncSession, token_hash: bytes, *, purpose: str, used_too: bool = False
) -> tuple[AccountToken, User] | None:
    """The unexpired token and its user, without using it; None when unknown, expired,
    or (unless `used_too`) used."""
    conditions = _usable(token_hash, purpose)
    if used_too:
        conditions = conditions[:2] + conditions[3:]
    statement = (
        select(AccountToken, User)
        .join(User, col(User.id) == col(AccountToken.user_id))
        .where(*conditions)
    )
    row = (await session.exec(statement)).first()
    return None if row is None else (row[0], row[1])


@dataclass(frozen=True, slots=True)
class UsedToken:
    user_id: int
    scope: str | None


async def use_token(session: AsyncSession, token_hash: bytes, *, purpose: str) -> UsedToken | None:
    """Marks the token used; None when it is not usable. Of two requests racing with
    one token, only one gets it."""
    statement = (
        sa.update(AccountToken)
        .where(*_usable(token_hash, purpose))
        .values(used_at=_NOW)
        .returning(col(AccountToken.user_id), col(AccountToken.scope))
    )
    row = (await (await session.connection()).execute(statement)).first()
    return None if row is None else UsedToken(user_id=row.user_id, scope=row.scope)


async def use_all_tokens(session: AsyncSession, user_id: int, *, purpose: str) -> None:
    """Voids every outstanding token of that purpose (older reset links after a reset)."""
    await session.exec(
        sa.update(AccountToken)
        .where(
            col(AccountToken.user_id) == user_id,
            col(AccountToken.purpose) == purpose,
            col(AccountToken.used_at).is_(None),
        )
        .values(used_at=_NOW)
    )


async def delete_expired_tokens(session: AsyncSession) -> int:
    result = await session.exec(sa.delete(AccountToken).where(col(AccountToken.expires_at) < _NOW))
    return int(result.rowcount or 0)


async def mark_email_verified(session: AsyncSession, user_id: int, *, email: str | None) -> bool:
    """Sets the user verified (unless already); with `email`, only if that is still
    their address. True when the user is verified afterwards."""
    conditions = [col(User.id) == user_id]
    if email is not None:
        conditions.append(col(User.email) == email)
    await session.exec(
        sa.update(User)
        .where(*conditions, col(User.email_verified_at).is_(None))
        .values(email_verified_at=_NOW)
    )
    verified = select(User.id).where(*conditions, col(User.email_verified_at).is_not(None))
    return (await session.exec(verified)).first() is not None
