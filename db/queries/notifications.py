"""A user's notifications: newest first, keyset-paged by id."""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Notification


def _conditions(recipient_id: int, unread_only: bool) -> list[sa.ColumnElement[bool]]:
    conditions = [col(Notification.recipient_id) == recipient_id]
    if unread_only:
        conditions.append(col(Notification.read_at).is_(None))
    return conditions


async def list_notifications(
    session: AsyncSession,
    recipient_id: int,
    *,
    unread_only: bool,
    before_id: int | None,
    limit: int,
) -> list[Notification]:
    conditions = _conditions(recipient_id, unread_only)
    if before_id is not None:
        conditions.append(col(Notification.id) < before_id)
    statement = (
        select(Notification).where(*conditions).order_by(col(Notification.id).desc()).limit(limit)
    )
    return list((await session.exec(statement)).all())


async def count_notifications(
    session: AsyncSession, recipient_id: int, *, unread_only: bool
) -> int:
    statement = (
        select(sa.func.count())
        .select_from(Notification)
        .where(*_conditions(recipient_id, unread_only))
    )
    return int((await session.exec(statement)).one())


async def notifications_by_id(
    session: AsyncSession, ids: Sequence[int], *, recipient_id: int
) -> list[Notification | None]:
    """Only the recipient's own: anyone else's look missing."""
    statement = select(Notification).where(
        col(Notification.id).in_(ids), col(Notification.recipient_id) == recipient_id
    )
    by_id = {row.id: row for row in (await session.exec(statement)).all()}
    return [by_id.get(i) for i in ids]


async def mark_read(session: AsyncSession, recipient_id: int, ids: Sequence[int] | None) -> int:
    """Marks unread notifications read (all of them when `ids` is None); how many changed."""
    conditions = _conditions(recipient_id, unread_only=True)
    if ids is not None:
        conditions.append(col(Notification.id).in_(ids))
    result = await session.exec(
        sa.update(Notification).where(*conditions).values(read_at=sa.func.now())
    )
    return int(result.rowcount or 0)
