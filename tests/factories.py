"""Rows for tests, written through the same session the code under test reads from."""

import itertools
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from db.session import Database
from db.tables import Content, ContentTag, Follow, Reaction, Tag, User

_numbers = itertools.count(1)
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


async def make_user(db: Database, *, handle: str | None = None, role: str = "MEMBER") -> User:
    n = next(_numbers)
    handle = handle or f"user_{n}"
    user = User(
        handle=handle,
        email=f"{handle}@example.test",
        password_hash="not-a-real-hash",
        display_name=handle.replace("_", " ").title(),
        role=role,
    )
    async with db.session() as session:
        session.add(user)
        await session.commit()
    return user


async def _tag(db: Database, name: str) -> Tag:
    async with db.session() as session:
        found = (await session.exec(select(Tag).where(col(Tag.name) == name))).first()
        if found is None:
            found = Tag(name=name)
            session.add(found)
            await session.commit()
        return found


async def make_content(
    db: Database,
    author: User,
    *,
    title: str | None = None,
    status: str = "PUBLISHED",
    visibility: str = "PUBLIC",
    language: str = "en",
    tags: tuple[str, ...] = (),
    minutes_ago: int | None = None,
    at: datetime | None = None,
    body: str = "Some *markdown* body.",
) -> Content:
    n = next(_numbers)
    when = at or BASE_TIME - timedelta(minutes=minutes_ago if minutes_ago is not None else n)
    content = Content(
        author_id=author.id,  # type: ignore[arg-type]
        title=title or f"Content {n}",
        summary=f"Summary {n}",
        body=body,
        status=status,
        visibility=visibility,
        language=language,
        created_at=when,
        updated_at=when,
        published_at=when if status != "DRAFT" else None,
    )
    tag_rows = [await _tag(db, name) for name in tags]
    async with db.session() as session:
        session.add(content)
        await session.flush()
        for tag in tag_rows:
            session.add(ContentTag(content_id=content.id, tag_id=tag.id))  # type: ignore[arg-type]
        await session.commit()
        await session.refresh(content)
    return content


async def react(db: Database, user: User, content: Content, *, at: datetime | None = None) -> None:
    async with db.session() as session:
        reaction = Reaction(user_id=user.id, content_id=content.id)  # type: ignore[arg-type]
        if at is not None:
            reaction.created_at = at
        session.add(reaction)
        await session.commit()


async def set_preferences(
    db: Database,
    user: User,
    *,
    weights: dict[str, float] | None = None,
    muted_tags: tuple[str, ...] = (),
    muted_authors: tuple[User, ...] = (),
    languages: tuple[str, ...] = (),
) -> None:
    from db.writes.preferences import save_preferences

    async with db.session() as session:
        await save_preferences(
            session,
            user.id,  # type: ignore[arg-type]
            followed_tags=list((weights or {}).items()),
            muted_tags=list(muted_tags),
            muted_author_ids=[a.id for a in muted_authors],  # type: ignore[misc]
            languages=list(languages),
        )
        await session.commit()


async def follow(db: Database, follower: User, followee: User) -> None:
    async with db.session() as session:
        session.add(Follow(follower_id=follower.id, followee_id=followee.id))  # type: ignore[arg-type]
        await session.commit()
