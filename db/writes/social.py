"""Follows, reactions and the notifications they leave."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.email_settings import enqueue_notification_emails
from db.notify import emit
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
    actor_id: int | None = None,
    content_id: int | None = None,
) -> None:
    """Writes the notification and announces it to its recipient's live subscriptions."""
    notification = Notification(
        recipient_id=recipient_id, kind=kind, actor_id=actor_id, content_id=content_id
    )
    session.add(notification)
    await session.flush()
    await emit(session, {"type": "notification", "id": notification.id, "recipient": recipient_id})
    await enqueue_notification_emails(session, [notification.id])  # type: ignore[list-item]
