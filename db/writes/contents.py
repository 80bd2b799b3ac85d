"""Writes to content and its tags."""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db import event_log
from db.email_settings import enqueue_notification_emails
from db.reads.access import ContentAccess, visible_to
from db.reads.fields import CONTENTS
from db.tables import Content, ContentTag
from db.writes.tags import ensure_tags


async def get_content_for_update(
    session: AsyncSession, content_id: int, *, access: ContentAccess
) -> Content | None:
    """The row if `access` sees it, locked until the transaction ends so concurrent
    writes to one content serialize."""
    statement = (
        select(Content)
        .options(defer(Content.search_vector))  # type: ignore[arg-type]
        .where(col(Content.id) == content_id, visible_to(access, CONTENTS))
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


async def notify_followers_of_content(
    session: AsyncSession, content: Content, *, audience: ContentAccess
) -> int:
    """One NEW_CONTENT_FROM_FOLLOWED per follower of the author, each announced to its
    recipient's live subscriptions, in one statement however many followers there are;
    none at all unless `audience` (what followers may see) includes the content."""
    visible = select(Content.id).where(
        col(Content.id) == content.id, visible_to(audience, CONTENTS)
    )
    if (await session.exec(visible)).first() is None:
        return 0
    logged = event_log.appended_sql(
        session,
        "notification",
        "jsonb_build_object('id', id, 'recipient', recipient_id)",
        "inserted",
    )
    statement = sa.text(
        f"""
        WITH inserted AS (
          INSERT INTO notifications (recipient_id, kind, actor_id, content_id)
          SELECT follower_id, 'NEW_CONTENT_FROM_FOLLOWED', :author_id, :content_id
          FROM follows WHERE followee_id = :author_id
          RETURNING id, recipient_id
        ), logged AS ({logged})
        SELECT count(*), coalesce(array_agg(id), '{{}}') FROM inserted
        """
    )
    result = await (await session.connection()).execute(
        statement, {"author_id": content.author_id, "content_id": content.id}
    )
    count, ids = result.one()
    if count:
        event_log.mark_appended(session)
    await enqueue_notification_emails(session, ids)
    return int(count)


async def announce_published(session: AsyncSession, content: Content) -> None:
    """Tells live subscriptions (contentPublished, contentEvents) once the publication
    commits."""
    await event_log.append(
        session, "content_published", {"id": content.id, "author": content.author_id}
    )
