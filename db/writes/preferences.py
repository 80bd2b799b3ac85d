"""Saving preferences: each list given replaces the stored one; a list left out stays."""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import FollowedTag, MutedAuthor, MutedTag, Preferences, Tag
from db.writes.tags import ensure_tags


class FollowedAndMuted(Exception):
    """A tag would be both followed and muted: `tag` is in the list given (`given`,
    "followed" or "muted") and already stored in the other."""

    def __init__(self, tag: str, given: str) -> None:
        super().__init__(f"#{tag} would be followed and muted")
        self.tag = tag
        self.given = given


async def _stored_names(
    session: AsyncSession, table: type[FollowedTag | MutedTag], user_id: int
) -> set[str]:
    statement = (
        select(Tag.name)
        .join(table, col(table.tag_id) == col(Tag.id))
        .where(col(table.user_id) == user_id)
    )
    return set((await session.exec(statement)).all())


async def save_preferences(
    session: AsyncSession,
    user_id: int,
    *,
    followed_tags: Sequence[tuple[str, float]] | None,
    muted_tags: Sequence[str] | None,
    muted_author_ids: Sequence[int] | None,
    languages: Sequence[str] | None,
) -> None:
    upsert = insert(Preferences).values(user_id=user_id, languages=list(languages or []))
    changes: dict[str, object] = {"updated_at": sa.func.now()}
    if languages is not None:
        changes["languages"] = upsert.excluded.languages
    # The upsert locks the row, so two saves that each set one list cannot together leave
    # a tag in both: the second one sees what the first stored.
    await session.exec(upsert.on_conflict_do_update(index_elements=["user_id"], set_=changes))
    if followed_tags is not None and muted_tags is None:
        muted = await _stored_names(session, MutedTag, user_id)
        clash = next((name for name, _ in followed_tags if name in muted), None)
        if clash is not None:
            raise FollowedAndMuted(clash, given="followed")
    if muted_tags is not None and followed_tags is None:
        followed = await _stored_names(session, FollowedTag, user_id)
        clash = next((name for name in muted_tags if name in followed), None)
        if clash is not None:
            raise FollowedAndMuted(clash, given="muted")
    if followed_tags is not None:
        tags = await ensure_tags(session, [name for name, _ in followed_tags])
        await session.exec(sa.delete(FollowedTag).where(col(FollowedTag.user_id) == user_id))
        for tag, (_, weight) in zip(tags, followed_tags, strict=True):
            session.add(FollowedTag(user_id=user_id, tag_id=tag.id, weight=weight))  # type: ignore[arg-type]
    if muted_tags is not None:
        tags = await ensure_tags(session, muted_tags)
        await session.exec(sa.delete(MutedTag).where(col(MutedTag.user_id) == user_id))
        for tag in tags:
            session.add(MutedTag(user_id=user_id, tag_id=tag.id))  # type: ignore[arg-type]
    if muted_author_ids is not None:
        await session.exec(sa.delete(MutedAuthor).where(col(MutedAuthor.user_id) == user_id))
        for author_id in muted_author_ids:
            session.add(MutedAuthor(user_id=user_id, author_id=author_id))
    await session.flush()
