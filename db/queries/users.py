"""Reads of users and the follow graph, batched by key."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Follow, Reaction, User


def any_of(column: Any, ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """`column = ANY($1)` with the ids as one array parameter. An IN list of thousands
    of ids (the subscribed viewers of a live event) is expanded into as many literal
    parameters by SQLAlchemy, which cost a tenth of a large fan-out's CPU."""
    array = sa.bindparam("ids", list(ids), type_=ARRAY(sa.BigInteger), unique=True)
    return col(column) == sa.any_(array)


async def users_by_id(session: AsyncSession, ids: Sequence[int]) -> list[User | None]:
    rows = await session.exec(select(User).where(col(User.id).in_(ids)))
    by_id = {row.id: row for row in rows.all()}
    return [by_id.get(i) for i in ids]


async def users_by_handle(session: AsyncSession, handles: Sequence[str]) -> list[User | None]:
    rows = await session.exec(select(User).where(col(User.handle).in_(handles)))
    by_handle = {row.handle: row for row in rows.all()}
    return [by_handle.get(h) for h in handles]


async def follower_counts_by_user_id(session: AsyncSession, ids: Sequence[int]) -> list[int]:
    statement = (
        select(Follow.followee_id, sa.func.count())
        .where(col(Follow.followee_id).in_(ids))
        .group_by(col(Follow.followee_id))
    )
    counts = dict((await session.exec(statement)).all())
    return [int(counts.get(i, 0)) for i in ids]


async def following_counts_by_user_id(session: AsyncSession, ids: Sequence[int]) -> list[int]:
    statement = (
        select(Follow.follower_id, sa.func.count())
        .where(col(Follow.follower_id).in_(ids))
        .group_by(col(Follow.follower_id))
    )
    counts = dict((await session.exec(statement)).all())
    return [int(counts.get(i, 0)) for i in ids]


async def follows_by_followee_id(
    session: AsyncSession, followee_ids: Sequence[int], *, follower_id: int
) -> list[bool]:
    """Whether `follower_id` follows each of `followee_ids`."""
    statement = select(Follow.followee_id).where(
        col(Follow.follower_id) == follower_id, col(Follow.followee_id).in_(followee_ids)
    )
    followed = set((await session.exec(statement)).all())
    return [i in followed for i in followee_ids]


async def reactions_by_content_id(
    session: AsyncSession, content_ids: Sequence[int], *, user_id: int
) -> list[bool]:
    """Whether `user_id` reacted to each of `content_ids`."""
    statement = select(Reaction.content_id).where(
        col(Reaction.user_id) == user_id, col(Reaction.content_id).in_(content_ids)
    )
    reacted = set((await session.exec(statement)).all())
    return [i in reacted for i in content_ids]


@dataclass(frozen=True, slots=True)
class TokenState:
    role: str
    token_version: int


async def get_token_state(session: AsyncSession, user_id: int) -> TokenState | None:
    """What a token is checked against: None when the user no longer exists."""
    row = (
        await session.exec(select(User.role, User.token_version).where(col(User.id) == user_id))
    ).first()
    return None if row is None else TokenState(role=row[0], token_version=row[1])


async def get_user_by_login(session: AsyncSession, login: str) -> User | None:
    """The user whose handle or email is `login` (already normalized to lowercase)."""
    statement = select(User).where(sa.or_(col(User.handle) == login, col(User.email) == login))
    return (await session.exec(statement)).first()


async def reactors_among(
    session: AsyncSession, user_ids: Sequence[int], *, content_id: int
) -> set[int]:
    """Which of `user_ids` reacted to the content."""
    statement = select(Reaction.user_id).where(
        col(Reaction.content_id) == content_id, any_of(Reaction.user_id, user_ids)
    )
    return set((await session.exec(statement)).all())
