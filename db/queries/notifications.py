"""Marking a user's notifications read."""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Notification


def _conditions(recipient_id: int, unread_only: bool) -> list[sa.ColumnElement[bool]]:
    conditions = [col(Notification.recipient_id) == recipient_id]
    if unread_only:
        conditions.append(col(Notification.read_at).is_(None))
    return conditions


async def mark_read(session: AsyncSession, recipient_id: int, ids: Sequence[int] | None) -> int:
    """Marks unread notifications read (all of them when `ids` is None); how many changed."""
    conditions = _conditions(recipient_id, unread_only=True)
    if ids is not None:
        conditions.append(col(Notification.id).in_(ids))
    result = await session.exec(
        sa.update(Notification).where(*conditions).values(read_at=sa.func.now())
    )
    return int(result.rowcount or 0)
