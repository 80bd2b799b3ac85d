"""The viewer's ranked feed and search results, paged over a frozen ranking.

The first page ranks (in Postgres) and stores the ranked ids as a snapshot; every later
page reads its slice of that snapshot. So a walk never shows an item twice or skips one
that ranked ahead of the cursor when it began, whatever is published, reacted to or
re-preferred meanwhile. Content that became invisible to the viewer is left out."""

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from db.queries import snapshots
from db.queries.feed import FeedWeights, RankedRow, rank_feed
from db.tables import Content
from resolvers import policy, ranking
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.paging import Page, check_first

WALK_LIFETIME = timedelta(hours=1)
# Anonymous viewers share one ranking per minute: nothing in it is personal, and it
# spares the database a ranking and a snapshot per anonymous first page.
ANONYMOUS_BUCKET_SECONDS = 60


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Ranked(Generic[T]):
    """One item of a walk: the content (a row, or its JSON on the compiled path), how
    it scored and why."""

    content: T
    score: float
    reasons: list[str]


RankedContent = Ranked[Content]
# Loads the items of a walk that the viewer may see now, in order; None for the others.
Load = Callable[[Sequence[int]], Awaitable[Sequence[T | None]]]


def published_rows(ctx: Context) -> Load[Content]:
    async def load(ids: Sequence[int]) -> list[Content | None]:
        rows = await ctx.loaders.content_by_id.load_many(list(ids))
        return [row if row is not None and row.status == "PUBLISHED" else None for row in rows]

    return load


def feed_weights(weights: ranking.RankingWeights) -> FeedWeights:
    shared = {f.name: getattr(weights, f.name) for f in fields(FeedWeights) if f.name != "limit"}
    return FeedWeights(**shared, limit=weights.walk_size)


def factors_of(row: RankedRow, weights: ranking.RankingWeights) -> ranking.Factors:
    return ranking.Factors(
        reactions=row.reactions,
        published_at=row.published_at,
        followed_author=row.followed_author,
        tag_weights=row.tag_weights,
        habit_tag=row.habit_tag,
        habit_affinity=ranking.learned_affinity(row.habit_decayed, weights),
    )


async def _rank(ctx: Context, now: datetime) -> list[list[Any]]:
    weights = ctx.ranking
    async with ctx.db.session() as session:
        rows = await rank_feed(
            session,
            viewer_id=ctx.viewer.id,
            access=policy.content_filter(ctx.viewer),
            now=now,
            weights=feed_weights(weights),
        )
    return [
        [row.content_id, row.score, ranking.reasons(factors_of(row, weights), now)] for row in rows
    ]


async def store_walk(ctx: Context, snapshot_id: str, items: list[list[Any]]) -> None:
    async with ctx.db.session() as session:
        await snapshots.insert_snapshot(
            session, snapshot_id, viewer_id=ctx.viewer.id, items=items, lifetime=WALK_LIFETIME
        )
        await session.commit()


async def _stored(ctx: Context, snapshot_id: str) -> list[list[Any]] | None:
    async with ctx.db.session() as session:
        return await snapshots.get_snapshot(
            session, snapshot_id, viewer_id=ctx.viewer.id, lifetime=WALK_LIFETIME
        )


async def _start_feed_walk(ctx: Context) -> tuple[str, list[list[Any]]]:
    now = datetime.now(UTC)
    if ctx.viewer.id is None:
        bucket = int(now.timestamp()) // ANONYMOUS_BUCKET_SECONDS
        snapshot_id = f"feed-anonymous-{bucket}"
        shared = await _stored(ctx, snapshot_id)
        if shared is not None:
            return snapshot_id, shared
        items = await _rank(ctx, now)
        await store_walk(ctx, snapshot_id, items)
        return snapshot_id, await _stored(ctx, snapshot_id) or items
    snapshot_id = f"feed-{uuid.uuid4().hex}"
    items = await _rank(ctx, now)
    await store_walk(ctx, snapshot_id, items)
    return snapshot_id, items


async def page_of_walk(
    ctx: Context,
    *,
    kind: str,
    first: int,
    after: str | None,
    start: Callable[[], Awaitable[tuple[str, list[list[Any]]]]],
    load: Load[T],
) -> Page[Ranked[T]]:
    """A page of a frozen ranking: the first page starts the walk, later ones continue
    the walk their cursor names."""
    limit = check_first(first, ctx.max_page_size)
    if limit == 0:
        return _no_items(ctx, kind, after)
    if after is None:
        snapshot_id, items = await start()
        offset = 0
    else:
        values = ctx.cursors.decode(after, kind)
        if len(values) != 2 or not isinstance(values[0], str) or not isinstance(values[1], int):
            raise BadUserInput("`after` is not a cursor of this list")
        snapshot_id, offset = values
        stored = await _stored(ctx, snapshot_id)
        if stored is None:
            raise BadUserInput(
                "`after` belongs to a walk that has expired (walks last an hour): "
                "start again without `after`"
            )
        items = stored
    edges: list[tuple[str, Ranked[T]]] = []
    position = offset
    # Content hidden since the walk began is skipped, so fetch until the page is full.
    while len(edges) < limit and position < len(items):
        chunk = items[position : position + (limit - len(edges))]
        rows = await load([item[0] for item in chunk])
        for (_, score, reasons), row in zip(chunk, rows, strict=True):
            position += 1
            if row is not None:
                cursor = ctx.cursors.encode(kind, (snapshot_id, position))
                edges.append((cursor, Ranked(row, float(score), list(reasons))))

    async def no_count() -> int:
        return len(items)

    return Page(
        edges=edges,
        has_next=position < len(items),
        has_previous=offset > 0,
        total_count=no_count,
    )


def _no_items(ctx: Context, kind: str, after: str | None) -> "Page[Any]":
    """`first: 0` asks for no items, so nothing is ranked or read: ranking is the costly
    part, and a client could otherwise have it done for free (docs/security.md). As on
    every list, a page of 0 reports no next page."""
    if after is not None:
        ctx.cursors.decode(after, kind)  # still refused when it is not a cursor of this list

    async def nothing() -> int:
        return 0

    return Page(edges=[], has_next=False, has_previous=after is not None, total_count=nothing)


async def feed(ctx: Context, *, first: int, after: str | None, load: Load[T]) -> Page[Ranked[T]]:
    """The viewer's feed; `load` reads the items (published_rows(ctx), or their JSON)."""
    return await page_of_walk(
        ctx,
        kind="feed",
        first=first,
        after=after,
        start=lambda: _start_feed_walk(ctx),
        load=load,
    )
