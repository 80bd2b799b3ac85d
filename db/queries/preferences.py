"""Reads of a user's saved preferences."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.queries.users import any_of
from db.tables import ContentTag, FollowedTag, MutedAuthor, MutedTag, Preferences, Tag, User


@dataclass(frozen=True, slots=True)
class PreferencesView:
    """A user's preferences; users who never saved any get the empty defaults."""

    followed_tags: list[tuple[Tag, float]] = field(default_factory=list)
    muted_tags: list[Tag] = field(default_factory=list)
    muted_authors: list[User] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    updated_at: datetime | None = None


async def get_preferences(session: AsyncSession, user_id: int) -> PreferencesView:
    saved = await session.get(Preferences, user_id)
    if saved is None:
        user = await session.get(User, user_id)
        return PreferencesView(updated_at=user.created_at if user else None)
    followed = await session.exec(
        select(Tag, FollowedTag.weight)
        .join(FollowedTag, col(FollowedTag.tag_id) == col(Tag.id))
        .where(col(FollowedTag.user_id) == user_id)
        .order_by(col(FollowedTag.weight).desc(), col(Tag.name))
    )
    muted_tags = await session.exec(
        select(Tag)
        .join(MutedTag, col(MutedTag.tag_id) == col(Tag.id))
        .where(col(MutedTag.user_id) == user_id)
        .order_by(col(Tag.name))
    )
    muted_authors = await session.exec(
        select(User)
        .join(MutedAuthor, col(MutedAuthor.author_id) == col(User.id))
        .where(col(MutedAuthor.user_id) == user_id)
        .order_by(col(User.handle))
    )
    return PreferencesView(
        followed_tags=[(tag, weight) for tag, weight in followed.all()],
        muted_tags=list(muted_tags.all()),
        muted_authors=list(muted_authors.all()),
        languages=list(saved.languages),
        updated_at=saved.updated_at,
    )


async def viewers_muting(
    session: AsyncSession, viewer_ids: Sequence[int], *, content_id: int, author_id: int
) -> set[int]:
    """Which of `viewer_ids` muted the content's author or one of its tags."""
    by_tag = (
        select(MutedTag.user_id)
        .join(ContentTag, col(ContentTag.tag_id) == col(MutedTag.tag_id))
        .where(col(ContentTag.content_id) == content_id, any_of(MutedTag.user_id, viewer_ids))
    )
    by_author = select(MutedAuthor.user_id).where(
        col(MutedAuthor.author_id) == author_id, any_of(MutedAuthor.user_id, viewer_ids)
    )
    rows = await session.exec(by_tag.union(by_author))  # type: ignore[call-overload]
    return {int(row[0]) for row in rows.all()}
