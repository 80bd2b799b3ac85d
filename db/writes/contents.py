"""Writes to content and its tags."""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.queries.access import ContentAccess, access_clause
from db.tables import Content, ContentTag, Follow, Notification
from db.writes.tags import ensure_tags


async def get_content_for_update(
    session: AsyncSession, content_id: int, *, access: ContentAccess
) -> Content | None:
    """The row if `access` sees it, locked until the transaction ends so concurrent
    writes to one content serialize."""
    statement = (
        select(Content)
        .options(defer(Content.search_vector))  # type: ignore[arg-type]
        .where(col(Content.id) == content_id, access_clause(access))
        .with_for_update()
    )
    return (await session.exec(statement)).first()


async def set_tags(session: AsyncSession, content_id: int, names: Sequence[str]) -> None:
    tags = await ensure_tags(session, names)
    await session.exec(sa.delete(ContentTag).where(col(ContentTag.content_id) == content_id))
    for tag in tags:
        session.add(ContentTag(content_id=content_id, tag_id=tag.id))  # type: ignore[arg-type]
    await session.flush()


async def insert_content(
    session: AsyncSession, *, author_id: int, tags: Sequence[str], **fields: Any
) -> Content:
    content = Content(author_id=author_id, status="DRAFT", **fields)
    session.add(content)
    await session.flush()
    assert content.id is not None
    await set_tags(session, content.id, tags)
    await session.refresh(content)
    return content


async def update_content(
    session: AsyncSession, content: Content, *, tags: Sequence[str] | None, **fields: Any
) -> Content:
    assert content.id is not None
    for name, value in fields.items():
        setattr(content, name, value)
    content.updated_at = sa.func.now()  # type: ignore[assignment]
    session.add(content)
    if tags is not None:
        await set_tags(session, content.id, tags)
    await session.flush()
    await session.refresh(content)
    return content


async def publish_content(session: AsyncSession, content: Content) -> bool:
    """Publishes; True when this is its first publication (published_at was unset)."""
    first_time = content.published_at is None
    content.status = "PUBLISHED"
    content.updated_at = sa.func.now()  # type: ignore[assignment]
    if first_time:
        content.published_at = sa.func.now()  # type: ignore[assignment]
    session.add(content)
    await session.flush()
    await session.refresh(content)
    return first_time


async def archive_content(session: AsyncSession, content: Content) -> None:
    content.status = "ARCHIVED"
    content.updated_at = sa.func.now()  # type: ignore[assignment]
    session.add(content)
    await session.flush()
    await session.refresh(content)


async def delete_content(session: AsyncSession, content: Content) -> None:
    await session.delete(content)
    await session.flush()


async def notify_followers_of_content(session: AsyncSession, content: Content) -> int:
    """One NEW_CONTENT_FROM_FOLLOWED per follower of the author, in one statement."""
    followers = select(
        col(Follow.follower_id),
        sa.literal("NEW_CONTENT_FROM_FOLLOWED"),
        sa.literal(content.author_id),
        sa.literal(content.id),
    ).where(col(Follow.followee_id) == content.author_id)
    result = await session.exec(
        sa.insert(Notification).from_select(
            ["recipient_id", "kind", "actor_id", "content_id"], followers
        )
    )
    return int(result.rowcount or 0)
