"""Frozen ranked lists (feed and search walks), kept for a limited time."""

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import FeedSnapshot


async def insert_snapshot(
    session: AsyncSession,
    snapshot_id: str,
    *,
    viewer_id: int | None,
    items: list[Any],
    lifetime: timedelta,
) -> None:
    """Stores a walk's ranked items unless a walk of that id exists (shared walks are
    started by whoever comes first), and drops walks past their lifetime so the table
    holds only live ones (an index on created_at keeps that delete cheap)."""
    await session.exec(
        sa.delete(FeedSnapshot).where(col(FeedSnapshot.created_at) < sa.func.now() - lifetime)
    )
    await session.exec(
        insert(FeedSnapshot)
        .values(id=snapshot_id, viewer_id=viewer_id, items=items)
        .on_conflict_do_nothing(index_elements=["id"])
    )


async def get_snapshot(
    session: AsyncSession, snapshot_id: str, *, viewer_id: int | None, lifetime: timedelta
) -> list[Any] | None:
    """The items, or None when the walk is unknown, someone else's, or expired."""
    statement = select(FeedSnapshot.items).where(
        col(FeedSnapshot.id) == snapshot_id,
        col(FeedSnapshot.viewer_id).is_(None)
        if viewer_id is None
        else col(FeedSnapshot.viewer_id) == viewer_id,
        col(FeedSnapshot.created_at) >= sa.func.now() - lifetime,
    )
    items = (await session.exec(statement)).first()
    return None if items is None else list(items)
