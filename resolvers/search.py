"""Full-text search, ranked by relevance and the viewer's affinity, paged like the feed."""

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from db.queries.feed import count_search, rank_search
from db.tables import Content
from resolvers import policy
from resolvers.context import Context
from resolvers.errors import BadUserInput
from resolvers.feed import feed_weights, page_of_walk, published_rows, store_walk
from resolvers.paging import Page
from resolvers.search_terms import require_searchable

MAX_QUERY = 200
# totalCount counts at most this many matches (docs/ranking.md): an exact count of a
# common word reads every match. Search ranks only the newest matches anyway.
COUNT_LIMIT = 10_000


async def search(ctx: Context, *, query: str, first: int, after: str | None) -> Page[Content]:
    text = query.strip()
    if not text:
        raise BadUserInput("`query` must not be empty", field="query")
    if len(text) > MAX_QUERY:
        raise BadUserInput(f"`query` must be at most {MAX_QUERY} characters", field="query")
    require_searchable(text)
    # Cursors name their query: one from another search means nothing here.
    kind = "search:" + hashlib.sha256(text.encode()).hexdigest()[:16]
    access = policy.content_filter(ctx.viewer)
    now = datetime.now(UTC)

    async def start() -> tuple[str, list[list[Any]]]:
        async with ctx.db.session() as session:
            ranked = await rank_search(
                session,
                query=text,
                viewer_id=ctx.viewer.id,
                access=access,
                now=now,
                weights=feed_weights(ctx.ranking),
            )
        snapshot_id = f"search-{uuid.uuid4().hex}"
        items: list[list[Any]] = [[content_id, score, []] for content_id, score in ranked]
        await store_walk(ctx, snapshot_id, items)
        return snapshot_id, items

    walk = await page_of_walk(
        ctx, kind=kind, first=first, after=after, start=start, load=published_rows(ctx)
    )

    async def total_count() -> int:
        async with ctx.db.session() as session:
            return await count_search(
                session,
                query=text,
                viewer_id=ctx.viewer.id,
                access=access,
                now=now,
                limit=COUNT_LIMIT,
            )

    return Page(
        edges=[(cursor, item.content) for cursor, item in walk.edges],
        has_next=walk.has_next,
        has_previous=walk.has_previous,
        total_count=total_count,
    )
