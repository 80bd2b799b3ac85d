"""Follows, reactions and the notifications they leave."""

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db import event_log
from db.email_settings import enqueue_notification_emails
from db.tables import Follow, Notification, Reaction


async def insert_follow(session: AsyncSession, *, follower_id: int, followee_id: int) -> bool:
    """True when this created the follow; False when it already existed."""
    result = await session.exec(
        insert(Follow)
        .values(follower_id=follower_id, followee_id=followee_id)
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount)


async def delete_follow(session: AsyncSession, *, follower_id: int, followee_id: int) -> bool:
    result = await session.exec(
        sa.delete(Follow).where(
            col(Follow.follower_id) == follower_id, col(Follow.followee_id) == followee_id
        )
    )
    return bool(result.rowcount)


async def insert_reaction(session: AsyncSession, *, user_id: int, content_id: int) -> bool:
    result = await session.exec(
        insert(Reaction).values(user_id=user_id, content_id=content_id).on_conflict_do_nothing()
    )
    return bool(result.rowcount)


async def delete_reaction(session: AsyncSession, *, user_id: int, content_id: int) -> bool:
    result = await session.exec(
        sa.delete(Reaction).where(
            col(Reaction.user_id) == user_id, col(Reaction.content_id) == content_id
        )
    )
    return bool(result.rowcount)


async def insert_notification(
    session: AsyncSession,
    *,
    recipient_id: int,
    kind: str,
    actor_id: int,
    content_id: int | None = None,
    collapse: timedelta = timedelta(0),
) -> bool:
    """Writes the notification and announces it to its recipient's live subscriptions,
    unless the same one (actor, recipient, kind, content) was written within `collapse`:
    following and unfollowing someone fifty times leaves them one notification. True
    when it was written."""
    recent = sa.select(col(Notification.id)).where(
        col(Notification.actor_id) == actor_id,
        col(Notification.recipient_id) == recipient_id,
        col(Notification.kind) == kind,
        col(Notification.content_id).is_not_distinct_from(sa.cast(content_id, sa.BigInteger)),
        col(Notification.created_at) > sa.func.now() - collapse,
    )
    values = sa.select(
        sa.cast(recipient_id, sa.BigInteger),
        sa.literal(kind),
        sa.cast(actor_id, sa.BigInteger),
        sa.cast(content_id, sa.BigInteger),
    ).where(~sa.exists(recent))
    statement = (
        insert(Notification)
        .from_select(["recipient_id", "kind", "actor_id", "content_id"], values)
        .returning(col(Notification.id))
    )
    notification_id = (await session.exec(statement)).scalar_one_or_none()
    if notification_id is None:
        return False
    await event_log.append(
        session, "notification", {"id": notification_id, "recipient": recipient_id}
    )
    await enqueue_notification_emails(session, [notification_id])
    return True
