"""Per-request DataLoaders, named <thing>_by_<key>. Each batch opens its own session
because strawberry resolves sibling fields concurrently."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.dataloader import DataLoader

from db.queries import contents, tags, users
from db.session import Database
from db.tables import Content, Tag, User
from resolvers import policy
from resolvers.viewer import Viewer

K = TypeVar("K")
V = TypeVar("V")
# A page of one author's content: (author id, rows to read, keyset position or None).
AuthorPage = tuple[int, int, contents.ContentKey | None]


def _loader(
    db: Database, fetch: Callable[[AsyncSession, Sequence[K]], Awaitable[Sequence[V]]]
) -> DataLoader[K, V]:
    async def batch(keys: Sequence[K]) -> Sequence[V]:
        async with db.session() as session:
            return await fetch(session, keys)

    return DataLoader(load_fn=batch)


def _constant(value: V) -> DataLoader[int, V]:
    """For viewer fields whose answer is known without asking (anonymous viewers)."""

    async def batch(keys: Sequence[int]) -> Sequence[V]:
        return [value] * len(keys)

    return DataLoader(load_fn=batch)


@dataclass(frozen=True, slots=True)
class Loaders:
    user_by_id: DataLoader[int, User | None]
    user_by_handle: DataLoader[str, User | None]
    content_by_id: DataLoader[int, Content | None]
    tag_by_id: DataLoader[int, Tag | None]
    tags_by_content_id: DataLoader[int, list[Tag]]
    content_count_by_tag_id: DataLoader[int, int]
    follower_count_by_user_id: DataLoader[int, int]
    following_count_by_user_id: DataLoader[int, int]
    viewer_follows_by_user_id: DataLoader[int, bool]
    viewer_reacted_by_content_id: DataLoader[int, bool]
    viewer_weight_by_tag_id: DataLoader[int, float | None]
    viewer_habit_by_tag_id: DataLoader[int, float]
    contents_by_author_page: DataLoader[AuthorPage, list[Content]]

    def clear_all(self) -> None:
        """After a write: later fields of the same operation must not see cached values
        from before it (mutations run in sequence within one request)."""
        for name in self.__dataclass_fields__:
            loader: DataLoader[object, object] = getattr(self, name)
            loader.clear_all()


def create_loaders(db: Database, viewer: Viewer, *, habit_half_life_days: float = 30.0) -> Loaders:
    access = policy.content_filter(viewer)
    viewer_id = viewer.id
    # One instant per request, so every habit in a response decays to the same moment.
    now = datetime.now(UTC)

    async def visible_contents(s: AsyncSession, ids: Sequence[int]) -> list[Content | None]:
        return await contents.contents_by_id(s, ids, access=access)

    async def visible_tags(s: AsyncSession, ids: Sequence[int]) -> list[Tag | None]:
        return await tags.tags_by_id(s, ids, access=access)

    async def author_pages(s: AsyncSession, keys: Sequence[AuthorPage]) -> list[list[Content]]:
        # Pages asked with the same size and position (the usual: each author's first
        # page) are read in one statement.
        groups: dict[tuple[int, contents.ContentKey | None], list[int]] = {}
        for author_id, limit, after in keys:
            groups.setdefault((limit, after), []).append(author_id)
        found: dict[AuthorPage, list[Content]] = {}
        for (limit, after), author_ids in groups.items():
            pages = await contents.pages_by_author(
                s, author_ids, access=access, after=after, limit=limit
            )
            for author_id, rows in pages.items():
                found[(author_id, limit, after)] = rows
        return [found[key] for key in keys]

    async def tag_counts(s: AsyncSession, ids: Sequence[int]) -> list[int]:
        return await contents.published_counts_by_tag_id(s, ids, access=access)

    if viewer_id is None:
        viewer_follows: DataLoader[int, bool] = _constant(False)
        viewer_reacted: DataLoader[int, bool] = _constant(False)
        viewer_weight: DataLoader[int, float | None] = _constant(None)
        viewer_habit: DataLoader[int, float] = _constant(0.0)
    else:

        async def follows(s: AsyncSession, ids: Sequence[int]) -> list[bool]:
            return await users.follows_by_followee_id(s, ids, follower_id=viewer_id)

        async def reacted(s: AsyncSession, ids: Sequence[int]) -> list[bool]:
            return await users.reactions_by_content_id(s, ids, user_id=viewer_id)

        async def weights(s: AsyncSession, ids: Sequence[int]) -> list[float | None]:
            return await tags.tag_weights_by_tag_id(s, ids, user_id=viewer_id)

        async def habits(s: AsyncSession, ids: Sequence[int]) -> list[float]:
            return await tags.habit_by_tag_id(
                s, ids, user_id=viewer_id, now=now, half_life_days=habit_half_life_days
            )

        viewer_follows = _loader(db, follows)
        viewer_habit = _loader(db, habits)
        viewer_reacted = _loader(db, reacted)
        viewer_weight = _loader(db, weights)

    return Loaders(
        user_by_id=_loader(db, users.users_by_id),
        user_by_handle=_loader(db, users.users_by_handle),
        content_by_id=_loader(db, visible_contents),
        tag_by_id=_loader(db, visible_tags),
        tags_by_content_id=_loader(db, contents.tags_by_content_id),
        content_count_by_tag_id=_loader(db, tag_counts),
        follower_count_by_user_id=_loader(db, users.follower_counts_by_user_id),
        following_count_by_user_id=_loader(db, users.following_counts_by_user_id),
        viewer_follows_by_user_id=viewer_follows,
        viewer_reacted_by_content_id=viewer_reacted,
        viewer_weight_by_tag_id=viewer_weight,
        viewer_habit_by_tag_id=viewer_habit,
        contents_by_author_page=_loader(db, author_pages),
    )
