"""Per-request DataLoaders, named <thing>_by_<key>. Each batch opens its own session
because strawberry resolves sibling fields concurrently."""

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import cached_property
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
        async with db.read_session() as session:
            return await fetch(session, keys)

    return DataLoader(load_fn=batch)


def _constant(value: V) -> DataLoader[int, V]:
    """For viewer fields whose answer is known without asking (anonymous viewers)."""

    async def batch(keys: Sequence[int]) -> Sequence[V]:
        return [value] * len(keys)

    return DataLoader(load_fn=batch)


class Loaders:
    """The loaders of one request (or one WebSocket connection), each made when first
    used: most requests use a few of them, and a connection holds its set for as long as
    it lives (13 made eagerly were ~18 KB per connection)."""

    def __init__(self, db: Database, viewer: Viewer, *, habit_half_life_days: float) -> None:
        self._db = db
        self._viewer_id = viewer.id
        self._access = policy.content_filter(viewer)
        self._half_life = habit_half_life_days
        # One instant per request, so every habit in a response decays to the same moment.
        self._now = datetime.now(UTC)

    def clear_all(self) -> None:
        """After a write: later fields of the same operation must not see cached values
        from before it (mutations run in sequence within one request)."""
        for value in vars(self).values():
            if isinstance(value, DataLoader):
                value.clear_all()

    @cached_property
    def user_by_id(self) -> DataLoader[int, User | None]:
        return _loader(self._db, users.users_by_id)

    @cached_property
    def user_by_handle(self) -> DataLoader[str, User | None]:
        return _loader(self._db, users.users_by_handle)

    @cached_property
    def content_by_id(self) -> DataLoader[int, Content | None]:
        access = self._access

        async def visible(s: AsyncSession, ids: Sequence[int]) -> list[Content | None]:
            return await contents.contents_by_id(s, ids, access=access)

        return _loader(self._db, visible)

    @cached_property
    def tag_by_id(self) -> DataLoader[int, Tag | None]:
        access = self._access

        async def visible(s: AsyncSession, ids: Sequence[int]) -> list[Tag | None]:
            return await tags.tags_by_id(s, ids, access=access)

        return _loader(self._db, visible)

    @cached_property
    def tags_by_content_id(self) -> DataLoader[int, list[Tag]]:
        return _loader(self._db, contents.tags_by_content_id)

    @cached_property
    def content_count_by_tag_id(self) -> DataLoader[int, int]:
        access = self._access

        async def counts(s: AsyncSession, ids: Sequence[int]) -> list[int]:
            return await contents.published_counts_by_tag_id(s, ids, access=access)

        return _loader(self._db, counts)

    @cached_property
    def follower_count_by_user_id(self) -> DataLoader[int, int]:
        return _loader(self._db, users.follower_counts_by_user_id)

    @cached_property
    def following_count_by_user_id(self) -> DataLoader[int, int]:
        return _loader(self._db, users.following_counts_by_user_id)

    @cached_property
    def viewer_follows_by_user_id(self) -> DataLoader[int, bool]:
        viewer_id = self._viewer_id
        if viewer_id is None:
            return _constant(False)

        async def follows(s: AsyncSession, ids: Sequence[int]) -> list[bool]:
            return await users.follows_by_followee_id(s, ids, follower_id=viewer_id)

        return _loader(self._db, follows)

    @cached_property
    def viewer_reacted_by_content_id(self) -> DataLoader[int, bool]:
        viewer_id = self._viewer_id
        if viewer_id is None:
            return _constant(False)

        async def reacted(s: AsyncSession, ids: Sequence[int]) -> list[bool]:
            return await users.reactions_by_content_id(s, ids, user_id=viewer_id)

        return _loader(self._db, reacted)

    @cached_property
    def viewer_weight_by_tag_id(self) -> DataLoader[int, float | None]:
        viewer_id = self._viewer_id
        if viewer_id is None:
            return _constant(None)

        async def weights(s: AsyncSession, ids: Sequence[int]) -> list[float | None]:
            return await tags.tag_weights_by_tag_id(s, ids, user_id=viewer_id)

        return _loader(self._db, weights)

    @cached_property
    def viewer_habit_by_tag_id(self) -> DataLoader[int, float]:
        viewer_id = self._viewer_id
        if viewer_id is None:
            return _constant(0.0)
        now, half_life = self._now, self._half_life

        async def habits(s: AsyncSession, ids: Sequence[int]) -> list[float]:
            return await tags.habit_by_tag_id(
                s, ids, user_id=viewer_id, now=now, half_life_days=half_life
            )

        return _loader(self._db, habits)

    @cached_property
    def contents_by_author_page(self) -> DataLoader[AuthorPage, list[Content]]:
        access = self._access

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

        return _loader(self._db, author_pages)


def create_loaders(db: Database, viewer: Viewer, *, habit_half_life_days: float = 30.0) -> Loaders:
    return Loaders(db, viewer, habit_half_life_days=habit_half_life_days)
