"""Reads of users that writes, sign-in and outgoing messages need."""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.read_pool import Planning
from db.reads.compile import compile_select
from db.reads.fields import USERS
from db.reads.sql import BIGINT, param
from db.session import Database
from db.tables import User


async def users_by_id(session: AsyncSession, ids: Sequence[int]) -> list[User | None]:
    """In the order of `ids`; None where there is no such user."""
    rows = await session.exec(select(User).where(col(User.id).in_(ids)))
    by_id = {row.id: row for row in rows.all()}
    return [by_id.get(i) for i in ids]


async def users_by_handle(session: AsyncSession, handles: Sequence[str]) -> list[User | None]:
    rows = await session.exec(select(User).where(col(User.handle).in_(handles)))
    by_handle = {row.handle: row for row in rows.all()}
    return [by_handle.get(h) for h in handles]


@dataclass(frozen=True, slots=True)
class TokenState:
    role: str
    token_version: int


# Every signed-in request checks its token against this: one statement on the read pool
# the request's own statement most likely uses (a lookup by key: one plan fits all).
_TOKEN_STATE = compile_select(
    sa.select(USERS.c.role, USERS.c.token_version).where(USERS.c.id == param("user", BIGINT))
)


async def get_token_state(
    db: Database, user_id: int, *, primary: bool = False
) -> TokenState | None:
    """What a token is checked against: None when the user no longer exists. `primary`
    for what was just written (a replica may not have it yet)."""
    rows = await db.fetch(
        _TOKEN_STATE.sql,
        *_TOKEN_STATE.arguments({"user": user_id}),
        planning=Planning.GENERIC,
        primary=primary,
    )
    return TokenState(role=rows[0][0], token_version=rows[0][1]) if rows else None


async def get_user_by_login(session: AsyncSession, login: str) -> User | None:
    """The user whose handle or email is `login` (already normalized to lowercase)."""
    statement = select(User).where(sa.or_(col(User.handle) == login, col(User.email) == login))
    return (await session.exec(statement)).first()
