"""Reads of tags and of a user's explicit tag weights."""

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.queries.access import ContentAccess, access_clause
from db.queries.users import any_of
from db.tables import Content, ContentTag, FollowedTag, Reaction, Tag


def _in_use(access: ContentAccess) -> sa.ColumnElement[bool]:
    """A tag exists for a viewer only if it is on content they may see: a name used only
    on someone's draft, or only in someone's preferences, is theirs, not public."""
    return sa.exists(
        select(ContentTag.content_id)
        .join(Content, col(Content.id) == col(ContentTag.content_id))
        .where(col(ContentTag.tag_id) == col(Tag.id), access_clause(access))
    )


async def list_tags(
    session: AsyncSession, *, after_name: str | None, limit: int, access: ContentAccess
) -> list[Tag]:
    """Tags on content the viewer may see, by name, after `after_name`."""
    statement = select(Tag).where(_in_use(access)).order_by(col(Tag.name)).limit(limit)
    if after_name is not None:
        statement = statement.where(col(Tag.name) > after_name)
    return list((await session.exec(statement)).all())


async def count_tags(session: AsyncSession, *, access: ContentAccess) -> int:
    statement = select(sa.func.count()).select_from(Tag).where(_in_use(access))
    return int((await session.exec(statement)).one())


async def tags_by_id(
    session: AsyncSession, ids: Sequence[int], *, access: ContentAccess
) -> list[Tag | None]:
    rows = await session.exec(select(Tag).where(col(Tag.id).in_(ids), _in_use(access)))
    by_id = {row.id: row for row in rows.all()}
    return [by_id.get(i) for i in ids]


async def tag_weights_by_tag_id(
    session: AsyncSession, tag_ids: Sequence[int], *, user_id: int
) -> list[float | None]:
    """`user_id`'s explicit weight for each tag; None where they set none."""
    statement = select(FollowedTag.tag_id, FollowedTag.weight).where(
        col(FollowedTag.user_id) == user_id, col(FollowedTag.tag_id).in_(tag_ids)
    )
    weights = dict((await session.exec(statement)).all())
    return [weights.get(i) for i in tag_ids]


async def habit_by_tag_id(
    session: AsyncSession,
    tag_ids: Sequence[int],
    *,
    user_id: int,
    now: datetime,
    half_life_days: float,
) -> list[float]:
    """For each tag, `user_id`'s reactions to content carrying it, each counting
    0.5 ** (age / half-life): the raw material of learned affinity. Reactions older than
    eight half-lives weigh under 0.4% and are not read."""
    age_days = sa.func.extract("epoch", sa.literal(now) - col(Reaction.created_at)) / 86400.0
    statement = (
        select(ContentTag.tag_id, sa.func.sum(sa.func.power(0.5, age_days / half_life_days)))
        .join(Reaction, col(Reaction.content_id) == col(ContentTag.content_id))
        .where(
            col(Reaction.user_id) == user_id,
            col(Reaction.created_at) <= now,
            col(Reaction.created_at) > now - timedelta(days=half_life_days * 8),
            col(ContentTag.tag_id).in_(tag_ids),
        )
        .group_by(col(ContentTag.tag_id))
    )
    sums = dict((await session.exec(statement)).all())
    return [float(sums.get(i) or 0.0) for i in tag_ids]


async def tag_weights_of_viewers(
    session: AsyncSession, user_ids: Sequence[int], tag_ids: Sequence[int]
) -> dict[int, dict[int, float]]:
    """Explicit weights of the given tags, for many users at once: user -> tag -> weight."""
    if not tag_ids:
        return {}
    statement = select(FollowedTag.user_id, FollowedTag.tag_id, FollowedTag.weight).where(
        any_of(FollowedTag.user_id, user_ids), col(FollowedTag.tag_id).in_(tag_ids)
    )
    found: dict[int, dict[int, float]] = {}
    for user_id, tag_id, weight in (await session.exec(statement)).all():
        found.setdefault(user_id, {})[tag_id] = weight
    return found


async def habits_of_viewers(
    session: AsyncSession,
    user_ids: Sequence[int],
    tag_ids: Sequence[int],
    *,
    now: datetime,
    half_life_days: float,
) -> dict[int, dict[int, float]]:
    """`habit_by_tag_id` for many users at once: user -> tag -> decayed reactions."""
    if not tag_ids:
        return {}
    age_days = sa.func.extract("epoch", sa.literal(now) - col(Reaction.created_at)) / 86400.0
    statement = (
        select(
            Reaction.user_id,
            ContentTag.tag_id,
            sa.func.sum(sa.func.power(0.5, age_days / half_life_days)),
        )
        .join(Reaction, col(Reaction.content_id) == col(ContentTag.content_id))
        .where(
            any_of(Reaction.user_id, user_ids),
            col(Reaction.created_at) <= now,
            col(Reaction.created_at) > now - timedelta(days=half_life_days * 8),
            col(ContentTag.tag_id).in_(tag_ids),
        )
        .group_by(col(Reaction.user_id), col(ContentTag.tag_id))
    )
    found: dict[int, dict[int, float]] = {}
    for user_id, tag_id, decayed in (await session.exec(statement)).all():
        found.setdefault(user_id, {})[tag_id] = float(decayed or 0.0)
    return found
